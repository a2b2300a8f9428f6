"""Training peak memory against the stored horizon (timesteps) and the BPTT window.

Each point runs in a fresh child process (``python benchmarks/memory.py --child '{...}'``), so
one point's allocations never count toward another's. The child makes a toy-domain dataset of
``timesteps`` frames (cheap, a real domain's shapes; :mod:`train` does the same), loads it,
builds the MNO and the trainer, runs one warm-up batch, then measures over ``batches`` more:

* CPU: the peak resident set of those batches above the resident set before them — Linux's
  ``VmHWM`` after its high-water mark was reset (``/proc/self/clear_refs``), minus ``VmRSS``
  before; where that is not available, ``ru_maxrss`` (whose mark then also holds the set-up);
* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
  memory allocated before.

Used by :mod:`run`; the child prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The toy MNO and trainer of :mod:`train` (the same set-up, so the two benchmarks compare).
from train import ARCH, toy_trainer

HERE = Path(__file__).resolve().parent


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(resolution: int, timesteps: int, window: int, batch: int, batches: int,
          device: str) -> dict:
    """One measurement (run in a fresh process)."""
    import torch

    cuda = device.startswith("cuda")
    # Enough training samples for the warm-up and the measured batches, a few for val.
    n_samples = batch * (batches + 1) + 4
    with tempfile.TemporaryDirectory() as tmp, toy_trainer(
            resolution=resolution, timesteps=timesteps, window=window, batch=batch,
            n_samples=n_samples, val_fraction=4 / n_samples, workdir=Path(tmp),
            device=device) as trainer:
        train = trainer.train
        trainer._train_batch(np.arange(batch))      # warm-up: allocator, first touch
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            method = "torch.cuda.max_memory_allocated"
        else:
            reset = _reset_high_water_mark()
            before_kb = _status_kb("VmRSS") if reset else None
            if before_kb is None:
                before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                method = "ru_maxrss (includes the set-up's peak)"
            else:
                method = "VmHWM after clear_refs, minus VmRSS"
        start = time.perf_counter()
        for b in range(1, batches + 1):
            trainer._train_batch(np.arange(b * batch, (b + 1) * batch) % len(train))
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if cuda:
            peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
        else:
            after_kb = (_status_kb("VmHWM") if method.startswith("VmHWM")
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            peak_mb = (after_kb - before_kb) / 1024
    return {"resolution": resolution, "timesteps": timesteps, "bptt_window": window,
            "batch": batch, "batches": batches, "device": device, "method": method,
            "peak_training_mb": peak_mb, "seconds_per_batch": seconds / batches}


def measure(points: list[tuple[int, int]], resolution: int, batch: int, batches: int,
            device: str, timeout: float = 600) -> dict:
    """Every ``(timesteps, window)`` point in its own child process."""
    rows = []
    for timesteps, window in points:
        spec = {"resolution": resolution, "timesteps": timesteps, "window": window,
                "batch": batch, "batches": batches, "device": device}
        proc = subprocess.run([sys.executable, str(HERE / "memory.py"), "--child",
                               json.dumps(spec)], capture_output=True, text=True, check=False,
                              timeout=timeout)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({**spec, "status": "failed", "reason": tail})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    failed = [r for r in rows if r.get("status") == "failed"]
    return {"status": "partial" if failed else "complete", "architecture": ARCH,
            "domain": "toy (noa_platform.testing)", "points": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", required=True, help="JSON of one point (internal)")
    args = parser.parse_args()
    spec = json.loads(args.child)
    print(json.dumps(child(spec["resolution"], spec["timesteps"], spec["window"],
                           spec["batch"], spec["batches"], spec["device"])))


if __name__ == "__main__":
    main()
