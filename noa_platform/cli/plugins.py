"""``noa plugins``: what is installed and in what state."""

from __future__ import annotations

import click

from noa_platform.cli.app import echo_json, main
from noa_platform.cli.plugin_authoring import timeout_option


@main.group()
def plugins() -> None:
    """Inspect installed plugins, check a domain against the contract, start a new one."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--check", "run_kit", is_flag=True,
              help="Also run the conformance kit on each loaded plugin's domains (seconds per "
                   "domain): a faulty solver loads fine and only shows when run.")
@timeout_option
def list_plugins(as_json: bool, run_kit: bool, timeout: float | None) -> None:
    """Every plugin: name, distribution, version, hooks, status and error."""
    from noa_platform.plugins import get_registry

    registry = get_registry()
    kit = _kit_verdicts(registry, timeout) if run_kit else {}
    records = registry.records
    if as_json:
        echo_json([{**r.to_json(), **({"kit": {d: kit[d] for d in r.provides.get("domains", [])}}
                                      if run_kit else {})} for r in records])
        return
    for r in records:
        dist = f"{r.distribution or '-'} {r.version or ''}".strip()
        hooks = ",".join(h.removeprefix("noa_") for h in r.hooks) or "-"
        click.echo(f"{r.name:<24} {r.status:<8} {dist:<40} hooks: {hooks}")
        if r.error:
            click.echo(f"{'':<24} error: {r.error}")
        for domain in r.provides.get("domains", []) if run_kit else []:
            v = kit[domain]
            verdict = ("conforms" if v["ok"] else
                       f"does NOT conform: {v['failed'][0]}: {v['reason']}"
                       + (f" (and {len(v['failed']) - 1} more)" if len(v["failed"]) > 1 else ""))
            click.echo(f"{'':<24} kit: {domain}: {verdict}")


def _kit_verdicts(registry, timeout: float | None) -> dict[str, dict]:
    """Per loaded domain: ``ok``, the failed checks and the first one's reason."""
    from noa_platform.testing import check_domain
    from noa_platform.testing.kit import DEFAULT_CHECK_TIMEOUT

    out = {}
    for name, domain in sorted(registry.domains.items()):
        report = check_domain(domain, timeout=DEFAULT_CHECK_TIMEOUT if timeout is None
                              else timeout)
        failed = report.failed
        out[name] = {"ok": report.ok, "failed": failed,
                     "reason": report[failed[0]].reason if failed else None}
    return out
