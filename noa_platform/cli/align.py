"""``noa align``: compare two tokenizers' vocabularies (docs/alignment.md)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from noa_platform.cli.app import echo_json, main

METHOD_CHOICES = ("prototypes", "geometry", "cooccurrence", "all")
#: Matched pairs printed per method (all of them go to the JSON file).
SHOWN_PAIRS = 8


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--method", type=click.Choice(METHOD_CHOICES), default="all", show_default=True,
              help="Alignment method.")
@click.option("--levels", default="0", show_default=True,
              help="Residual levels whose codebooks are aligned: comma-separated, or 'all'.")
@click.option("--null", "n_null", type=click.IntRange(min=2), default=20, show_default=True,
              help="Random draws of the null of random codebooks of the same sizes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the null's draws.")
@click.option("--dataset", "datasets", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Dataset whose trajectories co-occurrence reads (repeatable; default: the "
                   "tokenizers' own datasets).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for alignment.json and alignment.png (default: alignments/A--B).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--registry", "registry_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Registry folder (default: $NOA_REGISTRY, else ./registry).")
@click.option("--no-register", is_flag=True, help="Do not record the alignment in the registry.")
def align(a: str, b: str, method: str, levels: str, n_null: int, seed: int,
          datasets: tuple[Path, ...], out_dir: Path | None, as_json: bool,
          registry_dir: Path | None, no_register: bool) -> None:
    """Align the vocabularies of tokenizers A and B.

    A and B are domains (their newest registered tokenizer), registry ids of tokenizers, or
    tokenizer folders. Every summary score is printed beside the null of random codebooks of
    the same sizes (mean ± standard deviation over --null draws).
    """
    from noa_platform.alignment.codebooks import parse_levels
    from noa_platform.alignment.sources import require_extra, resolve

    require_extra()
    wanted_levels = parse_levels(levels)
    side_a, side_b = resolve(a, registry_dir), resolve(b, registry_dir)

    from noa_platform.alignment.compare import METHODS
    from noa_platform.alignment.compare import align as run_alignment
    from noa_platform.alignment.plots import plot_alignment
    from noa_platform.alignment.sources import feature_sources
    from noa_platform.atomic import atomic_write_json
    from noa_platform.file_errors import doing
    from noa_platform.tokenizer import UnfittedTokenizer

    methods = METHODS if method == "all" else (method,)
    tok_a = UnfittedTokenizer.load(side_a.directory)
    tok_b = UnfittedTokenizer.load(side_b.directory)
    if datasets:
        paths = [(str(p), p) for p in datasets]
        dataset_ids = []
    else:
        found = side_a.datasets + side_b.datasets
        paths = [(name, path) for name, path, _ in found]
        dataset_ids = [rid for _, _, rid in found if rid]
    if "cooccurrence" in methods:
        from noa_platform.data.store import check_datasets

        check_datasets(path for _, path in paths)  # NaN named with its file, before the work
    sources = feature_sources(paths) if "cooccurrence" in methods else []
    result = run_alignment(tok_a, tok_b, methods=methods, levels=wanted_levels, sources=sources,
                           n_null=n_null, seed=seed, labels=(side_a.label, side_b.label))

    out = out_dir or Path("alignments") / f"{_slug(a)}--{_slug(b)}"
    record = result.to_json()
    record["tokenizers"] = {
        "a": {"spec": a, "id": side_a.registry_id, "directory": str(side_a.directory)},
        "b": {"spec": b, "id": side_b.registry_id, "directory": str(side_b.directory)},
    }
    with doing("writing the alignment in", out):
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "alignment.json", record, indent=2, sort_keys=False)
        plot_alignment(result, out / "alignment.png")

    rid = None
    if not no_register and side_a.registry_id and side_b.registry_id:
        from noa_platform.alignment.sources import combined_fingerprint, data_fingerprints
        from noa_platform.registry import open_registry

        fingerprints = data_fingerprints((side_a, side_b),
                                         [path for _, path in paths] if sources else [])
        with open_registry(registry_dir, create=False) as reg:
            rid = reg.add(
                "alignment", domain=f"{side_a.domain}->{side_b.domain}",
                source={"alignment.json": out / "alignment.json",
                        "alignment.png": out / "alignment.png"},
                name="alignment",
                config={"methods": list(methods), "levels": record["levels"],
                        "null_draws": n_null, "seed": seed,
                        "datasets": [name for name, _ in paths] if sources else [],
                        "dataset_fingerprints": fingerprints},
                metrics=result.summary(),
                parents=[side_a.registry_id, side_b.registry_id,
                         *(dataset_ids if sources else [])],
                dataset_fingerprint=combined_fingerprint(fingerprints),
            )
    if as_json:
        echo_json({**record, "registry_id": rid, "out": str(out)})
        return
    _print(result)
    click.echo(f"written: {out / 'alignment.json'}, {out / 'alignment.png'}")
    if rid:
        click.echo(f"registered: {rid}")
    elif not no_register:
        click.echo("not registered: a side is a tokenizer folder, not a registered tokenizer")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(text).name or text).strip("_") or "tokenizer"


def _print(result) -> None:
    click.echo(f"alignment {result.a} <-> {result.b} (levels "
               f"{'all' if result.levels is None else ','.join(map(str, result.levels))}; "
               f"null: {result.n_null} draws of random codebooks of the same sizes)")
    click.echo(f"{'METHOD':<13} {'SCORE':<18} {'VALUE':>9}  {'NULL MEAN ± STD':<20} BETTER")
    for name, res in result.results.items():
        for score, value in res.scores.items():
            null = res.null.get(score, {})
            spread = (f"{null['null_mean']:.4f} ± {null['null_std']:.4f}" if null else "-")
            click.echo(f"{name:<13} {score:<18} {value:>9.4f}  {spread:<20} "
                       f"{res.better[score]}")
    co = result.results.get("cooccurrence")
    for source, scores in (co.info.get("per_source", {}) if co else {}).items():
        click.echo(f"cooccurrence within {source}: " + "; ".join(
            f"{k} {s['value']:.4f} (null {s['null_mean']:.4f} ± {s['null_std']:.4f})"
            for k, s in scores.items()))
    for name, res in result.results.items():
        click.echo(f"{name}: {len(res.pairs)} matched pairs, best {min(SHOWN_PAIRS, len(res.pairs))}:")
        for pair in res.pairs[:SHOWN_PAIRS]:
            extra = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in pair.items() if k not in ("a", "b"))
            click.echo(f"  {pair['a']:<22} -> {pair['b']:<22} {extra}")
