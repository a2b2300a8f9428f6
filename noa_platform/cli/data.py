"""``noa generate`` and ``noa data``: CNO datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from noa_platform.cli.app import echo_json, main
from noa_platform.file_errors import doing

# Everything heavier than click is imported inside the commands, so `noa --help` stays fast.


class ShardType(click.ParamType):
    """``k/N`` for ``--shard``: a malformed value is a usage error (exit 2)."""

    name = "k/N"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from noa_platform.data.shards import Shard

        if isinstance(value, Shard):
            return value
        try:
            return Shard.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@main.command()
@click.argument("domain")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Dataset file to write (HDF5).")
@click.option("--n", "n_samples", type=click.IntRange(min=1), help="Number of samples.")
@click.option("--preset", default="quick", show_default=True, help="Domain preset to start from.")
@click.option("--seed", type=click.IntRange(min=0), help="Dataset seed.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config; its [generation] table overrides the preset and its "
                   "[features] families are the ones stored.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device the solver runs on.")
@click.option("--no-features", is_flag=True, help="Do not compute features while generating.")
@click.option("--shard", type=ShardType(), default=None,
              help="Write only shard k of N (k counts from 1) of the run; `noa data merge` "
                   "joins the shards into the file an unsharded run writes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(domain: str, out: Path, n_samples: int | None, preset: str, seed: int | None,
             config_file: Path | None, device: str, no_features: bool, shard: Any, quiet: bool
             ) -> None:
    """Generate a CNO dataset for DOMAIN.

    Interrupted at any moment, the same command continues where it stopped and produces the
    same file an uninterrupted run would have. With --shard k/N, only that shard of the run.
    """
    from noa_platform.config import domain_config
    from noa_platform.data.generate import generate as run_generation
    from noa_platform.features.selection import run_feature_set
    from noa_platform.plugins import get_registry
    from noa_platform.training.pipeline import resolve_device

    d = get_registry().domain(domain)
    resolve_device(device)  # refuses cuda without a CUDA device before any work
    overrides: dict = {}
    if n_samples is not None:
        overrides["n_samples"] = n_samples
    if seed is not None:
        overrides["seed"] = seed
    if no_features:
        overrides["features"] = False
    cfg = domain_config(d, preset, config_file, {"generation": overrides} if overrides else None)
    with doing("writing dataset", out):
        path = run_generation(d, cfg.generation, out, device=device, progress=not quiet,
                              log=lambda m: click.echo(m, err=True),
                              features=run_feature_set(cfg) if cfg.generation.features
                              else None, shard=shard)
    click.echo(str(path))


@main.group()
def data() -> None:
    """Inspect datasets."""


@data.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(file: Path, as_json: bool) -> None:
    """Domain, versions, counts, shapes, parameter ranges and completion state of FILE."""
    from noa_platform.data.generate import partial_progress
    from noa_platform.data.store import DatasetFile

    progress = None if file.exists() else partial_progress(file)
    if progress is not None:
        if as_json:
            echo_json(progress)
        else:
            what = f"shard {progress['shard']}" if progress["shard"] else "dataset"
            click.echo(f"{file}: {progress['domain']} {what} being generated: "
                       f"{progress['completed']} of {progress['samples']} samples done "
                       f"(in {progress['partial']}; rerun the same `noa generate` to finish)")
        return
    with DatasetFile(file) as ds:
        ds.check_finite()
        meta = ds.info()
    if as_json:
        echo_json(meta)
        return
    click.echo(f"{meta['file']}: {meta['domain']} {meta['domain_version']} "
               f"(platform {meta['platform_version']}, schema {meta['schema_version']}, "
               f"created {meta['created']})")
    if meta["shard"]:
        s = meta["shard"]
        click.echo(f"  shard:        {s['k']}/{s['of']} of a {s['run_samples']}-sample run, "
                   f"samples {s['first']}..{s['last']} (`noa data merge` joins the shards)")
    state = "complete" if meta["complete"] else "INCOMPLETE"
    click.echo(f"  samples:      {meta['samples']} ({meta['completed']} written, {state})")
    click.echo(f"  trajectories: {meta['trajectories']['shape']} {meta['trajectories']['dtype']} "
               f"channels {', '.join(meta['channels'])}, frame_dt {meta['frame_dt']:g}")
    click.echo(f"  splits:       {meta['splits']}")
    click.echo(f"  ic families:  {meta['ic_families']}")
    if meta.get("behaviour"):
        click.echo("  behaviour by the last frame (uniform / stationary / moving):")
        for group, rows in meta["behaviour"].items():
            for label, r in ({"all samples": rows}.items() if group == "all"
                             else ((f"{group}={k}", v) for k, v in rows.items())):
                click.echo(f"    {label:<28} {r['uniform']:.2f} / {r['stationary']:.2f} / "
                           f"{r['moving']:.2f}  ({r['samples']} samples)")
    click.echo("  parameters:")
    for name, r in meta["parameters"].items():
        click.echo(f"    {name:<16} {r['min']:.6g} .. {r['max']:.6g}")
    feats = ", ".join(f"{k} {v['shape']}" for k, v in meta["features"].items()) or "none"
    click.echo(f"  features:     {feats}")
    click.echo(f"  size:         {meta['size_bytes'] / 1e6:.1f} MB, fingerprint "
               f"{meta['fingerprint'][:16]}")


@data.command("merge")
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Dataset file to write (must not exist).")
def merge(shards: tuple[Path, ...], out: Path) -> None:
    """Join the SHARDS of one `noa generate --shard` run into one dataset.

    The result equals the file an unsharded run writes, sample for sample, fingerprint
    included. A missing or doubled sample, a shard of another run or a foreign file is refused.
    """
    from noa_platform.data.merge import merge_shards
    from noa_platform.data.store import check_datasets

    check_datasets(shards)
    with doing("writing dataset", out):
        path = merge_shards(shards, out, log=lambda m: click.echo(m, err=True))
    click.echo(str(path))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--family", "families", multiple=True, metavar="NAME",
              help="Feature family to compute (repeatable; default: initial, summary, temporal; "
                   "`noa plugins list --json` shows what plugins provide).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def features(file: Path, families: tuple[str, ...], quiet: bool) -> None:
    """Compute feature families of FILE and store them in it.

    Does nothing when they are already there; continues where it stopped when interrupted.
    """
    from noa_platform.data.features import add_features
    from noa_platform.data.store import check_datasets
    from noa_platform.features.selection import BUILTIN_FAMILIES, feature_set

    chosen = feature_set(families or BUILTIN_FAMILIES)
    check_datasets([file])
    with doing("adding features to", file):
        add_features(file, progress=not quiet, log=lambda m: click.echo(m, err=True),
                     features=chosen)
