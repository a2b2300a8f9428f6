"""Which samples shard ``k`` of ``N`` holds (``noa generate --shard k/N``).

A shard is a run of **whole generation batches**: the run's ``ceil(n_samples / batch_size)``
batches (batch ``b`` is samples ``b·batch_size`` to ``(b+1)·batch_size − 1``) are cut into
``N`` contiguous blocks, block sizes differing by at most one batch, and shard ``k``
(1-based: ``1/2`` and ``2/2`` are the halves) holds block ``k``.

Why whole batches, contiguous:

* Every batch a shard computes is a batch of the unsharded run, with the same samples in it.
  Trajectories do not depend on the batch, but features computed with them do, in the last
  bits (float reductions over a batch; measured: the ``initial`` family differs by up to
  1.5e-8 between batch sizes 4 and 5 on the toy domain). Aligned batches make merged shards
  equal an unsharded run bit for bit, features included.
* A shard's batch files are named like the unsharded run's, and a merge writes contiguous
  blocks.
* Sobol blocks cover the parameter box evenly, so contiguous shards cost about the same.

A shard file is a dataset of its own (same layout, its samples as rows, splits as row numbers)
plus the attribute ``shard`` and the dataset ``sample_index`` (each row's index in the run);
see ``docs/data-format.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from noa_platform.errors import DataError

_SYNTAX = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``of`` (1 ≤ k ≤ of)."""

    k: int
    of: int

    def __post_init__(self) -> None:
        if self.of < 1 or not 1 <= self.k <= self.of:
            raise ValueError(f"shard {self.k}/{self.of}: need 1 ≤ k ≤ N (k counts from 1)")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"k/N"`` → :class:`Shard`; a ``ValueError`` says what is wrong."""
        m = _SYNTAX.fullmatch(text)
        if not m:
            raise ValueError(f"{text!r} is not k/N (e.g. 1/4: the first of four shards)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.k}/{self.of}"

    def describe(self) -> dict[str, int]:
        return {"k": self.k, "of": self.of}

    @classmethod
    def from_description(cls, data: Any, where: str) -> Shard:
        try:
            return cls(int(data["k"]), int(data["of"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise DataError(f"{where}: unreadable shard description {data!r} ({exc})") from None

    def indices(self, n_samples: int, batch_size: int) -> np.ndarray:
        """The sorted sample indices of this shard; refuses more shards than batches."""
        batches = -(-n_samples // batch_size)
        if self.of > batches:
            raise DataError(
                f"--shard {self}: the run has {n_samples} samples in {batches} batch(es) of "
                f"{batch_size} (generation.batch_size) and a shard holds whole batches, so N "
                f"can be at most {batches}")
        first, stop = (batches * j // self.of for j in (self.k - 1, self.k))
        return np.arange(first * batch_size, min(stop * batch_size, n_samples), dtype=np.int64)


def local_splits(splits: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
    """The run's splits restricted to ``indices`` (sorted), as row numbers in that subset."""
    return {name: np.searchsorted(indices, idx[np.isin(idx, indices)]).astype(np.int64)
            for name, idx in splits.items()}
