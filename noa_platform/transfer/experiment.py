"""One transfer experiment from source domain A to target domain B: the tokenizer part, the
MNO part over every (k, seed), the result JSON and the curve PNG.

The result (``transfer.json``, and the registry entry's metrics) is documented field by field
in docs/transfer.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noa_platform.api import Domain
from noa_platform.atomic import atomic_write_json
from noa_platform.data.store import DatasetFile
from noa_platform.errors import NoaError
from noa_platform.training.data import SplitData
from noa_platform.transfer.mno import (
    VALIDATION_SAMPLES,
    SourceMNO,
    finetune_and_scratch,
    persistence_vrmse,
    rollout_vrmse,
    step_plan,
    summarize,
    transfer_config,
)
from noa_platform.transfer.plots import plot_transfer
from noa_platform.transfer.tokenizer import load_provenance, tokenizer_transfer

#: The default numbers of target training samples and the default step budget: small enough
#: that reaction-diffusion -> waves on the quick presets runs in a few minutes on 2 cores
#: (measured in docs/transfer.md).
DEFAULT_SAMPLES = (8, 32, 128)
DEFAULT_SEEDS = 3
DEFAULT_STEPS = 24

RESULT_FILE = "transfer.json"
PLOT_FILE = "transfer.png"


@dataclass(frozen=True)
class TransferInputs:
    """The artifacts one experiment reads: the source's tokenizer folder and MNO checkpoint,
    the target's tokenizer folder, MNO checkpoint and CNO dataset."""

    source: Domain
    target: Domain
    source_tokenizer: Path
    target_tokenizer: Path
    source_mno: Path
    target_mno: Path
    target_dataset: Path


def _spread(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


def _load_tokenizer(path: Path) -> Any:
    from noa_platform.tokenizer import Tokenizer

    return Tokenizer.load(path)


def run_transfer(inputs: TransferInputs, out_dir: str | Path, *,
                 samples: Sequence[int] = DEFAULT_SAMPLES, seeds: int = DEFAULT_SEEDS,
                 steps: int = DEFAULT_STEPS, device: str | torch.device = "cpu",
                 plugins: Any = None, log: Callable[[str], None] = print,
                 artifacts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the experiment, write ``transfer.json`` and ``transfer.png`` into ``out_dir`` and
    return the result (docs/transfer.md describes every field). ``artifacts`` (role -> registry
    id) is recorded in the result as it is."""
    samples = sorted({int(k) for k in samples})
    if not samples or samples[0] < 1:
        raise NoaError("--samples: give positive sample counts, e.g. 8,32,128")
    if seeds < 1:
        raise NoaError("--seeds must be at least 1")
    if steps < 1:
        raise NoaError("--steps must be at least 1")
    device = torch.device(device)
    out = Path(out_dir)
    started = time.perf_counter()
    a, b = inputs.source.name, inputs.target.name
    with DatasetFile(inputs.target_dataset) as ds:
        if ds.domain != b:
            raise NoaError(f"{inputs.target_dataset}: a {ds.domain!r} dataset, not {b!r}")
        n_train = len(ds.split("train"))
        if samples[-1] > n_train:
            raise NoaError(f"--samples {samples[-1]}: {b}'s training split has only {n_train} "
                           f"samples ({inputs.target_dataset})")
        ds.check_finite()
        # Every input is read before the work: the checkpoints too, not after the tokenizers.
        mnos = _load_mnos(inputs)
        log(f"tokenizer transfer: {a}'s tokenizer reading {b}'s test features")
        tok = tokenizer_transfer(_load_tokenizer(inputs.source_tokenizer),
                                 _load_tokenizer(inputs.target_tokenizer), ds,
                                 source_provenance=load_provenance(inputs.source_tokenizer),
                                 target_provenance=load_provenance(inputs.target_tokenizer))
        mno = _mno_part(inputs, ds, mnos, samples, seeds, steps, device, plugins, log)
    result = {"source": a, "target": b, "tokenizer": tok, "mno": mno,
              "seconds": time.perf_counter() - started, "artifacts": dict(artifacts or {})}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULT_FILE, result, indent=2)
    plot_transfer(mno, f"MNO transfer {a} -> {b}: {steps} optimizer steps per run, "
                  f"{seeds} seed(s)", out / PLOT_FILE)
    return result


def _load_mnos(inputs: TransferInputs) -> tuple[SourceMNO, dict[str, Any]]:
    """The source MNO and the target's checkpoint (one-line errors for bad files)."""
    from noa_platform.training.checkpoint import load_checkpoint

    return SourceMNO.from_checkpoint(inputs.source_mno), load_checkpoint(inputs.target_mno)


def _mno_part(inputs: TransferInputs, ds: DatasetFile,
              mnos: tuple[SourceMNO, dict[str, Any]], samples: Sequence[int], seeds: int,
              steps: int, device: torch.device, plugins: Any,
              log: Callable[[str], None]) -> dict[str, Any]:
    target, (source, target_ckpt) = inputs.target, mnos
    target_config = json.loads(target_ckpt["config"])
    train = SplitData.load(ds, "train", target.conditioning)
    val = SplitData.load(ds, "val", target.conditioning)
    val = val.subset(np.arange(min(VALIDATION_SAMPLES, len(val))))
    test = SplitData.load(ds, "test", target.conditioning)
    persistence = summarize(persistence_vrmse(test))
    own = _target_model(target, target_config, target_ckpt, plugins)
    reference = summarize(rollout_vrmse(own.to(device), test, device))
    log(f"{target.name} test split ({len(test)} samples, {test.n_frames} steps): persistence "
        f"VRMSE {persistence[0]:.4f}, {target.name}'s own MNO {reference[0]:.4f}")
    result: dict[str, Any] = {
        "samples": list(samples), "seeds": list(range(seeds)),
        "metric": f"mean over rollout steps 1..{test.n_frames}",
        "finetune": {}, "scratch": {}, "finetune_final": {}, "scratch_final": {},
        "steps": {}, "batch_size": {}, "summary": {},
        "persistence": persistence[0], "persistence_final": persistence[1],
        "target_mno": reference[0], "target_mno_final": reference[1],
        "n_train": len(train), "n_test": len(test), "n_frames": test.n_frames,
        "training": {},
    }
    layers = None
    for k in samples:
        key = str(k)
        plan = step_plan(k, steps, int(target_config["training"]["batch_size"]))
        for kind in ("finetune", "scratch", "finetune_final", "scratch_final"):
            result[kind][key] = []
        for seed in range(seeds):
            pair = finetune_and_scratch(target, source, target_config, ds, k=k, seed=seed,
                                        steps=steps, train=train, val=val, test=test,
                                        device=device, plugins=plugins, log=log)
            if not pair.finetune_steps == pair.scratch_steps == plan.steps:
                raise RuntimeError(f"k={k} seed={seed}: {pair.finetune_steps} fine-tune and "
                                   f"{pair.scratch_steps} scratch steps, planned {plan.steps}")
            result["finetune"][key].append(pair.finetune[0])
            result["scratch"][key].append(pair.scratch[0])
            result["finetune_final"][key].append(pair.finetune[1])
            result["scratch_final"][key].append(pair.scratch[1])
            layers = pair.layers
        result["steps"][key] = plan.steps
        result["batch_size"][key] = plan.batch_size
        result["summary"][key] = {"finetune": _spread(result["finetune"][key]),
                                  "scratch": _spread(result["scratch"][key])}
    result["layers"] = layers.to_json() if layers is not None else {}
    # The training section every run used, but for what varies with k and the seed.
    used = transfer_config(target_config, source, step_plan(samples[0], steps, 1), 0)
    result["training"] = {k: v for k, v in used.training.model_dump(mode="json").items()
                          if k not in ("batch_size", "windows_per_sample", "seed")}
    result["architecture"] = {"config": source.architecture,
                              "increment_cutoff": source.increment_cutoff}
    return result


def _target_model(domain: Domain, config: dict[str, Any], ckpt: dict[str, Any],
                  plugins: Any) -> torch.nn.Module:
    """The target's own MNO from its checkpoint (the reference trained on the whole split)."""
    from noa_platform.models.architectures import build_architecture
    from noa_platform.models.operator import NeuralOperator

    arch = build_architecture(config["mno"]["architecture"], channels=len(domain.channels),
                              n_params=domain.parameter_space.dim, registry=plugins)
    c = len(domain.channels)
    model = NeuralOperator(arch, torch.zeros(c), torch.ones(c),
                           increment_cutoff=config["mno"].get("increment_cutoff"))
    model.load_state_dict(ckpt["model"])
    return model
