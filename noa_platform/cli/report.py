"""``noa report``: the registry's cross-domain summary (docs/report.md)."""

from __future__ import annotations

from pathlib import Path

import click

from noa_platform.cli.app import main


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("report"), show_default=True,
              help="Folder for report.md and its pictures.")
@click.option("--registry", "registry_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Registry folder (default: $NOA_REGISTRY, else ./registry).")
def report(out_dir: Path, registry_dir: Path | None) -> None:
    """Cross-domain summary of the registry: per-domain results, alignment matrix, transfer
    curves; every number read from the registry."""
    from noa_platform.file_errors import doing
    from noa_platform.registry import open_registry
    from noa_platform.reporting.collect import collect
    from noa_platform.reporting.markdown import write_report

    with open_registry(registry_dir, create=False) as reg:
        summary = collect(reg)
    with doing("writing the report in", out_dir):
        path = write_report(summary, out_dir)
    click.echo(f"report: {path}")
