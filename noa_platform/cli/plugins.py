"""``noa plugins``: what is installed and in what state."""

from __future__ import annotations

import click

from noa_platform.cli.app import echo_json, main


@main.group()
def plugins() -> None:
    """Inspect installed plugins, check a domain against the contract, start a new one."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_plugins(as_json: bool) -> None:
    """Every plugin: name, distribution, version, hooks, status and error."""
    from noa_platform.plugins import get_registry

    records = get_registry().records
    if as_json:
        echo_json([r.to_json() for r in records])
        return
    for r in records:
        dist = f"{r.distribution or '-'} {r.version or ''}".strip()
        hooks = ",".join(h.removeprefix("noa_") for h in r.hooks) or "-"
        click.echo(f"{r.name:<24} {r.status:<8} {dist:<40} hooks: {hooks}")
        if r.error:
            click.echo(f"{'':<24} error: {r.error}")
