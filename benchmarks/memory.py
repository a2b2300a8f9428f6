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

HERE = Path(__file__).resolve().parent
#: The toy MNO of :mod:`train` (same sizes, so the two benchmarks' numbers compare).
ARCH = {"base_channels": 16, "levels": 3, "modes": 8, "afno_blocks": 2, "num_blocks": 4,
        "cond_dim": 32}


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

    from noa_platform.config import resolve_config
    from noa_platform.data.generate import generate
    from noa_platform.data.store import DatasetFile
    from noa_platform.models import build_domain_architecture
    from noa_platform.models.operator import NeuralOperator
    from noa_platform.testing.toy_domain import ToyDomain
    from noa_platform.training.data import SplitData
    from noa_platform.training.trainer import Trainer

    domain = ToyDomain()
    cfg = resolve_config(overrides={
        # Enough training samples for the warm-up and the measured batches, a few for val.
        "generation": {"n_samples": batch * (batches + 1) + 4, "n_frames": timesteps,
                       "resolution": resolution, "features": False,
                       "splits": {"train": 1 - 4 / (batch * (batches + 1) + 4),
                                  "val": 4 / (batch * (batches + 1) + 4), "test": 0.0}},
        "mno": {"architecture": ARCH},
        "training": {"batch_size": batch, "bptt_window": window, "epochs": 1,
                     "save_every": 10**9},
    })
    cuda = device.startswith("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "toy.h5"
        generate(domain, cfg.generation, path, progress=False, log=lambda m: None)
        with DatasetFile(path) as ds:
            train = SplitData.load(ds, "train", domain.conditioning)
            val = SplitData.load(ds, "val", domain.conditioning)
            torch.manual_seed(0)
            arch = build_domain_architecture(domain, cfg.mno.architecture)
            op = NeuralOperator(arch, *train.statistics(max_samples=8))
            trainer = Trainer(op, cfg, train, val, Path(tmp) / "run",
                              dataset_fingerprint=ds.fingerprint, device=device,
                              progress=False, log=lambda m: None)
            trainer.metrics_path.parent.mkdir(parents=True, exist_ok=True)
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
