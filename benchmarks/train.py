"""MNO training and inference benchmarks, printed as JSON.

* training throughput (sample-steps per second: windows × steps rolled out with gradient,
  per second) of the trainer's windowed truncated-BPTT step;
* peak resident memory of training on stored horizons of 32 and 128 frames with
  ``bptt_window`` 16, each measured in a fresh child process (the second should be within
  1.2× of the first: memory follows the window, not the horizon);
* MNO inference time per frame against the CNO solver's time per frame at 64², same batch.

Datasets are made with the exact toy domain (cheap to generate, same shapes as a real domain);
the CNO comparison uses an installed domain (default ``reaction-diffusion``).

    python benchmarks/train.py [--resolution 64 --batch 4 --domain reaction-diffusion]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

ARCH = {"base_channels": 16, "levels": 3, "modes": 8, "afno_blocks": 2, "num_blocks": 4,
        "cond_dim": 32}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def toy_trainer(*, resolution: int, timesteps: int, window: int, batch: int, n_samples: int,
                val_fraction: float, workdir: Path, device: str = "cpu") -> Iterator[Any]:
    """The set-up the training benchmarks share: a toy-domain dataset of ``timesteps`` frames
    made in ``workdir``, the :data:`ARCH` MNO (seed 0) and its :class:`Trainer`, yielded while
    the dataset is open."""
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
        "generation": {"n_samples": n_samples, "n_frames": timesteps,
                       "resolution": resolution, "features": False,
                       "splits": {"train": 1 - val_fraction, "val": val_fraction,
                                  "test": 0.0}},
        "mno": {"architecture": ARCH},
        "training": {"batch_size": batch, "bptt_window": window, "epochs": 1,
                     "save_every": 10**9},
    })
    path = workdir / f"toy-{resolution}-{timesteps}.h5"
    generate(domain, cfg.generation, path, progress=False, log=lambda m: None)
    with DatasetFile(path) as ds:
        train = SplitData.load(ds, "train", domain.conditioning)
        val = SplitData.load(ds, "val", domain.conditioning)
        torch.manual_seed(0)
        arch = build_domain_architecture(domain, cfg.mno.architecture)
        op = NeuralOperator(arch, *train.statistics(max_samples=8))
        trainer = Trainer(op, cfg, train, val, workdir / "run", dataset_fingerprint=ds.fingerprint,
                          device=device, progress=False, log=lambda m: None)
        trainer.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        yield trainer


def train_run(resolution: int, timesteps: int, window: int, batch: int, batches: int,
              workdir: Path) -> dict:
    """Train ``batches`` batches; report time and peak RSS growth over the set-up."""
    with toy_trainer(resolution=resolution, timesteps=timesteps, window=window, batch=batch,
                     n_samples=batch * batches + 2, val_fraction=0.1,
                     workdir=workdir) as trainer:
        train = trainer.train
        before = _rss_mb()
        trainer._train_batch(np.arange(batch))  # warm-up (allocator, first-touch)
        start = time.perf_counter()
        for b in range(1, batches):
            trainer._train_batch(np.arange(b * batch, (b + 1) * batch) % len(train))
        seconds = time.perf_counter() - start
    sample_steps = batch * window * (batches - 1)
    return {"resolution": resolution, "timesteps": timesteps, "bptt_window": window,
            "batch": batch, "seconds": seconds, "sample_steps_per_s": sample_steps / seconds,
            "peak_rss_growth_mb": _rss_mb() - before, "peak_rss_mb": _rss_mb()}


def inference_vs_cno(domain_name: str, resolution: int, batch: int, frames: int) -> dict:
    from noa_platform.data.simulate import simulate
    from noa_platform.models import build_domain_architecture
    from noa_platform.models.operator import NeuralOperator
    from noa_platform.plugins import get_registry

    domain = get_registry().domain(domain_name)
    space = domain.parameter_space
    from noa_platform.data.sampling import sample_seeds, sobol_unit

    unit = sobol_unit(space.dim, batch, 0)
    values = space.from_unit(unit)
    seeds = sample_seeds(0, batch)
    family = next(iter(domain.initial_conditions))
    simulate(domain, values, seeds, [family] * batch, n_frames=1, resolution=resolution)  # warm
    start = time.perf_counter()
    traj = simulate(domain, values, seeds, [family] * batch, n_frames=frames,
                    resolution=resolution)
    cno = (time.perf_counter() - start) / frames
    torch.manual_seed(0)
    arch = build_domain_architecture(domain, ARCH)
    op = NeuralOperator(arch, torch.zeros(len(domain.channels)), torch.ones(len(domain.channels)))
    op.eval()
    theta = torch.from_numpy(domain.conditioning(values))
    op.rollout(traj[:, 0], theta, 1)
    start = time.perf_counter()
    op.rollout(traj[:, 0], theta, frames)
    mno = (time.perf_counter() - start) / frames
    return {"domain": domain_name, "resolution": resolution, "batch": batch,
            "cno_seconds_per_frame": cno, "mno_seconds_per_frame": mno,
            "mno_speedup": cno / mno}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--domain", default="reaction-diffusion")
    parser.add_argument("--child", nargs=1, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one memory measurement in a fresh process
        with tempfile.TemporaryDirectory() as tmp:
            res = train_run(args.resolution, args.child[0], args.window, args.batch,
                            args.batches, Path(tmp))
        print(json.dumps(res))
        return

    runs = []
    for timesteps in (32, 128):
        out = subprocess.run([sys.executable, __file__, "--child", str(timesteps),
                              "--resolution", str(args.resolution), "--batch", str(args.batch),
                              "--batches", str(args.batches), "--window", str(args.window)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "architecture": ARCH,
        "training": runs,
        "memory_ratio_128_over_32": runs[1]["peak_rss_growth_mb"] / runs[0]["peak_rss_growth_mb"],
        "inference": inference_vs_cno(args.domain, args.resolution, args.batch, 8),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
