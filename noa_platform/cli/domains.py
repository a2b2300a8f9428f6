"""``noa domains``: the installed physics domains."""

from __future__ import annotations

import click

from noa_platform.cli.app import echo_json, main


@main.group()
def domains() -> None:
    """List and describe installed domains."""


@domains.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_domains(as_json: bool) -> None:
    """Installed domains with their plugin and a one-line description."""
    from noa_platform.plugins import get_registry

    registry = get_registry()
    rows = [
        {"name": name, "version": d.version, "plugin": registry.owners[("domains", name)],
         "channels": list(d.channel_names), "description": d.description}
        for name, d in sorted(registry.domains.items())
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no domains installed (see `noa plugins list`)")
    for r in rows:
        click.echo(f"{r['name']:<24} {r['version']:<10} {r['plugin']:<24} {r['description']}")


@domains.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show_domain(name: str, as_json: bool) -> None:
    """Channels, grid, frame interval, parameters, initial conditions, presets, architecture."""
    from noa_platform.plugins import get_registry

    registry = get_registry()
    info = registry.domain(name).describe()
    info["plugin"] = registry.owners[("domains", name)]
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['name']} {info['version']} (plugin {info['plugin']})")
    click.echo(f"  {info['description']}")
    channels = [f"{c['name']} ({c['role']}, {c['units'] or 'no units'})" for c in info["channels"]]
    click.echo(f"  channels:   {', '.join(channels)}")
    g = info["grid"]
    click.echo(f"  grid:       {g['shape'][0]}x{g['shape'][1]}, extent {g['extent']}, "
               f"periodic={g['periodic']} (resizing keeps the {info['grid_scaling']})")
    click.echo(f"  frame_dt:   {info['frame_dt']:g}")
    click.echo("  parameters:")
    for p in info["parameters"]:
        read = "; ".join(f"read when {cat} is {' or '.join(choices)}"
                         for cat, choices in p.get("read_when", {}).items())
        click.echo(f"    {p['name']:<16} {p['kind']:<12} {p['range']}  {p['description']}"
                   + (f" ({read})" if read else ""))
    click.echo("  initial conditions:")
    for k, v in info["initial_conditions"].items():
        click.echo(f"    {k:<24} {v}")
    if info["invariants"]:
        click.echo("  invariants:")
        for k, v in info["invariants"].items():
            conserved = " (conserved)" if v["conserved"] else ""
            click.echo(f"    {k:<24} {v['description']}{conserved}")
    click.echo("  presets:")
    for k, v in info["presets"].items():
        click.echo(f"    {k:<10} {v}")
    click.echo(f"  default architecture: {info['default_architecture']}")
