"""Data-parallel training across the processes ``torchrun`` starts.

``torchrun --nproc-per-node N -m noa_platform train …`` starts N copies of ``noa train`` with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in the environment.
:func:`join` turns them into a process group (gloo on CPU; NCCL on GPU, one device per
process, ``cuda:LOCAL_RANK``) and a :class:`Ranks` that the pipeline and the trainer ask
"am I the writer, which part of this batch is mine, what is the sum over all processes".
Without those variables :func:`join` returns :data:`SINGLE` and nothing changes.

How the work is split (docs/training.md, "Distributed training"):

* every process builds the same global batch order and draws every random number of a batch
  for the whole global batch from the batch's own generator, then keeps its contiguous share
  (:meth:`Ranks.share`), so the samples and draws do not depend on the number of processes;
* DistributedDataParallel averages gradients over processes; each process scales its loss by
  ``share · N / global batch`` so that average is the gradient of the global batch's mean loss
  even when the batch does not split evenly;
* rank 0 alone writes (dataset, tokenizer, checkpoints, logs, metrics, report); the others
  wait at :meth:`Ranks.barrier`, then read what it wrote.
"""

from __future__ import annotations

import atexit
import datetime
import inspect
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from noa_platform.errors import NoaError

#: How long processes wait for rank 0 at a barrier. Rank 0 may generate the dataset and fit
#: the tokenizer meanwhile, which takes hours for a large preset; the default 30 minutes of a
#: process group would kill such a run. Only the barriers wait this long (a separate gloo
#: group); a hung collective inside a training step still fails after the default timeout.
WAIT_FOR_RANK0 = datetime.timedelta(hours=48)


@dataclass
class Ranks:
    """This process's place among the training processes (``SINGLE``: the only one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: True when a process group exists, even with one process (DDP and NCCL are then used).
    distributed: bool = False
    #: Where collectives run: the training device (NCCL reduces CUDA tensors only).
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _waiting: Any = None  # the gloo group of :meth:`barrier`

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files."""
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """This rank's contiguous slice ``[lo, hi)`` of ``n`` items, sizes differing by at most
        one (as :func:`numpy.array_split`); empty when ``n`` < the number of processes."""
        base, extra = divmod(n, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def share_sizes(self, n: int) -> list[int]:
        """The size of every rank's :meth:`share` of ``n`` items, in rank order."""
        base, extra = divmod(n, self.world_size)
        return [base + (1 if r < extra else 0) for r in range(self.world_size)]

    def batch_share(self, n: int) -> tuple[slice, float]:
        """This rank's slice of a global batch of ``n`` and the factor its mean loss is scaled
        by, ``share · N / n``, so that DDP's average over processes is the global batch's mean.

        An empty share (a last batch smaller than the number of processes) becomes the batch's
        first sample with factor 0: the process still runs forward and backward, which DDP's
        collectives need, and contributes nothing.
        """
        lo, hi = self.share(n)
        if hi == lo:
            return slice(0, 1), 0.0
        return slice(lo, hi), (hi - lo) * self.world_size / n

    def barrier(self) -> None:
        """Wait until every process gets here (no-op alone).

        A process that stops instead (rank 0 refusing a dataset, say) breaks the barrier for
        the others; they then stop with one line pointing at its message, not a traceback.
        """
        if not self.distributed:
            return
        try:
            dist.barrier(group=self._waiting)
        except RuntimeError as exc:  # gloo: "Connection closed by peer", timeouts
            raise NoaError(f"rank {self.rank}: another training process stopped while this "
                           f"one waited for it (its message is above; {type(exc).__name__})"
                           ) from None

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of ``values`` over processes (a copy alone)."""
        if not self.distributed:
            return values.detach().clone()
        out = values.detach().to(self.device, copy=True)
        dist.all_reduce(out)
        return out.to(values.device)

    def gather(self, part: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Concatenate every rank's ``part`` (``sizes[r]`` rows on rank ``r``) in rank order,
        the same tensor on every process. Parts are padded to the largest size for the
        collective, which needs equal shapes."""
        if not self.distributed:
            return part
        rows = max(sizes)
        padded = part.new_zeros((rows, *part.shape[1:]), device=self.device)
        padded[:len(part)] = part
        pieces = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(pieces, padded)
        return torch.cat([p[:s] for p, s in zip(pieces, sizes, strict=True)]).to(part.device)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` under DistributedDataParallel when distributed, else itself.

        Buffers are not broadcast at every forward: the MNO's are normalization statistics
        every process computes from the same data and never changes.
        """
        if not self.distributed:
            return module
        ids = [device.index] if device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel
        # torch 2.13 renamed broadcast_buffers (now deprecated) to forward_sync_buffers; the
        # platform supports torch >= 2.2, which knows only the old name.
        name = ("forward_sync_buffers" if _accepts(ddp.__init__, "forward_sync_buffers")
                else "broadcast_buffers")
        return ddp(module, device_ids=ids, **{name: False})


SINGLE = Ranks()


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def join(device: torch.device) -> tuple[Ranks, torch.device]:
    """The process group ``torchrun`` set up for this process, and the device it trains on.

    Returns ``(SINGLE, device)`` outside torchrun. Under torchrun, a CUDA device becomes
    ``cuda:LOCAL_RANK`` and the backend NCCL; on CPU the backend is gloo. Joining twice in one
    process (a test that sets the group up itself) reuses the group.
    """
    if not launched_by_torchrun():
        return SINGLE, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise NoaError(f"--device cuda: process LOCAL_RANK={local} needs GPU {local}, but "
                           f"{torch.cuda.device_count()} are visible; start at most that many "
                           "processes per node (torchrun --nproc-per-node)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # Binding the GPU at initialisation (torch >= 2.3) lets NCCL set up eagerly.
        bind = ({"device_id": device}
                if device.type == "cuda" and _accepts(dist.init_process_group, "device_id")
                else {})
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **bind)
        # Destroyed before the interpreter tears down the backend (NCCL warns otherwise).
        atexit.register(_destroy)
    waiting = dist.new_group(backend="gloo", timeout=WAIT_FOR_RANK0)
    return Ranks(rank, world, local, True, device, waiting), device


def _accepts(fn: Any, keyword: str) -> bool:
    return keyword in inspect.signature(fn).parameters


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
