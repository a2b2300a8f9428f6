"""``noa plugins check`` and ``noa plugins new``: the plugin author's two commands."""

from __future__ import annotations

import math
from pathlib import Path

import click

from noa_platform.cli.app import echo_json


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # FloatRange lets NaN through (every comparison with NaN is false).
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a number of seconds", ctx, param)
    return value


#: ``--timeout SECONDS``: the kit's limit per check (``noa plugins check``, ``list --check``).
timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=None, callback=_seconds,
    metavar="SECONDS", help="Fail a check that runs longer (default 120).")


@click.command("check")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@timeout_option
def check_plugin(name: str, as_json: bool, timeout: float | None) -> None:
    """Run the conformance kit on the installed domain NAME; exit 1 if a check fails."""
    from noa_platform.plugins import get_registry
    from noa_platform.testing import CHECKS, CheckReport, check_domain
    from noa_platform.testing.kit import DEFAULT_CHECK_TIMEOUT

    domain = get_registry().domain(name)  # unknown: one line listing the known domains
    limit = DEFAULT_CHECK_TIMEOUT if timeout is None else timeout
    if as_json:
        report = check_domain(domain, timeout=limit)
        echo_json(report.to_json())
    else:
        width = max(len(c.name) for c in CHECKS)
        click.echo(CheckReport.header(width))
        report = check_domain(domain, timeout=limit,
                              on_result=lambda r: click.echo(CheckReport.row(r, width)))
        click.echo(report.summary())
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command("new")
@click.argument("name")
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to render into (default: ./noa-domain-NAME); must be absent or empty.")
def new_plugin(name: str, target: Path | None) -> None:
    """Render a working domain plugin NAME (advection–diffusion, exact solver) to start from."""
    from noa_platform.plugin_template import names_for, render

    subs = names_for(name)
    target = target or Path(subs["distribution"])
    written = render(name, target)
    click.echo(f"wrote {len(written)} files to {target}/ (package {subs['package']}):")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: pip install -e {target} && noa plugins check {name}")
