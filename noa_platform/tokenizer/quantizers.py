"""Quantizers: EMA vector quantization, finite scalar quantization, and their residual stack.

A *level* quantizer maps ``z [N, dim]`` to ``(q [N, dim], index [N])``. :class:`ResidualQuantizer`
stacks ``levels`` of them: level ``l`` quantizes what the previous levels left
(``r_l = z - q_0 - ... - q_{l-1}``), each level with its own codebook, so a category yields one
token per level and the reconstruction error falls with depth.

Training-time codebook updates (EMA statistics, k-means initialisation, dead-code restarts) are
explicit calls made by the trainer, never side effects of ``forward``: a frozen tokenizer used
inside the MNO's loss cannot drift, whatever mode the caller leaves it in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn


class QuantizerOutput(NamedTuple):
    """What :class:`ResidualQuantizer` returns.

    ``quantized [N, dim]`` carries the gradient to ``z`` (straight-through for EMA codebooks);
    ``indices [N, levels]`` are the tokens; ``residuals`` the input of every level
    (``[N, dim]`` each, detached), which the trainer's codebook updates need.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    residuals: list[torch.Tensor]


def _distributed(module: nn.Module) -> bool:
    return (
        bool(getattr(module, "sync_distributed", False))
        and dist.is_available()
        and (dist.is_initialized())
    )


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``[N, dim]`` x ``[K, dim]`` -> ``[N, K]`` squared Euclidean distances."""
    return (
        (z * z).sum(1, keepdim=True) - 2 * z @ codebook.t() + (codebook * codebook).sum(1)[None, :]
    ).clamp_min(0)


def kmeans(
    z: torch.Tensor, k: int, *, iters: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding, then ``iters`` Lloyd iterations.

    ``z [N, dim]`` -> ``(centroids [k, dim], counts [k])``.

    Every random choice comes from ``generator``. A cluster that empties during Lloyd is
    re-seeded on the point farthest from its centroid, so all ``k`` centroids stay on data.
    With fewer distinct points than ``k`` the extra centroids repeat points.
    """
    z = z.detach().float()
    n = z.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = [z[first]]
    d2 = ((z - z[first]) ** 2).sum(1)
    for _ in range(1, k):
        weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        pick = int(torch.multinomial(weights, 1, generator=generator))
        centroids.append(z[pick])
        d2 = torch.minimum(d2, ((z - z[pick]) ** 2).sum(1))
    c = torch.stack(centroids)
    for _ in range(iters):
        dists = squared_distances(z, c)
        assign = dists.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(c).index_add_(0, assign, z)
        nonempty = counts > 0
        c = torch.where(nonempty[:, None], sums / counts.clamp_min(1)[:, None].float(), c)
        for j in torch.nonzero(~nonempty).flatten().tolist():
            far = int(squared_distances(z, c).min(1).values.argmax())
            c[j] = z[far]
    counts = torch.bincount(squared_distances(z, c).argmin(1), minlength=k)
    return c, counts


class EMAVectorQuantizer(nn.Module):
    """A codebook of ``size`` vectors of ``dim`` learned by exponential moving averages.

    State (saved): ``codebook [K, dim]``; ``usage [K]``, the EMA of the fraction of each batch
    assigned to a code (sums to ~1, independent of batch size); ``embed_sum [K, dim]``, the EMA of
    the per-batch sum of assigned vectors divided by the batch size; ``initialized``.

    The codebook is ``embed_sum / usage`` with Laplace-smoothed usage, so a rarely used code does
    not divide by ~0. Codes whose usage falls below ``dead_threshold / K`` are dead and are
    re-seeded on random latents of the current batch (:meth:`restart_dead`).
    """

    def __init__(
        self,
        dim: int,
        size: int,
        *,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_threshold: float = 0.1,
        kmeans_iters: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.size = dim, size
        self.decay, self.epsilon = decay, epsilon
        self.dead_threshold, self.kmeans_iters = dead_threshold, kmeans_iters
        self.register_buffer("codebook", torch.zeros(size, dim))
        self.register_buffer("usage", torch.full((size,), 1.0 / size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))
        # Not saved: a loaded tokenizer is not trained further. Seeded so two fits agree.
        self.generator = torch.Generator().manual_seed(seed)
        # Set by a DistributedDataParallel trainer: batch statistics are then summed over ranks
        # and restarts broadcast from rank 0. Off by default, so a fit on one rank of a
        # torchrun job does not wait on ranks that are not fitting.
        self.sync_distributed = False

    differentiable = False

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [N, dim]`` -> nearest code vectors ``[N, dim]`` (no gradient) and indices ``[N]``."""
        index = squared_distances(z.detach(), self.codebook).argmin(1)
        return self.codebook[index], index

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        return self.codebook[index]

    @torch.no_grad()
    def kmeans_init(self, z: torch.Tensor) -> None:
        """Start the codebook at k-means centroids of ``z [N, dim]`` (usage = cluster shares)."""
        z = z.detach().float().to(self.codebook.device)
        centroids, counts = kmeans(
            z.cpu(), self.size, iters=self.kmeans_iters, generator=self.generator
        )
        share = counts.float() / counts.sum()
        self._set(centroids.to(z.device), share.to(z.device))
        if _distributed(self):
            self._broadcast()
        self.initialized.fill_(1)

    def _set(self, codebook: torch.Tensor, share: torch.Tensor) -> None:
        self.codebook.copy_(codebook)
        self.usage.copy_(share)
        self.embed_sum.copy_(codebook * share[:, None])

    def _broadcast(self) -> None:
        for t in (self.codebook, self.usage, self.embed_sum):
            dist.broadcast(t, src=0)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, index: torch.Tensor) -> None:
        """One EMA step from a batch ``z [N, dim]`` and its assignments ``index [N]``.

        With ``sync_distributed`` under ``torch.distributed``, the batch statistics are summed
        over ranks first, so every rank keeps the same codebook.
        """
        z = z.detach().float()
        if not bool(self.initialized):
            self.kmeans_init(z)
            index = self.quantize(z)[1]
        counts = torch.bincount(index, minlength=self.size).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, index, z)
        n = torch.tensor(float(z.shape[0]), device=z.device)
        if _distributed(self):
            for t in (counts, sums, n):
                dist.all_reduce(t)
        self.usage.mul_(self.decay).add_(counts / n, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums / n, alpha=1 - self.decay)
        total = self.usage.sum()
        smoothed = (self.usage + self.epsilon) / (total + self.size * self.epsilon) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    def dead_codes(self) -> torch.Tensor:
        """Indices of codes whose EMA usage is below ``dead_threshold`` of the uniform share."""
        return torch.nonzero(self.usage < self.dead_threshold / self.size).flatten()

    @torch.no_grad()
    def restart_dead(self, z: torch.Tensor) -> int:
        """Re-seed dead codes on random rows of ``z [N, dim]``; returns how many were restarted.

        A restarted code gets the uniform share as usage, so it has ``log(threshold)/log(decay)``
        steps to attract data before it can be declared dead again.
        """
        dead = self.dead_codes()
        if len(dead) == 0:
            return 0
        z = z.detach().float()
        perm = torch.randperm(z.shape[0], generator=self.generator)
        picks = perm[torch.arange(len(dead)) % z.shape[0]].to(z.device)
        share = torch.full((len(dead),), 1.0 / self.size, device=z.device)
        self.codebook[dead] = z[picks]
        self.usage[dead] = share
        self.embed_sum[dead] = z[picks] * share[:, None]
        if _distributed(self):
            self._broadcast()
        return len(dead)


class _RoundSTE(torch.autograd.Function):
    """Rounding whose gradient is the identity (straight-through)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al., 2023) with learned projections.

    ``z [N, dim]`` is projected to ``len(levels)`` scalars, each bounded (tanh) to ``levels[i]``
    values and rounded with a straight-through gradient; the grid point is projected back to
    ``dim``. The implicit codebook is the grid: ``prod(levels)`` codes, index = mixed-radix
    number of the grid coordinates. No codebook to collapse, no EMA, nothing to restart.
    """

    differentiable = True

    def __init__(self, dim: int, levels: list[int]) -> None:
        super().__init__()
        self.dim, self.levels_list = dim, list(levels)
        self.size = math.prod(levels)
        levels_t = torch.tensor(levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1] + list(levels[:-1]), dtype=torch.long), 0)
        # Derived from ``levels`` (saved in JSON): non-persistent, so not in the weights file.
        self.register_buffer("_levels", levels_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)

    @property
    def _half_width(self) -> torch.Tensor:
        return torch.floor(self._levels / 2)

    def bound(self, h: torch.Tensor) -> torch.Tensor:
        """Squash ``h [N, d]`` into a range that rounds to exactly ``levels`` integers."""
        eps = 1e-3
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(h + shift) * half_l - offset

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Grid coordinates in ``[-1, 1]``, ``[N, d]``, differentiable (straight-through)."""
        return _RoundSTE.apply(self.bound(self.project_in(z))) / self._half_width

    def codes_to_index(self, codes: torch.Tensor) -> torch.Tensor:
        digits = torch.round(codes * self._half_width + self._half_width).long()
        return (digits * self._basis).sum(-1)

    def index_to_codes(self, index: torch.Tensor) -> torch.Tensor:
        digits = (index[..., None] // self._basis) % self._levels.long()
        return (digits.float() - self._half_width) / self._half_width

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.codes(z)
        return self.project_out(codes), self.codes_to_index(codes.detach())

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        return self.project_out(self.index_to_codes(index))


class ResidualQuantizer(nn.Module):
    """``levels`` quantizers applied to successive residuals; tokens ``[N, levels]``."""

    def __init__(self, levels: list[nn.Module]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(levels)

    @property
    def sizes(self) -> list[int]:
        return [q.size for q in self.levels]

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z [N, dim]``.

        EMA codebooks are not differentiable: the sum of the levels' codes is passed with the
        straight-through estimator ``z + sg(q - z)``, so the decoder's gradient reaches the
        encoder unchanged. FSQ levels are differentiable themselves (rounding is
        straight-through inside), so their sum is used as is and their projections learn.
        """
        residual, total = z, torch.zeros_like(z)
        indices, residuals = [], []
        for level in self.levels:
            residuals.append(residual.detach())
            q, index = level.quantize(residual)
            indices.append(index)
            total = total + q
            residual = residual - q
        if not self.levels[0].differentiable:
            total = z + (total - z).detach()
        return QuantizerOutput(total, torch.stack(indices, dim=1), residuals)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Tokens ``[N, levels]`` -> the quantized latent ``[N, dim]``."""
        return sum(level.lookup(indices[:, i]) for i, level in enumerate(self.levels))
