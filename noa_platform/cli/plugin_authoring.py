"""``noa plugins check`` and ``noa plugins new``: the plugin author's two commands."""

from __future__ import annotations

from pathlib import Path

import click

from noa_platform.cli.app import echo_json


@click.command("check")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_plugin(name: str, as_json: bool) -> None:
    """Run the conformance kit on the installed domain NAME; exit 1 if a check fails."""
    from noa_platform.plugins import get_registry
    from noa_platform.testing import CHECKS, CheckReport, check_domain

    domain = get_registry().domain(name)  # unknown: one line listing the known domains
    if as_json:
        report = check_domain(domain)
        echo_json(report.to_json())
    else:
        width = max(len(c.name) for c in CHECKS)
        click.echo(CheckReport.header(width))
        report = check_domain(domain, on_result=lambda r: click.echo(CheckReport.row(r, width)))
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
