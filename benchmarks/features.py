"""Throughput of feature extraction (trajectories per second), printed as JSON.

Default workload: batch 16 of 65-frame, 2-channel, 64 x 64 float32 trajectories on CPU.
Measures each family alone, all three together (``extract_features``, which shares the
per-frame analysis), and forward + backward of all three (the cost of a feature loss).

    PYTHONPATH=. python benchmarks/features.py [--batch 16 --frames 65 --channels 2 --size 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from noa_platform.features import (
    extract_features,
    feature_names,
    initial_features,
    summary_features,
    temporal_features,
)


def _throughput(fn: Callable[[], object], batch: int, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    best, median = min(times), sorted(times)[len(times) // 2]
    return {
        "seconds_median": median,
        "seconds_best": best,
        "trajectories_per_s_median": batch / median,
        "trajectories_per_s_best": batch / best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=65, help="T+1")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.frames, args.channels, args.size, args.size)
    traj = torch.randn(shape, generator=gen, dtype=dtype).to(args.device)

    def sync() -> None:
        if traj.device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn: Callable[[torch.Tensor], object]) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                out = fn(traj)
            sync()
            return out

        return run

    def forward_backward() -> None:
        x = traj.detach().requires_grad_()
        feats = extract_features(x)
        sum(f.sum() for f in feats.values()).backward()
        sync()

    bench = {
        "initial": timed(initial_features),
        "summary": timed(summary_features),
        "temporal": timed(temporal_features),
        "all_families": timed(extract_features),
        "all_families_forward_backward": forward_backward,
    }
    results = {
        name: _throughput(fn, args.batch, args.warmup, args.repeats) for name, fn in bench.items()
    }
    report = {
        "benchmark": "features",
        "shape": list(shape),
        "dtype": args.dtype,
        "device": str(traj.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "feature_counts": {k: len(v) for k, v in feature_names().items()},
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
