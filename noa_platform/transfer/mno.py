"""MNO transfer: the source's MNO fine-tuned on k target samples against the same
architecture trained from scratch on the same k samples with the same optimizer steps.

Both runs of one (k, seed) pair differ in one thing only, the initial weights of the layers
the source can supply (:mod:`.layers`):

* the model is the source's architecture config built for the target's channels and θ
  dimension, with the same ``increment_cutoff``; its initialisation is drawn from
  ``torch.manual_seed(seed)`` in both runs, so the re-initialised layers of the fine-tuned
  model start exactly where the scratch model's do;
* the field statistics (the wrapper's mean, std and increment std) are those of the k target
  samples in both runs: the source's statistics describe other fields;
* the k samples are the first k of a seeded permutation of the target's training split;
* the training section is the target MNO's (its windows, pushforward and noise suit the
  target's dynamics) with one epoch whose batches are exactly the step budget
  (:func:`step_plan`), warm-up 10 % of the budget, and no tokenizer losses;
* the data order and every random draw of a batch follow ``training.seed = seed``.

The metric is the target's test split rolled out over the whole stored horizon from each
sample's first frame: VRMSE per step (:func:`~noa_platform.evaluation.rollout_metrics.vrmse_per_step`),
reported as its mean over steps 1..T and its value at step T.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noa_platform.api import Domain
from noa_platform.config import RunConfig
from noa_platform.data.store import DatasetFile
from noa_platform.errors import NoaError
from noa_platform.models.operator import NeuralOperator
from noa_platform.training.data import SplitData
from noa_platform.transfer.layers import LayerTransfer, transfer_layers

#: Share of the step budget spent on the linear learning-rate warm-up.
WARMUP_SHARE = 0.1
#: Validation samples the trainer rolls out at the end of its single epoch. Nothing is chosen
#: on them (there is one epoch, so its weights are the result); a few keep that roll-out cheap.
VALIDATION_SAMPLES = 4


@dataclass(frozen=True)
class StepPlan:
    """One epoch of ``steps`` batches of ``batch_size`` windows, each of the k samples
    contributing ``windows_per_sample`` windows."""

    steps: int
    batch_size: int
    windows_per_sample: int


def step_plan(k: int, steps: int, max_batch: int) -> StepPlan:
    """The largest batch size ``b <= max_batch`` for which ``steps`` batches cover every one of
    the ``k`` samples equally often (``steps * b`` a multiple of ``k``); when no such ``b``
    exists, ``b = min(max_batch, k)`` and the epoch rounds up to the next whole pass, so the
    plan may hold a few more steps than asked (the plan records how many)."""
    for b in range(min(max_batch, steps * k), 0, -1):
        if (steps * b) % k == 0:
            return StepPlan(steps, b, steps * b // k)
    b = min(max_batch, k)
    r = math.ceil(steps * b / k)
    return StepPlan(math.ceil(k * r / b), b, r)


def sample_positions(n: int, k: int, seed: int) -> np.ndarray:
    """The k training samples of ``seed``: the first k of a permutation drawn from ``seed``
    (so the sets of one seed are nested as k grows)."""
    if k > n:
        raise NoaError(f"--samples {k}: the target's training split has only {n} samples")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    return np.sort(rng.permutation(n)[:k])


@dataclass(frozen=True)
class SourceMNO:
    """What a saved source MNO contributes: its architecture config, increment cut-off and
    architecture weights."""

    architecture: dict[str, Any]
    increment_cutoff: float | None
    weights: dict[str, torch.Tensor]

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> SourceMNO:
        import json

        from noa_platform.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        config = json.loads(ckpt["config"])
        prefix = "architecture."
        weights = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
        return cls(dict(config["mno"]["architecture"]), config["mno"].get("increment_cutoff"),
                   weights)


def build_model(domain: Domain, source: SourceMNO, train: SplitData, seed: int,
                plugins: Any = None) -> NeuralOperator:
    """The source's architecture sized for ``domain``, initialised from ``seed``, wrapped with
    the statistics of ``train``."""
    from noa_platform.models.architectures import build_architecture

    torch.manual_seed(seed)
    arch = build_architecture(source.architecture, channels=len(domain.channels),
                              n_params=domain.parameter_space.dim, registry=plugins)
    return NeuralOperator(arch, *train.statistics(), increment_cutoff=source.increment_cutoff)


def transfer_config(target_config: Mapping[str, Any], source: SourceMNO, plan: StepPlan,
                    seed: int) -> RunConfig:
    """The run config of one fine-tune or scratch run (see the module docstring)."""
    training = {**target_config["training"], "epochs": 1, "batch_size": plan.batch_size,
                "windows_per_sample": plan.windows_per_sample, "seed": seed,
                "warmup_steps": round(WARMUP_SHARE * plan.steps),
                "lambda_commit": 0.0, "lambda_latent": 0.0, "early_stop_patience": 1}
    return RunConfig.model_validate({
        **{k: v for k, v in target_config.items() if k != "domain"},
        "mno": {"architecture": source.architecture, "increment_cutoff": source.increment_cutoff},
        "training": training,
    })


def train_steps(model: NeuralOperator, config: RunConfig, train: SplitData, val: SplitData,
                fingerprint: str, device: torch.device) -> int:
    """Train ``model`` for the config's one epoch; returns the optimizer steps taken."""
    from noa_platform.training.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="noa-transfer-") as work:
        trainer = Trainer(model, config, train, val, work, dataset_fingerprint=fingerprint,
                          device=device, progress=False, log=lambda m: None)
        state = trainer.fit()
    return state.step


@torch.no_grad()
def rollout_vrmse(model: NeuralOperator, data: SplitData, device: torch.device,
                  batch: int = 32) -> torch.Tensor:
    """VRMSE per step ``[T+1]`` of full-horizon rollouts of every sample of ``data``."""
    from noa_platform.evaluation.rollout_metrics import vrmse_per_step

    model.eval()
    preds, trues = [], []
    for start in range(0, len(data), batch):
        pos = np.arange(start, min(start + batch, len(data)))
        true = data.trajectories(pos)
        theta = data.theta[torch.from_numpy(pos)].to(device)
        preds.append(model.rollout(true[:, 0].to(device), theta, data.n_frames).cpu())
        trues.append(true)
    return vrmse_per_step(torch.cat(preds), torch.cat(trues))


def persistence_vrmse(data: SplitData) -> torch.Tensor:
    """VRMSE per step of repeating each test sample's first frame."""
    from noa_platform.evaluation.rollout_metrics import persistence_baseline, vrmse_per_step

    true = data.trajectories(np.arange(len(data)))
    return vrmse_per_step(persistence_baseline(true), true)


def summarize(curve: torch.Tensor) -> tuple[float, float]:
    """(mean over steps 1..T, value at step T) of a VRMSE curve."""
    steps = curve[1:]
    return float(torch.nan_to_num(steps, nan=math.inf).mean()), float(steps[-1])


@dataclass
class PairResult:
    """One (k, seed): test VRMSE (mean over steps, final step) of both runs and their steps."""

    k: int
    seed: int
    finetune: tuple[float, float]
    scratch: tuple[float, float]
    finetune_steps: int
    scratch_steps: int
    layers: LayerTransfer


def finetune_and_scratch(domain: Domain, source: SourceMNO, target_config: Mapping[str, Any],
                         dataset: DatasetFile, *, k: int, seed: int, steps: int,
                         train: SplitData, val: SplitData, test: SplitData,
                         device: torch.device, plugins: Any = None,
                         log: Callable[[str], None] = print) -> PairResult:
    """Both runs of one (k, seed) pair on ``dataset`` (the target's); see the module docstring."""
    chosen = train.subset(sample_positions(len(train), k, seed))
    plan = step_plan(k, steps, int(target_config["training"]["batch_size"]))
    config = transfer_config(target_config, source, plan, seed)
    runs: dict[str, tuple[tuple[float, float], int]] = {}
    layers = LayerTransfer((), {})
    for kind in ("finetune", "scratch"):
        model = build_model(domain, source, chosen, seed, plugins)
        if kind == "finetune":
            layers = transfer_layers(source.weights, model.architecture)
        done = train_steps(model, config, chosen, val, dataset.fingerprint, device)
        runs[kind] = (summarize(rollout_vrmse(model, test, device)), done)
        log(f"k={k} seed={seed} {kind}: {done} steps, test VRMSE {runs[kind][0][0]:.4f} "
            f"(mean over {test.n_frames} steps)")
    return PairResult(k, seed, runs["finetune"][0], runs["scratch"][0], runs["finetune"][1],
                      runs["scratch"][1], layers)
