"""Training data for the MNO: trajectories and θ of a split, and the order they are seen in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noa_platform.data.store import DatasetFile
from noa_platform.errors import DataError

# Splits larger than this are read from the file batch by batch instead of held in memory.
IN_MEMORY_BYTES = 4 * 2**30


@dataclass
class SplitData:
    """One split: ``theta`` ``[n, P]`` (unit cube) and access to trajectories by position."""

    dataset: DatasetFile
    indices: np.ndarray
    theta: torch.Tensor
    n_frames: int
    _cache: torch.Tensor | None = None

    @classmethod
    def load(cls, dataset: DatasetFile, split: str, timesteps: int | None) -> SplitData:
        indices = dataset.split(split)
        if np.any(np.diff(indices) <= 0):  # h5py reads need increasing indices
            raise DataError(f"{dataset.path}: split {split!r} indices are not sorted")
        if len(indices) == 0:
            raise DataError(f"{dataset.path}: split {split!r} is empty; use more samples")
        available = dataset.shape[1] - 1
        n_frames = available if timesteps is None else timesteps
        if n_frames > available:
            raise DataError(f"training.timesteps = {timesteps} exceeds the {available} frames "
                            f"stored in {dataset.path}")
        theta = torch.from_numpy(dataset.params("unit")[indices]).float()
        data = cls(dataset, indices, theta, n_frames)
        per_sample = int(np.prod(dataset.shape[1:])) * 4
        if per_sample * len(indices) <= IN_MEMORY_BYTES:
            data._cache = torch.from_numpy(dataset.h5["trajectories"][indices, :n_frames + 1])
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
        out[order] = self.dataset.h5["trajectories"][rows[order], :self.n_frames + 1]
        return torch.from_numpy(out)

    def sample(self, n: int) -> torch.Tensor:
        """The first ``n`` trajectories (for statistics)."""
        return self.trajectories(np.arange(min(n, len(self))))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) only.

    Resuming mid-epoch rebuilds the same order and skips the batches already done, so no
    sample is seen twice or missed.
    """
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n, generator=gen).numpy()
