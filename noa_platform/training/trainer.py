"""The MNO trainer: autoregressive rollouts, truncated BPTT, exact resume.

One batch of ``B`` trajectories is rolled out for ``timesteps`` frames from the CNO's initial
condition. Every ``bptt_window`` frames the rollout state is detached and an optimizer step is
taken on that window's loss, so memory grows with the window, not with the horizon:

    L = L_traj + λ_commit · L_commit + λ_latent · L_latent

* ``L_traj``: MSE between MNO and CNO frames of the window, on per-channel normalized fields.
* ``L_commit``: commitment loss of the frozen tokenizer on the differentiable features of the
  MNO rollout so far (frames before the window enter detached).
* ``L_latent``: MSE between the projected MNO bottleneck (mean over sampled frames of the
  window) and the tokenizer's pre-quantization latents of the CNO trajectory up to the same
  frame; the projector is optimized with the model and checkpointed.

Exact resume: the data order of each epoch is a function of (seed, epoch); checkpoints are
taken at batch boundaries and hold everything that evolves (weights, optimizer, scheduler,
counters, RNG state); a resumed run therefore executes exactly the same floating-point
operations as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from noa_platform.atomic import atomic_write_text
from noa_platform.config import RunConfig, first_difference
from noa_platform.errors import NoaError
from noa_platform.models import LatentProjector
from noa_platform.models.operator import NeuralOperator
from noa_platform.training.checkpoint import load_checkpoint, save_checkpoint
from noa_platform.training.data import SplitData, epoch_order
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
    ):
        self.cfg = config.training
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
        self.feature_fn = feature_fn
        self.use_commit = self.cfg.lambda_commit > 0
        self.use_latent = self.cfg.lambda_latent > 0
        if (self.use_commit or self.use_latent) and (tokenizer is None or feature_fn is None):
            raise TrainingError("lambda_commit/lambda_latent > 0 need a trained tokenizer")
        self.tokenizer = tokenizer
        if tokenizer is not None:
            tokenizer.requires_grad_(False)
            tokenizer.eval()
        self.projector: LatentProjector | None = None
        if self.use_latent:
            self.projector = LatentProjector(operator.architecture.latent_channels,
                                             tokenizer.latent_dim_total).to(device)
        self.params = list(self.model.parameters())
        if self.projector is not None:
            self.params += list(self.projector.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay)
        self.batches_per_epoch = math.ceil(len(train) / self.cfg.batch_size)
        self.windows_per_batch = math.ceil(train.n_frames / self.cfg.bptt_window)
        self.total_steps = self.cfg.epochs * self.batches_per_epoch * self.windows_per_batch
        self.scheduler = warmup_cosine(self.optimizer, self.cfg.warmup_steps, self.total_steps)
        self.state = TrainState()

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        s = self.state
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "projector": self.projector.state_dict() if self.projector is not None else {},
            "step": s.step, "epoch": s.epoch, "batch": s.batch,
            "best_val": s.best_val, "bad_epochs": s.bad_epochs, "nonfinite": s.nonfinite,
            "stopped": s.stopped, "val_history": list(s.val_history),
            "rng_torch": torch.get_rng_state(),
            "config": json.dumps(self.config_json, sort_keys=True),
            "dataset_fingerprint": self.dataset_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
        }

    def save(self, name: str) -> Path:
        return save_checkpoint(self.ckpt_dir / name, self.checkpoint_state())

    def resume(self, path: str | os.PathLike) -> None:
        """Load a checkpoint after checking it belongs to this config, dataset and tokenizer."""
        ckpt = load_checkpoint(path)
        old_cfg = json.loads(ckpt["config"])
        diff = first_difference(old_cfg, self.config_json, labels=("in the checkpoint", "now"))
        if diff:
            raise TrainingError(f"{path}: the checkpoint was trained with another config ({diff})")
        if ckpt["dataset_fingerprint"] != self.dataset_fingerprint:
            raise TrainingError(
                f"{path}: the checkpoint was trained on another dataset (fingerprint "
                f"{ckpt['dataset_fingerprint'][:12]}, this one is {self.dataset_fingerprint[:12]})")
        if ckpt["tokenizer_fingerprint"] != self.tokenizer_fingerprint:
            raise TrainingError(f"{path}: the checkpoint was trained with another tokenizer")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.projector is not None:
            self.projector.load_state_dict(ckpt["projector"])
        torch.set_rng_state(ckpt["rng_torch"])
        self.state = TrainState(
            step=ckpt["step"], epoch=ckpt["epoch"], batch=ckpt["batch"],
            best_val=ckpt["best_val"], bad_epochs=ckpt["bad_epochs"],
            nonfinite=ckpt["nonfinite"], stopped=ckpt["stopped"],
            val_history=list(ckpt["val_history"]),
        )
        self._truncate_metrics(self.state.step)
        self.log(f"resumed from {path}: epoch {self.state.epoch + 1}, batch "
                 f"{self.state.batch} of {self.batches_per_epoch}, step {self.state.step}, "
                 f"best val {self.state.best_val:.4g}")

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint, so the log matches the weights."""
        if not self.metrics_path.exists():
            return
        keep = []
        for line in self.metrics_path.read_text().splitlines():
            if json.loads(line)["step"] <= step:
                keep.append(line)
        atomic_write_text(self.metrics_path, "".join(k + "\n" for k in keep))

    def _record(self, rec: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")

    # ------------------------------------------------------------------ one batch

    def _latent_steps(self, start: int, end: int) -> set[int]:
        """Frames of the window ``start+1..end`` whose bottleneck feeds L_latent (evenly spaced)."""
        n = min(self.cfg.latent_sample_steps, end - start)
        return {int(round(x)) for x in np.linspace(start + 1, end, n)}

    def _window_loss(self, true: torch.Tensor, theta: torch.Tensor, u: torch.Tensor,
                     past: list[torch.Tensor], start: int, end: int
                     ) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, list[torch.Tensor]]:
        preds, latents = [], []
        sampled = self._latent_steps(start, end) if self.use_latent else set()
        for t in range(start + 1, end + 1):
            if t in sampled:
                u, latent = self.model.forward_with_latent(u, theta)
                latents.append(latent)
            else:
                u = self.model(u, theta)
            preds.append(u)
        pred = torch.stack(preds, dim=1)
        target = true[:, start + 1:end + 1]
        std = self.model.std.unsqueeze(1)
        l_traj = torch.mean(((pred - target) / std) ** 2)
        loss = l_traj
        parts = {"traj": l_traj.item()}
        if self.use_commit or self.use_latent:
            rollout = torch.cat([*past, pred], dim=1)
            if self.use_commit:
                l_commit = self.tokenizer.commitment_loss(self.feature_fn(rollout), check=False)
                loss = loss + self.cfg.lambda_commit * l_commit
                parts["commit"] = l_commit.item()
            if self.use_latent:
                with torch.no_grad():
                    goal = self.tokenizer.latent_vector(self.feature_fn(true[:, :end + 1]))
                projected = torch.stack([self.projector(z) for z in latents]).mean(dim=0)
                l_latent = torch.mean((projected - goal) ** 2)
                loss = loss + self.cfg.lambda_latent * l_latent
                parts["latent"] = l_latent.item()
        return loss, parts, u, [*past, pred.detach()]

    def _train_batch(self, positions: np.ndarray) -> dict[str, float]:
        true = self.train.trajectories(positions).to(self.device)
        theta = self.train.theta[torch.from_numpy(positions)].to(self.device)
        u = true[:, 0]
        past = [true[:, :1]]
        sums: dict[str, float] = {}
        T, W = self.train.n_frames, self.cfg.bptt_window
        forced = self.state.epoch < self.cfg.teacher_forcing_epochs
        for start in range(0, T, W):
            end = min(start + W, T)
            if forced:
                u = true[:, start]
            loss, parts, u, past = self._window_loss(true, theta, u.detach(), past, start, end)
            self.optimizer.zero_grad(set_to_none=True)
            ok = bool(torch.isfinite(loss))
            grad_norm = math.nan
            if ok:
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip))
                ok = math.isfinite(grad_norm)
            if ok:
                self.optimizer.step()
            else:
                # Skip the update but keep the schedule moving, so a skipped step costs one
                # update and not the alignment of the learning rate with the step counter.
                self.optimizer.zero_grad(set_to_none=True)
                self.state.nonfinite += 1
                if self.state.nonfinite > self.cfg.max_nonfinite:
                    raise TrainingError(
                        f"stopped: {self.state.nonfinite} updates had a non-finite loss or "
                        f"gradient (training.max_nonfinite = {self.cfg.max_nonfinite}); "
                        "lower training.lr or check the dataset")
            lr = self.optimizer.param_groups[0]["lr"]
            with warnings.catch_warnings():
                # After a skipped update torch warns that the schedule moves without a step;
                # that is the intent (see above).
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.scheduler.step()
            self.state.step += 1
            rec = {"step": self.state.step, "epoch": self.state.epoch + 1,
                   "loss": float(loss.item()), **parts, "lr": lr, "grad_norm": grad_norm,
                   "skipped": not ok}
            self._record(rec)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v / self.windows_per_batch
        return sums

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> float:
        """Mean normalized L_traj of full rollouts over the validation split."""
        self.model.eval()
        total, count = 0.0, 0
        for start in range(0, len(self.val), self.cfg.batch_size):
            positions = np.arange(start, min(start + self.cfg.batch_size, len(self.val)))
            true = self.val.trajectories(positions).to(self.device)
            theta = self.val.theta[torch.from_numpy(positions)].to(self.device)
            pred = self.model.rollout(true[:, 0], theta, self.val.n_frames)
            err = ((pred[:, 1:] - true[:, 1:]) / self.model.std.unsqueeze(1)) ** 2
            total += float(err.mean(dim=(1, 2, 3, 4)).sum())
            count += len(positions)
        self.model.train()
        return total / count

    # ------------------------------------------------------------------ the loop

    def fit(self) -> TrainState:
        """Train until the configured epochs end or early stopping triggers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        s = self.state
        bar = tqdm(total=self.cfg.epochs * self.batches_per_epoch,
                   initial=s.epoch * self.batches_per_epoch + s.batch, unit="batch",
                   desc="train mno", disable=not self.progress)
        try:
            while s.epoch < self.cfg.epochs and not s.stopped:
                order = epoch_order(len(self.train), self.cfg.seed, s.epoch)
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
                        self.save(f"step_{s.step:07d}.pt")
                        self.save("last.pt")
                self._end_epoch()
        finally:
            bar.close()
        return s

    def _end_epoch(self) -> None:
        s = self.state
        val = self.validate()
        s.val_history.append(val)
        self._record({"epoch": s.epoch + 1, "val_traj": val, "step": s.step})
        improved = val < s.best_val
        if improved:
            s.best_val, s.bad_epochs = val, 0
        else:
            s.bad_epochs += 1
        s.epoch += 1
        s.batch = 0
        if s.bad_epochs >= self.cfg.early_stop_patience:
            s.stopped = f"early stopping: no better validation loss for {s.bad_epochs} epochs"
        self.log(f"epoch {s.epoch}/{self.cfg.epochs}: val L_traj {val:.4g} "
                 f"(best {s.best_val:.4g}){'; ' + s.stopped if s.stopped else ''}")
        self.save(f"epoch_{s.epoch:03d}.pt")
        if improved:
            self.save("best.pt")
        self.save("last.pt")
