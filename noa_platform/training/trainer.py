"""The MNO trainer: windows over the whole stored horizon, truncated BPTT, exact resume.

Each optimizer step trains on one batch of windows. A window of ``W = bptt_window`` steps
starts at a frame drawn over the whole stored horizon (a share ``start_at_zero`` at frame 0),
so the operator learns every stage of the dynamics, not only the first frames after the
initial condition. Before the window, the rollout-stability options act:

* **pushforward** (Brandstetter et al. 2022): unroll ``k ≤ pushforward_steps`` steps without
  gradient from an earlier CNO frame, so the window starts from the model's own state;
* **input noise**: add Gaussian noise of ``input_noise`` increment-stds to the window's input;
* **horizon curriculum**: the window grows from 1 step to ``W`` over ``curriculum_epochs``.

Then ``W`` steps are rolled out with gradient and the configured losses
(:mod:`noa_platform.training.losses`) are summed: ``L = L_traj + λ_commit L_commit +
λ_latent L_latent``. Validation rolls out every val trajectory over the full stored horizon;
early stopping and ``best.pt`` follow the validation VRMSE averaged over its steps.

Exact resume: the data order of each epoch is a function of (seed, epoch), every random draw
of a batch of (seed, epoch, batch); checkpoints are taken at batch boundaries and hold
everything that evolves (weights, optimizer, scheduler, counters, every RNG state), so a
resumed run executes the same floating-point operations as an uninterrupted one.

Under ``torchrun`` (:mod:`noa_platform.training.distributed`) every process draws the whole
global batch the same way and trains on its share of it; the model and projector are one
DistributedDataParallel module, validation rolls out each process's share of the val split
and gathers the rollouts, and only rank 0 writes checkpoints and metrics. The samples and
draws do not depend on the number of processes, so a checkpoint resumes under any number.
"""

from __future__ import annotations

import json
import math
import os
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from noa_platform.atomic import atomic_write_text
from noa_platform.config import RunConfig
from noa_platform.errors import NoaError
from noa_platform.evaluation.rollout_metrics import vrmse_per_step
from noa_platform.models import LatentProjector
from noa_platform.models.operator import NeuralOperator
from noa_platform.models.rollout import rollout
from noa_platform.training.averaging import WeightAverage
from noa_platform.training.checkpoint import (
    epoch_checkpoint_name,
    load_checkpoint,
    prune_checkpoints,
    resume_mismatch,
    save_checkpoint,
)
from noa_platform.training.data import SplitData, batch_generator, epoch_order
from noa_platform.training.distributed import SINGLE, Ranks
from noa_platform.training.losses import (
    LatentDistanceLoss,
    ProjectedLatentLoss,
    TrajectoryLoss,
    Window,
    total,
)
from noa_platform.training.schedule import warmup_cosine


class TrainingError(NoaError):
    """Training cannot go on (too many non-finite updates, a checkpoint that does not fit)."""


@dataclass
class TrainState:
    """Everything besides tensors that evolves during training."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch index within `epoch`'s data order
    best_val: float = math.inf
    bad_epochs: int = 0
    nonfinite: int = 0
    stopped: str = ""
    val_history: list[float] = field(default_factory=list)


class _Trained(nn.Module):
    """What the optimizer trains, as one module for DistributedDataParallel.

    ``forward`` is a training window's rollout with gradient. The projector is applied by the
    latent loss outside ``forward``; DDP averages its gradients all the same, because its
    hooks sit on the parameters, not on ``forward``.
    """

    def __init__(self, operator: NeuralOperator, projector: LatentProjector | None):
        super().__init__()
        self.operator, self.projector = operator, projector

    def forward(self, u: torch.Tensor, theta: torch.Tensor, n_steps: int,
                latent_steps: set[int]) -> Any:
        return rollout(self.operator, u, theta, n_steps, latent_steps=latent_steps)


class Trainer:
    """Trains a :class:`NeuralOperator` on CNO trajectories; see the module docstring."""

    def __init__(
        self,
        operator: NeuralOperator,
        config: RunConfig,
        train: SplitData,
        val: SplitData,
        run_dir: str | os.PathLike,
        *,
        dataset_fingerprint: str,
        tokenizer: Any = None,
        tokenizer_fingerprint: str = "",
        feature_fn: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
        device: str | torch.device = "cpu",
        progress: bool = True,
        log: Callable[[str], None] = print,
        ranks: Ranks = SINGLE,
    ):
        self.cfg = config.training
        self.ranks = ranks
        progress = progress and ranks.is_main
        if not ranks.is_main:
            def log(message: str) -> None:
                pass
        self.config_json = config.model_dump(mode="json")
        self.model = operator.to(device)
        self.train, self.val = train, val
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.device = torch.device(device)
        self.progress, self.log = progress, log
        self.dataset_fingerprint = dataset_fingerprint
        self.tokenizer_fingerprint = tokenizer_fingerprint
        cfg = self.cfg
        if (cfg.lambda_commit > 0 or cfg.lambda_latent > 0) and (
                tokenizer is None or feature_fn is None):
            raise TrainingError("lambda_commit/lambda_latent > 0 need a trained tokenizer")
        if tokenizer is not None:
            tokenizer.requires_grad_(False)
            tokenizer.eval()
        self.losses: list[Any] = [TrajectoryLoss(per_sample=cfg.traj_per_sample_floor)]
        if cfg.lambda_commit > 0:
            self.losses.append(LatentDistanceLoss(tokenizer, feature_fn, cfg.lambda_commit))
        self.projector: LatentProjector | None = None
        if cfg.lambda_latent > 0:
            self.projector = LatentProjector(operator.architecture.latent_channels,
                                             tokenizer.latent_dim_total).to(device)
            self.losses.append(ProjectedLatentLoss(tokenizer, feature_fn, self.projector,
                                                   cfg.lambda_latent))
        # The weights validation, best.pt and the report use: the average when it is on.
        self.average = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.params = list(self.model.parameters())
        if self.projector is not None:
            self.params += list(self.projector.parameters())
        self.trained = ranks.wrap(_Trained(self.model, self.projector), self.device)
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr,
                                           weight_decay=cfg.weight_decay)
        self.batches_per_epoch = math.ceil(len(train) * cfg.windows_per_sample / cfg.batch_size)
        self.total_steps = cfg.epochs * self.batches_per_epoch
        self.scheduler = warmup_cosine(self.optimizer, cfg.warmup_steps, self.total_steps)
        self.state = TrainState()

    @property
    def evaluated(self) -> NeuralOperator:
        """The operator validation and checkpoints' ``model`` hold: the weight average when
        ``ema_decay > 0``, else the trained weights."""
        return self.model if self.average is None else self.average.model

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        s = self.state
        average = {} if self.average is None else {
            "training_model": self.model.state_dict(), "average_updates": self.average.updates}
        return {
            # The weights to use (the average when on); the raw ones only to resume training.
            "model": self.evaluated.state_dict(),
            **average,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "projector": self.projector.state_dict() if self.projector is not None else {},
            "step": s.step, "epoch": s.epoch, "batch": s.batch,
            "best_val": s.best_val, "bad_epochs": s.bad_epochs, "nonfinite": s.nonfinite,
            "stopped": s.stopped, "val_history": list(s.val_history),
            # Every draw of a batch comes from its own generator (batch_generator); the global
            # states are saved anyway so that nothing a future option draws is lost on resume.
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": (torch.stack(torch.cuda.get_rng_state_all())
                         if torch.cuda.is_available() else torch.empty(0, dtype=torch.uint8)),
            "rng_numpy": json.dumps(_numpy_state()),
            "rng_python": json.dumps(_python_state()),
            "config": json.dumps(self.config_json, sort_keys=True),
            "dataset_fingerprint": self.dataset_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint (rank 0 only; every rank holds the same state)."""
        path = self.ckpt_dir / name
        if self.ranks.is_main:
            save_checkpoint(path, self.checkpoint_state())
        return path

    def resume(self, path: str | os.PathLike) -> None:
        """Load a checkpoint after checking it belongs to this config, dataset and tokenizer."""
        ckpt = load_checkpoint(path)
        self.check_compatible(ckpt, path)
        if self.average is not None:
            self.model.load_state_dict(ckpt["training_model"])
            self.average.model.load_state_dict(ckpt["model"])
            self.average.updates = int(ckpt["average_updates"])
        else:
            self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.projector is not None:
            self.projector.load_state_dict(ckpt["projector"])
        torch.set_rng_state(ckpt["rng_torch"])
        if torch.cuda.is_available() and len(ckpt.get("rng_cuda", ())):
            torch.cuda.set_rng_state_all(list(ckpt["rng_cuda"]))
        if "rng_numpy" in ckpt:
            _set_numpy_state(json.loads(ckpt["rng_numpy"]))
            _set_python_state(json.loads(ckpt["rng_python"]))
        self.state = TrainState(
            step=ckpt["step"], epoch=ckpt["epoch"], batch=ckpt["batch"],
            best_val=ckpt["best_val"], bad_epochs=ckpt["bad_epochs"],
            nonfinite=ckpt["nonfinite"], stopped=ckpt["stopped"],
            val_history=list(ckpt["val_history"]),
        )
        self._truncate_metrics(self.state.step)
        self.log(f"resumed from {path}: epoch {self.state.epoch + 1}, batch "
                 f"{self.state.batch} of {self.batches_per_epoch}, step {self.state.step}, "
                 f"best val VRMSE {self.state.best_val:.4g}")

    def check_compatible(self, ckpt: dict[str, Any], path: str | os.PathLike) -> None:
        """Refuse a checkpoint of another config, dataset or tokenizer, naming the difference."""
        why = resume_mismatch(json.loads(ckpt["config"]), self.config_json,
                              ckpt["dataset_fingerprint"], self.dataset_fingerprint)
        if why:
            raise TrainingError(f"{path}: {why}")
        if ckpt["tokenizer_fingerprint"] != self.tokenizer_fingerprint:
            raise TrainingError(f"{path}: the checkpoint was trained with another tokenizer")

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint, so the log matches the weights."""
        if not self.ranks.is_main or not self.metrics_path.exists():
            return
        keep = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # the end of a line torn by a kill or a full disk
                continue
            if rec["step"] <= step:
                keep.append(line)
        atomic_write_text(self.metrics_path, "".join(k + "\n" for k in keep))

    def _record(self, rec: dict[str, Any]) -> None:
        if not self.ranks.is_main:
            return
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")

    # ------------------------------------------------------------------ one batch

    def window_length(self, epoch: int) -> int:
        """Steps with gradient in ``epoch``'s windows (the horizon curriculum)."""
        w, ramp = self.cfg.bptt_window, self.cfg.curriculum_epochs
        if ramp > 0:
            w = min(w, 1 + (epoch * (w - 1)) // ramp)
        return max(1, min(w, self.train.n_frames))

    def _window(self, positions: np.ndarray, gen: torch.Generator) -> Window:
        """Draw one global batch of windows (see the module docstring) and roll out this
        process's share of it (:meth:`Ranks.batch_share`)."""
        cfg, T = self.cfg, self.train.n_frames
        b = len(positions)
        w = self.window_length(self.state.epoch)
        k = 0
        if cfg.pushforward_steps > 0:
            k_max = min(cfg.pushforward_steps, T - w)
            k = int(torch.randint(0, k_max + 1, (1,), generator=gen))
        latest = T - w - k  # last frame a window's unroll may start at
        starts = torch.randint(0, latest + 1, (b,), generator=gen)
        at_zero = torch.rand(b, generator=gen) < cfg.start_at_zero
        starts = torch.where(at_zero, torch.zeros_like(starts), starts)
        mine, _ = self.ranks.batch_share(b)
        positions, starts = positions[mine], starts[mine]
        true = self.train.trajectories(positions)
        noise = (torch.randn((b, *true.shape[2:]), generator=gen)[mine] if cfg.input_noise > 0
                 else None)
        rows = torch.arange(len(positions))[:, None]
        frames = starts[:, None] + torch.arange(k + w + 1)[None, :]
        true = true[rows, frames].to(self.device)  # [b, k + w + 1, C, H, W]
        theta = self.train.theta[torch.from_numpy(positions)].to(self.device)
        u = true[:, 0]
        if k:
            u = self.model.rollout(u, theta, k)[:, -1]  # without gradient
        if noise is not None:
            u = u + cfg.input_noise * self.model.inc_std * noise.to(self.device)
        sampled: set[int] = set()
        if self.projector is not None:
            n = min(cfg.latent_sample_steps, w)
            sampled = {int(round(x)) for x in np.linspace(1, w, n)}
        r = self.trained(u, theta, w, sampled)
        return Window(pred=r.frames, true=true[:, k:], std=self.model.std, latents=r.latents)

    def _train_batch(self, positions: np.ndarray) -> dict[str, float]:
        s = self.state
        window = self._window(positions, batch_generator(self.cfg.seed, s.epoch, s.batch))
        loss, parts = total(self.losses, window)
        _, factor = self.ranks.batch_share(len(positions))
        # The global batch's mean loss and terms, the same numbers on every process: each
        # process's means weighted by its share of the batch (factor / N = share / batch).
        mean = self.ranks.sum(torch.tensor([float(loss.detach()), *parts.values()],
                                           dtype=torch.float64) * (factor / self.ranks.world_size))
        global_loss = float(mean[0])
        parts = dict(zip(parts, mean[1:].tolist(), strict=True))
        self.optimizer.zero_grad(set_to_none=True)
        # Decided on the global loss, so that every process skips the same updates.
        ok = math.isfinite(global_loss)
        grad_norm = math.nan
        if ok:
            (loss * factor).backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip))
            ok = math.isfinite(grad_norm)
        if ok:
            self.optimizer.step()
            if self.average is not None:
                self.average.update(self.model)
        else:
            # Skip the update but keep the schedule moving, so a skipped step costs one
            # update and not the alignment of the learning rate with the step counter.
            self.optimizer.zero_grad(set_to_none=True)
            s.nonfinite += 1
            if s.nonfinite > self.cfg.max_nonfinite:
                raise TrainingError(
                    f"stopped: {s.nonfinite} updates had a non-finite loss or "
                    f"gradient (training.max_nonfinite = {self.cfg.max_nonfinite}); "
                    "lower training.lr or check the dataset")
        lr = self.optimizer.param_groups[0]["lr"]
        with warnings.catch_warnings():
            # After a skipped update torch warns that the schedule moves without a step;
            # that is the intent (see above).
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        s.step += 1
        self._record({"step": s.step, "epoch": s.epoch + 1, "loss": global_loss,
                      **parts, "window": window.pred.shape[1] - 1, "lr": lr,
                      "grad_norm": grad_norm, "skipped": not ok})
        return parts

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Full-horizon rollouts of the val split: mean VRMSE over steps 1..T (aggregated over
        the split, as the report computes it) and the mean normalized squared error."""
        model = self.evaluated
        model.eval()
        preds, trues = [], []
        # Each process rolls out its share of every chunk; the rollouts are gathered, so every
        # process computes the same numbers and takes the same early-stopping decision.
        bs = max(self.cfg.batch_size, 32) * self.ranks.world_size
        for start in range(0, len(self.val), bs):
            positions = np.arange(start, min(start + bs, len(self.val)))
            true = self.val.trajectories(positions)
            lo, hi = self.ranks.share(len(positions))
            if hi > lo:
                theta = self.val.theta[torch.from_numpy(positions[lo:hi])].to(self.device)
                mine = model.rollout(true[lo:hi, 0].to(self.device), theta, self.val.n_frames)
            else:
                mine = torch.zeros((0, *true.shape[1:]), device=self.device)
            preds.append(self.ranks.gather(mine, self.ranks.share_sizes(len(positions))).cpu())
            trues.append(true)
        self.model.train()
        pred, true = torch.cat(preds), torch.cat(trues)
        vrmse = vrmse_per_step(pred, true)[1:]
        err = ((pred[:, 1:] - true[:, 1:]) / self.model.std.cpu().unsqueeze(1)) ** 2
        mean_vrmse = float(torch.nan_to_num(vrmse, nan=math.inf).mean())
        return {"val_vrmse": mean_vrmse, "val_traj": float(err.mean()),
                "val_vrmse_last": float(vrmse[-1])}

    # ------------------------------------------------------------------ the loop

    def epoch_positions(self, epoch: int) -> np.ndarray:
        """Training positions in ``epoch``'s order, each trajectory ``windows_per_sample``
        times (a fresh permutation per repeat)."""
        r, n = self.cfg.windows_per_sample, len(self.train)
        return np.concatenate([epoch_order(n, self.cfg.seed, epoch * r + j) for j in range(r)])

    def fit(self) -> TrainState:
        """Train until the configured epochs end or early stopping triggers."""
        if self.ranks.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # What a killed run left: its temporaries, epoch files a kill kept from pruning.
            prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)
        self.model.train()
        s = self.state
        bar = tqdm(total=self.cfg.epochs * self.batches_per_epoch,
                   initial=s.epoch * self.batches_per_epoch + s.batch, unit="batch",
                   desc="train mno", disable=not self.progress)
        try:
            while s.epoch < self.cfg.epochs and not s.stopped:
                order = self.epoch_positions(s.epoch)
                bs = self.cfg.batch_size
                while s.batch < self.batches_per_epoch:
                    before = s.step
                    parts = self._train_batch(order[s.batch * bs:(s.batch + 1) * bs])
                    s.batch += 1
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in parts.items()}, refresh=False)
                    bar.set_description(f"train mno epoch {s.epoch + 1}/{self.cfg.epochs}")
                    crossed = s.step // self.cfg.save_every > before // self.cfg.save_every
                    if crossed and s.batch < self.batches_per_epoch:
                        self.save("last.pt")
                self._end_epoch()
        finally:
            bar.close()
        return s

    def _end_epoch(self) -> None:
        s = self.state
        val = self.validate()
        s.val_history.append(val["val_vrmse"])
        self._record({"epoch": s.epoch + 1, **val, "step": s.step})
        improved = val["val_vrmse"] < s.best_val
        if improved:
            s.best_val, s.bad_epochs = val["val_vrmse"], 0
        else:
            s.bad_epochs += 1
        s.epoch += 1
        s.batch = 0
        if s.bad_epochs >= self.cfg.early_stop_patience:
            s.stopped = f"early stopping: no better validation VRMSE for {s.bad_epochs} epochs"
        self.log(f"epoch {s.epoch}/{self.cfg.epochs}: val VRMSE {val['val_vrmse']:.4g} "
                 f"(mean over {self.val.n_frames} steps; best {s.best_val:.4g}, last step "
                 f"{val['val_vrmse_last']:.3g}){'; ' + s.stopped if s.stopped else ''}")
        if improved:
            self.save("best.pt")
        # The epoch file before last.pt: killed between the two, the run resumes from the
        # previous last.pt and writes this epoch's file again.
        if self.cfg.keep_checkpoints > 0:
            self.save(epoch_checkpoint_name(s.epoch))
        self.save("last.pt")
        if self.ranks.is_main:
            prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)


def _numpy_state() -> list[Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_numpy_state(state: list[Any]) -> None:
    kind, keys, pos, has_gauss, cached = state
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_state(state: list[Any]) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))
