"""``noa registry``: list, show, remove and clean up registered artifacts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from noa_platform.cli.app import echo_json, main
from noa_platform.registry.entry import KINDS

registry_option = click.option(
    "--registry", "registry_dir", type=click.Path(file_okay=False, path_type=Path),
    help="Registry folder (default: $NOA_REGISTRY, else ./registry).")


@contextlib.contextmanager
def _open(registry_dir: Path | None) -> Iterator[Any]:
    """The registry, with an OS or SQLite error while using it said as one line naming it."""
    from noa_platform.file_errors import doing
    from noa_platform.registry import open_registry, registry_path

    with doing("registry", registry_path(registry_dir)), \
            open_registry(registry_dir, create=False) as reg:
        yield reg


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


@main.group()
def registry() -> None:
    """Registered artifacts: datasets, tokenizers, MNOs, evaluations, alignments, transfers."""


@registry.command("list")
@click.option("--domain", help="Only this domain (A->B for alignments and transfers).")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@registry_option
def list_artifacts(domain: str | None, kind: str | None, as_json: bool,
                   registry_dir: Path | None) -> None:
    """Registered artifacts, newest first."""
    with _open(registry_dir) as reg:
        entries = reg.list(kind=kind, domain=domain)
    if as_json:
        echo_json([e.to_json() for e in entries])
        return
    if not entries:
        click.echo("nothing registered" + (" matching the filters" if kind or domain else ""))
        return
    click.echo(f"{'ID':<16} {'KIND':<10} {'DOMAIN':<28} {'CREATED (UTC)':<19} {'SIZE':>9}  "
               "PARENTS")
    for e in entries:
        click.echo(f"{e.id:<16} {e.kind:<10} {e.domain:<28} {e.created[:19]:<19} "
                   f"{_size(e.size):>9}  {', '.join(e.parents) or '-'}")


@registry.command("show")
@click.argument("artifact_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@registry_option
def show_artifact(artifact_id: str, as_json: bool, registry_dir: Path | None) -> None:
    """One artifact: metadata, metrics, versions, parents, children and files."""
    with _open(registry_dir) as reg:
        e = reg.get(artifact_id)
        children = reg.children(e.id)
        location = reg.store.view_path(e.id, e.name)
    if as_json:
        echo_json({**e.to_json(), "children": children, "path": str(location)})
        return
    import json

    click.echo(f"{e.id}  {e.kind} of {e.domain}, registered {e.created}")
    click.echo(f"  path:      {location}{os.sep if e.is_dir else ''}")
    click.echo(f"  digest:    {e.digest}")
    if e.dataset_fingerprint:
        click.echo(f"  dataset fingerprint: {e.dataset_fingerprint}")
    click.echo(f"  parents:   {', '.join(e.parents) or '-'}")
    click.echo(f"  children:  {', '.join(children) or '-'}")
    click.echo(f"  versions:  {json.dumps(e.versions, sort_keys=True)}")
    click.echo("  metrics:")
    for k, v in e.metrics.items():
        click.echo(f"    {k}: {json.dumps(v)}")
    click.echo(f"  config:    {json.dumps(e.config, sort_keys=True)}")
    click.echo(f"  files ({len(e.files)}, {_size(e.size)}):")
    for rel, f in e.files.items():
        click.echo(f"    {rel:<40} {_size(f['size']):>9}  sha256 {f['sha256'][:16]}")


@registry.command("rm")
@click.argument("artifact_id", metavar="ID")
@registry_option
def remove_artifact(artifact_id: str, registry_dir: Path | None) -> None:
    """Remove one artifact (not one that others name as parent)."""
    with _open(registry_dir) as reg:
        removed = reg.remove(artifact_id)
    click.echo(f"removed {removed} (`noa registry gc` frees files no other artifact uses)")


@registry.command("gc")
@registry_option
def collect_garbage(registry_dir: Path | None) -> None:
    """Delete stored files and folders no artifact refers to, and leftovers of killed runs."""
    with _open(registry_dir) as reg:
        report = reg.gc()
    click.echo(f"removed {report['objects']} unreferenced object(s) ({_size(report['bytes'])}), "
               f"{len(report['artifact_folders'])} orphan artifact folder(s), "
               f"{len(report['temporary'])} temporary item(s)")
