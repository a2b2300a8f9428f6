"""The domain's U-AFNO against a peer library's FNO, same data, same protocol, same budget.

neuraloperator's ``FNO`` (the optional ``bench`` extra: ``pip install -e '.[bench]'``) is
registered as an MNO architecture, ``neuralop-fno``, through the platform's own plugin
mechanism: an in-process plugin registered on a fresh registry that is handed to
:class:`~noa_platform.training.pipeline.Pipeline`. Both models are then trained by the same
``Pipeline`` stage ``mno`` (same :class:`Trainer`, optimizer, schedule, windows, validation,
early stopping, ``best.pt`` selection, seeds) from configs that differ only in
``[mno.architecture]``, and both are evaluated on the test split, which nothing else reads
(``--split val`` evaluates on the validation split instead, for choosing settings: the keys
then read ``val_vrmse``). ``--eval-dataset FILE`` evaluates on another dataset of the domain
(another ``--seed`` of the same preset: trajectories and θ no model was trained or selected on),
on its ``--split``, where ``all`` takes every sample: 256 held-out samples rather than the
test split's 25.

The FNO sees what every architecture sees (fields normalized by the
:class:`~noa_platform.models.operator.NeuralOperator`) and predicts the increment as the
U-AFNO does: ``out = z + FNO(cat(z, θ broadcast to constant channels))``. Its width is chosen so
that its parameter count (real scalars; a complex weight counts 2) is the nearest to the
U-AFNO's, and the run is refused when that is not within 10 %.

Output (``--out``, also printed): per-step test VRMSE (:func:`vrmse_per_step`, aggregated over
the test set) of every (model, seed), of persistence and of the spatial-mean forecast, and
mean ± std over seeds at steps 1, 8, 32. Without neuraloperator the script prints a JSON
object with ``"status": "skipped"`` and the reason, and exits 0. See ``benchmarks/README.md``.

    python benchmarks/baselines.py --dataset /tmp/exp/q.h5 --seeds 0,1,2 --out results.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from noa_platform.hookspecs import hookimpl

FNO_NAME = "neuralop-fno"
PLUGIN_NAME = "noa-bench-baselines"
UAFNO_KEY, FNO_KEY = "u-afno", "fno"
REPORT_STEPS = (1, 8, 32)
TOLERANCE = 0.10  # largest relative parameter-count difference accepted


# ------------------------------------------------------------------ the FNO architecture


def neuralop_missing() -> str | None:
    """Why the FNO cannot be built here, or None when neuraloperator imports."""
    try:
        importlib.import_module("neuralop.models")
    except ImportError as exc:
        return (f"neuraloperator is not installed ({type(exc).__name__}: {exc}); "
                "install the bench extra: pip install -e '.[bench]'")
    return None


def real_parameters(model: nn.Module) -> int:
    """Trainable real scalars: a complex weight counts 2 (neuraloperator's count_model_params
    does the same); the platform's ``count_parameters`` counts tensor elements."""
    return sum(p.numel() * (2 if p.is_complex() else 1)
               for p in model.parameters() if p.requires_grad)


class FNOIncrement(nn.Module):
    """neuraloperator's FNO as an MNO architecture: ``(z [B, C, H, W], θ [B, P]) -> z + Δ``.

    θ is broadcast to ``P`` constant channels appended to ``z``; the FNO maps the ``C + P``
    channels to a ``C``-channel correction added to ``z`` (the residual form the
    NeuralOperator turns into a scaled increment). ``forward_with_latent`` returns, as the
    bottleneck, the FNO's last hidden state (the projection layer's input, ``hidden_channels``
    channels at full resolution).
    """

    def __init__(self, channels: int, n_params: int, *, n_modes: int | Sequence[int] = 16,
                 hidden_channels: int = 16, n_layers: int = 4, **fno_kwargs: Any):
        super().__init__()
        from neuralop.models import FNO

        modes = (n_modes, n_modes) if isinstance(n_modes, int) else tuple(n_modes)
        self.fno = FNO(n_modes=modes, in_channels=channels + n_params, out_channels=channels,
                       hidden_channels=hidden_channels, n_layers=n_layers, **fno_kwargs)
        self.latent_channels = hidden_channels

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """Tensors only. neuraloperator's ``BaseModel.state_dict`` adds a ``_metadata`` entry
        (its constructor arguments, ``F.gelu`` included) under the top-level key of whatever
        dict it is writing into, and the platform's ``weights_only=True`` checkpoint loader
        rightly refuses to unpickle a function; drop it."""
        out = super().state_dict(*args, **kwargs)
        if isinstance(out, dict):
            out.pop("_metadata", None)
        return out

    @staticmethod
    def _inputs(z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        planes = theta.to(z.dtype)[:, :, None, None].expand(-1, -1, *z.shape[-2:])
        return torch.cat([z, planes], dim=1)

    def forward(self, z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return z + self.fno(self._inputs(z, theta))

    def forward_with_latent(self, z: torch.Tensor, theta: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        kept: list[torch.Tensor] = []
        hook = self.fno.projection.register_forward_pre_hook(
            lambda _module, args: kept.append(args[0]))
        try:
            out = z + self.fno(self._inputs(z, theta))
        finally:
            hook.remove()
        return out, kept[0]


def make_fno(*, channels: int, n_params: int, resolution: Any = None, **config: Any
             ) -> FNOIncrement:
    """``ArchitectureSpec.factory`` of ``neuralop-fno``; ``config`` goes to the FNO."""
    return FNOIncrement(channels, n_params, **config)


class BaselinePlugin:
    """In-process plugin contributing the ``neuralop-fno`` architecture."""

    def __init__(self) -> None:
        from noa_platform.api import PLUGIN_API_VERSION

        self.NOA_PLUGIN_API = PLUGIN_API_VERSION

    @hookimpl
    def noa_architectures(self) -> list[Any]:
        from noa_platform.api import ArchitectureSpec

        return [ArchitectureSpec(
            name=FNO_NAME, factory=make_fno,
            description="neuraloperator FNO, θ as constant input channels; u_{t+1} = u_t + Δ")]


def registry_with_fno() -> Any:
    """A fresh plugin registry (built-ins and installed plugins) plus ``neuralop-fno``."""
    from noa_platform.plugins import discover

    registry = discover()
    record = registry.register(BaselinePlugin(), PLUGIN_NAME)
    if record.status != "loaded":
        raise RuntimeError(f"could not register the FNO architecture: {record.error}")
    return registry


def match_fno_width(target: int, channels: int, n_params: int, n_modes: int, n_layers: int,
                    **fno_kwargs: Any) -> tuple[int, int]:
    """The ``hidden_channels`` whose FNO has the real parameter count nearest ``target``."""
    best: tuple[float, int, int] | None = None
    width = 1
    while True:
        with warnings.catch_warnings():  # tiny widths: "zero-element tensors" from torch
            warnings.simplefilter("ignore")
            count = real_parameters(FNOIncrement(channels, n_params, n_modes=n_modes,
                                                 hidden_channels=width, n_layers=n_layers,
                                                 **fno_kwargs))
        gap = abs(count - target)
        if best is None or gap < best[0]:
            best = (gap, width, count)
        if count > target or width >= 4096:
            return best[1], best[2]
        width += 1


# ------------------------------------------------------------------ evaluation


@torch.no_grad()
def test_rollouts(operator: nn.Module, test: Any, device: torch.device, batch: int = 32
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """MNO rollouts over the whole stored horizon and the CNO truth, ``[N, T+1, C, H, W]``."""
    operator.eval()
    preds, trues = [], []
    for start in range(0, len(test), batch):
        positions = np.arange(start, min(start + batch, len(test)))
        true = test.trajectories(positions)
        theta = test.theta[torch.from_numpy(positions)].to(device)
        preds.append(operator.rollout(true[:, 0].to(device), theta, test.n_frames).cpu())
        trues.append(true)
    return torch.cat(preds), torch.cat(trues)


def evaluation_split(ds: Any, split: str, dom: Any) -> Any:
    """The samples of ``ds`` the models are evaluated on: a stored split, or all of them."""
    from noa_platform.training.data import SplitData

    if split != "all":
        return SplitData.load(ds, split, dom.conditioning)
    return SplitData.from_indices(ds, np.arange(len(ds)), dom.conditioning, "every sample")


def spatial_mean_forecast(true: torch.Tensor) -> torch.Tensor:
    """Each field's own spatial mean at every step (an oracle; VRMSE 1 by definition)."""
    return true.mean(dim=(-2, -1), keepdim=True).expand_as(true)


def _curve(x: torch.Tensor) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in x]


def _mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    vals = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    mean = float(vals.mean())
    std = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
    return {"mean": mean if math.isfinite(mean) else None,
            "std": std if math.isfinite(std) else None}


# ------------------------------------------------------------------ the benchmark


def resolve_domain(spec: str, registry: Any) -> Any:
    """A registered domain name, or ``module:attr`` naming a Domain class or instance."""
    if ":" in spec:
        module, attr = spec.split(":", 1)
        obj = getattr(importlib.import_module(module), attr)
        return obj() if isinstance(obj, type) else obj
    return registry.domain(spec)


def machine() -> dict[str, Any]:
    import neuralop

    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "neuraloperator": neuralop.__version__,
            "python": platform.python_version()}


def skipped(reason: str) -> dict[str, Any]:
    return {"benchmark": "fno-baseline", "status": "skipped", "reason": reason}


def run_benchmark(*, domain: str, preset: str = "quick", dataset: str | None = None,
                  seeds: Sequence[int] = (0, 1, 2), epochs: int | None = None,
                  config_file: str | None = None, work_dir: str | os.PathLike,
                  out: str | os.PathLike | None = None, fno_modes: int | None = None,
                  fno_layers: int = 4, fno_hidden: int | None = None, device: str = "cpu",
                  split: str = "test", eval_dataset: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and test the U-AFNO and the FNO for every seed; see the module docstring."""
    from noa_platform.config import domain_config
    from noa_platform.data.store import DatasetFile
    from noa_platform.evaluation.rollout_metrics import persistence_baseline, vrmse_per_step
    from noa_platform.models import build_domain_architecture, count_parameters
    from noa_platform.training.pipeline import Pipeline

    registry = registry_with_fno()
    dom = resolve_domain(domain, registry)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)

    def config(seed: int, architecture: dict[str, Any] | None = None) -> Any:
        training: dict[str, Any] = {"seed": seed}
        if epochs is not None:
            training["epochs"] = epochs
        overrides: dict[str, Any] = {"training": training}
        if architecture is not None:
            overrides["mno"] = {"architecture": architecture}
        return domain_config(dom, preset, config_file, overrides)

    def quiet_log(prefix: str) -> Callable[[str], None]:
        return lambda m: log(f"[{prefix}] {m}")

    # The dataset: the one given, or the preset's generated into the work folder (the same as
    # `noa generate DOMAIN --preset PRESET`, features included).
    base = config(seeds[0])
    data_path = Path(dataset) if dataset else work / "dataset.h5"
    with Pipeline(dom, base, work / "dataset-run", dataset=data_path, registry=registry,
                  progress=False, log=quiet_log("dataset")).prepare_dataset():
        pass

    if eval_dataset is not None:
        with DatasetFile(eval_dataset) as eds, DatasetFile(data_path) as ds:
            if eds.domain != ds.domain or eds.shape[1:] != ds.shape[1:]:
                raise SystemExit(f"{eval_dataset}: a {eds.domain} dataset of shape "
                                 f"{list(eds.shape)}; the models need {ds.domain} "
                                 f"{list(ds.shape[1:])} per sample")
    with DatasetFile(data_path) as ds:
        shape = tuple(ds.shape)
        n_split = {s: len(ds.split(s)) for s in ("train", "val", "test")}
        fingerprint = ds.fingerprint
    resolution = min(shape[-2:])
    channels, n_params = len(dom.channels), dom.parameter_space.dim

    # Parameter budgets: the U-AFNO of the preset, an FNO of the nearest width.
    torch.manual_seed(0)
    uafno_arch = dom.architecture_config(base.mno.architecture)
    uafno = build_domain_architecture(dom, base.mno.architecture, registry=registry)
    n_uafno = real_parameters(uafno)
    modes = fno_modes if fno_modes is not None else min(16, resolution)
    if fno_hidden is None:
        fno_hidden, _ = match_fno_width(n_uafno, channels, n_params, modes, fno_layers)
    fno_arch = {"name": FNO_NAME, "n_modes": modes, "hidden_channels": fno_hidden,
                "n_layers": fno_layers}
    fno = build_domain_architecture(dom, fno_arch, registry=registry)
    n_fno = real_parameters(fno)
    gap = n_fno / n_uafno - 1
    parameters = {
        UAFNO_KEY: {"real_scalars": n_uafno, "count_parameters": count_parameters(uafno)},
        FNO_KEY: {"real_scalars": n_fno, "count_parameters": count_parameters(fno)},
        "relative_difference": gap, "tolerance": TOLERANCE,
    }
    if abs(gap) > TOLERANCE:
        raise SystemExit(f"FNO (modes {modes}, width {fno_hidden}, {fno_layers} layers) has "
                         f"{n_fno:,} parameters against the U-AFNO's {n_uafno:,} "
                         f"({gap:+.1%}, more than {TOLERANCE:.0%}); choose other --fno-* values")
    log(f"parameters: U-AFNO {n_uafno:,}, FNO {n_fno:,} ({gap:+.1%}); FNO n_modes {modes}, "
        f"hidden_channels {fno_hidden}, n_layers {fno_layers}")

    training_cfg = base.training.model_dump(mode="json")
    training_cfg.pop("seed")
    result: dict[str, Any] = {
        "benchmark": "fno-baseline", "status": "running",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "dataset": {"path": str(data_path), "fingerprint": fingerprint, "domain": dom.name,
                    "shape": list(shape), "splits": n_split},
        "protocol": {"preset": preset, "config_file": config_file, "training": training_cfg,
                     "architectures": {UAFNO_KEY: uafno_arch, FNO_KEY: fno_arch},
                     "note": "same Pipeline stage mno for both; configs differ only in "
                             "[mno.architecture]"},
        "parameters": parameters, "seeds": list(seeds), "split": split,
        "eval_dataset": eval_dataset, "report_steps": [],
        "runs": [], "baselines": {}, "summary": {}, "curves": {},
    }

    def save() -> None:
        if out is not None:
            tmp = Path(f"{out}.tmp")
            tmp.write_text(json.dumps(result, indent=1) + "\n")
            os.replace(tmp, out)

    test_true: torch.Tensor | None = None
    for seed in seeds:
        for key, arch in ((UAFNO_KEY, None), (FNO_KEY, fno_arch)):
            cfg = config(seed, arch)
            run_dir = work / f"{key}-seed{seed}"
            pipe = Pipeline(dom, cfg, run_dir, dataset=data_path, device=device,
                            registry=registry, progress=False, log=quiet_log(f"{key} {seed}"))
            start = time.perf_counter()
            run_dir.mkdir(parents=True, exist_ok=True)
            with pipe.prepare_dataset() as ds:
                tr = cfg.training
                tokenizer = (pipe.train_tokenizer(ds)
                             if tr.lambda_commit > 0 or tr.lambda_latent > 0 else None)
                operator = pipe.train_mno(ds, tokenizer, None)
                seconds = time.perf_counter() - start
                if eval_dataset is None:
                    pred, true = test_rollouts(operator, evaluation_split(ds, split, dom),
                                               pipe.device)
            if eval_dataset is not None:
                with DatasetFile(eval_dataset) as eds:
                    pred, true = test_rollouts(operator, evaluation_split(eds, split, dom),
                                               pipe.device)
            test_true = true
            summary = json.loads((run_dir / "mno.json").read_text())
            vrmse = vrmse_per_step(pred, true)
            result["runs"].append({
                "model": key, "seed": seed, "run_dir": str(run_dir),
                "steps": summary["steps"], "epochs": summary["epochs"],
                "best_val_vrmse": summary["best_val_vrmse"], "stopped": summary["stopped"],
                "seconds": seconds, f"{split}_vrmse": _curve(vrmse)})
            log(f"{key} seed {seed}: {summary['steps']} steps, {summary['epochs']} epochs, "
                f"{seconds:.0f} s; {split} VRMSE step 1 {float(vrmse[1]):.4f}")
            save()

    assert test_true is not None
    T = test_true.shape[1] - 1
    steps = [s for s in REPORT_STEPS if s <= T]
    result["report_steps"] = steps
    persistence = _curve(vrmse_per_step(persistence_baseline(test_true), test_true))
    spatial_mean = _curve(vrmse_per_step(spatial_mean_forecast(test_true), test_true))
    result["baselines"] = {"persistence": persistence, "spatial_mean": spatial_mean}
    for key in (UAFNO_KEY, FNO_KEY):
        curves = [r[f"{split}_vrmse"] for r in result["runs"] if r["model"] == key]
        per_step = [_mean_std([c[t] for c in curves]) for t in range(T + 1)]
        result["curves"][key] = {"mean": [p["mean"] for p in per_step],
                                 "std": [p["std"] for p in per_step]}
        result["summary"][key] = {str(t): per_step[t] for t in steps}
    for name, curve in (("persistence", persistence), ("spatial_mean", spatial_mean)):
        result["summary"][name] = {str(t): {"mean": curve[t], "std": 0.0} for t in steps}
    result["status"] = "complete"
    save()
    return result


def table(result: dict[str, Any]) -> str:
    """The summary as a Markdown table (mean ± std over seeds)."""
    steps = result["report_steps"]
    p = result["parameters"]
    names = {UAFNO_KEY: f"U-AFNO ({p[UAFNO_KEY]['real_scalars']:,} params)",
             FNO_KEY: f"FNO ({p[FNO_KEY]['real_scalars']:,} params)",
             "persistence": "persistence", "spatial_mean": "spatial mean"}
    lines = [f"| {result.get('split', 'test')} VRMSE | " + " | ".join(f"step {t}" for t in steps) + " |",
             "| --- |" + " --- |" * len(steps)]
    for key, label in names.items():
        cells = []
        for t in steps:
            ms = result["summary"][key][str(t)]
            m, s = ms["mean"], ms["std"]
            cells.append("n/a" if m is None else
                         f"{m:.3f}" + (f" ± {s:.3f}" if key in (UAFNO_KEY, FNO_KEY)
                                       and s is not None else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", default="reaction-diffusion",
                    help="registered domain name, or module:attr of a Domain class/instance")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--dataset", help="CNO dataset (default: the preset's, generated into "
                                      "the work folder)")
    ap.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    ap.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    ap.add_argument("--config", help="TOML applied to both models (as `noa train --config`)")
    ap.add_argument("--out", default="results.json")
    ap.add_argument("--work-dir", help="run folders (default: OUT without suffix + '-runs')")
    ap.add_argument("--fno-modes", type=int, help="FNO n_modes per axis (default: "
                                                  "min(16, resolution))")
    ap.add_argument("--fno-layers", type=int, default=4)
    ap.add_argument("--fno-hidden", type=int,
                    help="FNO hidden_channels (default: the width matching the U-AFNO's "
                         "parameter count)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--split", choices=["test", "val", "all"], default="test",
                    help="split the models are evaluated on (val: for choosing settings; "
                         "all: every sample, only with --eval-dataset)")
    ap.add_argument("--eval-dataset", help="evaluate on this dataset of the domain (another "
                                           "seed: held out) instead of the training one")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.split == "all" and not args.eval_dataset:
        raise SystemExit("--split all evaluates on every sample of --eval-dataset; the "
                         "training dataset's samples include the training split")
    reason = neuralop_missing()
    if reason is not None:
        result = skipped(reason)
        text = json.dumps(result, indent=1)
        if args.out:
            Path(args.out).write_text(text + "\n")
        print(text)
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    work = Path(args.work_dir) if args.work_dir else out.with_name(out.stem + "-runs")
    result = run_benchmark(
        domain=args.domain, preset=args.preset, dataset=args.dataset, seeds=seeds,
        epochs=args.epochs, config_file=args.config, work_dir=work, out=out,
        fno_modes=args.fno_modes, fno_layers=args.fno_layers, fno_hidden=args.fno_hidden,
        device=args.device, split=args.split, eval_dataset=args.eval_dataset,
        log=lambda m: print(m, file=sys.stderr, flush=True))
    print(table(result))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
