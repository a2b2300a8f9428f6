"""Training data for the MNO: trajectories and θ of a split, and the order they are seen in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from noa_platform.data.store import DatasetFile
from noa_platform.errors import DataError
from noa_platform.models.operator import channel_statistics

# Splits larger than this are read from the file batch by batch instead of held in memory.
IN_MEMORY_BYTES = 4 * 2**30


@dataclass
class SplitData:
    """One split over the whole stored horizon: ``theta`` ``[n, P]`` as the operator is
    conditioned (see :meth:`noa_platform.api.ParameterSpace.conditioning`) and access to the
    trajectories ``[n, T+1, C, H, W]`` by position."""

    dataset: DatasetFile
    indices: np.ndarray
    theta: torch.Tensor
    n_frames: int
    _cache: torch.Tensor | None = None

    @classmethod
    def load(cls, dataset: DatasetFile, split: str,
             conditioning: Callable[[np.ndarray], np.ndarray]) -> SplitData:
        """``conditioning`` maps physical θ rows ``[n, P]`` to what the operator sees."""
        return cls.from_indices(dataset, dataset.split(split), conditioning, f"split {split!r}")

    @classmethod
    def from_indices(cls, dataset: DatasetFile, indices: np.ndarray,
                     conditioning: Callable[[np.ndarray], np.ndarray],
                     what: str = "the selection") -> SplitData:
        """The samples of ``dataset`` at ``indices`` (increasing), as :meth:`load` reads a
        split; ``what`` names them in errors."""
        indices = np.asarray(indices)
        if np.any(np.diff(indices) <= 0):  # h5py reads need increasing indices
            raise DataError(f"{dataset.path}: {what} indices are not sorted")
        if len(indices) == 0:
            raise DataError(f"{dataset.path}: {what} is empty; use more samples")
        n_frames = dataset.shape[1] - 1
        if n_frames < 1:
            raise DataError(f"{dataset.path}: trajectories have no frame after the first")
        theta = torch.from_numpy(np.asarray(conditioning(dataset.params("value")[indices]),
                                            dtype=np.float32))
        data = cls(dataset, indices, theta, n_frames)
        per_sample = int(np.prod(dataset.shape[1:])) * 4
        if per_sample * len(indices) <= IN_MEMORY_BYTES:
            data._cache = torch.from_numpy(dataset.h5["trajectories"][indices])
        return data

    def __len__(self) -> int:
        return len(self.indices)

    def trajectories(self, positions: np.ndarray) -> torch.Tensor:
        """``[b, n_frames + 1, C, H, W]`` float32 for positions within the split."""
        positions = np.asarray(positions)
        if self._cache is not None:
            return self._cache[torch.from_numpy(positions)]
        rows = self.indices[positions]
        order = np.argsort(rows)
        out = np.empty((len(rows), self.n_frames + 1, *self.dataset.shape[2:]), dtype=np.float32)
        out[order] = self.dataset.h5["trajectories"][rows[order]]
        return torch.from_numpy(out)

    def subset(self, positions: np.ndarray) -> SplitData:
        """The samples of this split at ``positions`` (sorted, as h5py reads need)."""
        positions = np.sort(np.asarray(positions))
        cache = self._cache[torch.from_numpy(positions)] if self._cache is not None else None
        return SplitData(self.dataset, self.indices[positions], self.theta[positions],
                         self.n_frames, cache)

    def statistics(self, max_samples: int = 1024) -> tuple[torch.Tensor, ...]:
        """Per-channel mean, std and increment std over every frame of (at most
        ``max_samples`` evenly spaced) trajectories of the split."""
        positions = np.unique(np.linspace(0, len(self) - 1, min(max_samples, len(self)))
                              .round().astype(int))
        return channel_statistics(self.trajectories(positions))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) only.

    Resuming mid-epoch rebuilds the same order and skips the batches already done, so no
    sample is seen twice or missed.
    """
    gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n, generator=gen).numpy()


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The generator of every random draw of one training batch (window starts, pushforward
    depth, input noise): a function of (seed, epoch, batch) only, so a resumed run draws
    exactly what an uninterrupted one would."""
    state = np.random.SeedSequence([seed, epoch, batch, 1]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))
