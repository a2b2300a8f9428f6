"""What ``noa train`` registers: the dataset, the tokenizer, the MNO and the evaluation of one
run folder, each with its parents and the metrics the pipeline wrote.

Only what the stage produced is registered (``--stage tokenizer``: dataset and tokenizer;
``mno``: also the MNO; ``all``: also the evaluation). The registry returns the existing id for
content it already holds, so running the same command again registers nothing new.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from noa_platform.errors import NoaError
from noa_platform.registry.registry import Registry

# Files of a run folder written by ``noa_platform.atomic`` are ``NAME.tmp-PID`` until renamed;
# one left by a killed process is not part of the result.
_TEMPORARY = ".tmp-"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NoaError(f"{path}: cannot be read for registration ({exc})") from None


def _scalars(d: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers, strings and booleans of ``d`` (lists and tables are left in the files)."""
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _folder_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and _TEMPORARY not in p.name}


def register_run(reg: Registry, domain: str, run_dir: str | os.PathLike,
                 dataset_path: str | os.PathLike, config: Any, stage: str,
                 log: Callable[[str], None] | None = None) -> dict[str, str]:
    """Register what ``noa train --stage STAGE`` left in ``run_dir``; returns kind -> id.

    ``config`` is the run's :class:`~noa_platform.config.RunConfig` (or its JSON dict).
    """
    from noa_platform.data.store import DatasetFile

    run_dir, dataset_path = Path(run_dir), Path(dataset_path)
    cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    ids: dict[str, str] = {}

    with DatasetFile(dataset_path) as ds:
        fingerprint = ds.fingerprint
        attrs = ds.h5.attrs
        ids["dataset"] = reg.add(
            "dataset", domain=domain, source=dataset_path, config=ds.config,
            metrics={"samples": len(ds), "shape": list(ds.shape),
                     "splits": {s: len(ds.split(s)) for s in ("train", "val", "test")},
                     "feature_families": ds.feature_families()},
            dataset_fingerprint=fingerprint,
            versions={"dataset": {"domain_version": str(attrs["domain_version"]),
                                  "platform_version": str(attrs["platform_version"])}})

    tok_dir = run_dir / "tokenizer"
    report = _read_json(tok_dir / "report.json")
    ids["tokenizer"] = reg.add(
        "tokenizer", domain=domain, source=_folder_files(tok_dir), name="tokenizer",
        config={"features": cfg.get("features"), "tokenizer": cfg.get("tokenizer")},
        metrics={split: _scalars(report[split]) for split in ("dataset", "train", "val")
                 if split in report} | {"fit": _scalars(report.get("fit", {}))},
        parents=[ids["dataset"]], dataset_fingerprint=fingerprint)

    if stage in ("mno", "all"):
        training = cfg.get("training", {})
        uses_tokenizer = training.get("lambda_commit", 0) > 0 or training.get("lambda_latent", 0) > 0
        files = {"best.pt": run_dir / "checkpoints" / "best.pt",
                 "config.json": run_dir / "config.json", "mno.json": run_dir / "mno.json"}
        ids["mno"] = reg.add(
            "mno", domain=domain, source={k: p for k, p in files.items() if p.exists()},
            name="mno", config={"mno": cfg.get("mno"), "training": training},
            metrics=_read_json(files["mno.json"]) if files["mno.json"].exists() else {},
            parents=[ids["dataset"], *([ids["tokenizer"]] if uses_tokenizer else [])],
            dataset_fingerprint=fingerprint)

    if stage == "all":
        rep_path = run_dir / "report.json"
        rep = _read_json(rep_path)
        pictures = {Path(p).name: run_dir / Path(p).name
                    for p in rep.get("pictures", {}).values() if p}
        overall = rep.get("verdicts", {}).get("overall", {})
        ids["evaluation"] = reg.add(
            "evaluation", domain=domain, name="evaluation",
            source={"report.json": rep_path,
                    **{n: p for n, p in pictures.items() if p.is_file()}},
            config=cfg,
            metrics={**rep.get("summary", {}), "verdict": overall.get("verdict"),
                     # Reports before the split was recorded read the test split.
                     "split": rep.get("split", "test"),
                     "samples": rep.get("samples", rep.get("test_samples")),
                     "horizon": rep.get("horizon")},
            parents=[ids["dataset"], ids["tokenizer"], ids["mno"]],
            dataset_fingerprint=fingerprint)

    if log is not None:
        log("registered in " + str(reg.root) + ": "
            + ", ".join(f"{kind} {rid}" for kind, rid in ids.items()))
    return ids
