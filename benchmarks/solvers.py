"""Throughput of the domain solvers (CNO), printed as JSON.

For each domain solver, grid size and dtype: million cell-steps per second, where one
cell-step is one grid point of one sample advanced by one internal time step (all channels,
all ETDRK4 stages). Measured with ``time.perf_counter`` over whole rollouts after a warm-up;
best and median of ``--repeats``. Also the wall time of one quick-preset sample (32², 32
frames) alone and within a quick-preset batch, which bounds the cost of ``noa generate``.

    PYTHONPATH=.:domains/reaction_diffusion python benchmarks/solvers.py [--threads 1]

Intra-op threads matter: on 2 cores shared with other work, MKL's threaded FFT on these small
transforms can be an order of magnitude slower than one thread, so the thread count is
recorded with the results. ``main`` builds the result dict through one function per section,
the last of which is end-to-end generation (samples/s, MB/s written, compression ratio).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up: allocator, FFT plans, coefficient code paths
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def reaction_diffusion_throughput(sizes=(32, 64, 128), batch: int = 16,
                                  dtypes=("float32", "float64"), repeats: int = 3,
                                  device: str = "cpu") -> dict:
    """Mcell-steps/s of the reaction-diffusion solver, per kinetics, size and dtype."""
    from noa_reaction_diffusion.domain import ReactionDiffusion

    domain = ReactionDiffusion()
    space = domain.parameter_space
    rng = np.random.default_rng(0)
    out: dict = {}
    for kinetics in ("gray-scott", "fitzhugh-nagumo"):
        unit = rng.random((batch, space.dim))
        unit[:, 0] = space["kinetics"].to_unit(np.array([space["kinetics"].index(kinetics)]))
        theta = torch.tensor(space.from_unit(unit))
        # Internal steps per frame are per sample (FitzHugh–Nagumo's depend on τ).
        steps = sum(domain.solver.steps_per_frame(row, domain.frame_dt)[0]
                    for row in theta.numpy())
        for size in sizes:
            grid = domain.grid_for(size)
            u0 = domain.initial_condition("gaussian-random-field").sample(
                batch, grid, torch.Generator().manual_seed(0))
            for name in dtypes:
                x = u0.to(getattr(torch, name)).to(device)
                # At least ~40 internal steps per timed rollout; more frames on small grids.
                frames = max(1, 4 * 32 // size)

                def run():
                    domain.solver.rollout(x, theta, frames, grid=grid, frame_dt=domain.frame_dt)

                best, median = _timed(run, repeats)
                cell_steps = size * size * steps * frames
                out[f"{kinetics}/{size}x{size}/{name}"] = {
                    "batch": batch, "sample_steps": steps * frames,
                    "seconds_best": best, "seconds_median": median,
                    "mcell_steps_per_s_best": cell_steps / best / 1e6,
                    "mcell_steps_per_s_median": cell_steps / median / 1e6,
                }
    return out


def quick_preset_sample_cost(repeats: int = 2) -> dict:
    """Seconds per quick-preset sample: alone, and amortized in a batch of 32 (mixed θ)."""
    from noa_reaction_diffusion.domain import ReactionDiffusion

    domain = ReactionDiffusion()
    gen = domain.presets["quick"]["generation"]
    grid = domain.grid_for(gen["resolution"])
    space = domain.parameter_space
    batch = gen["batch_size"]
    theta = torch.tensor(space.from_unit(np.random.default_rng(1).random((batch, space.dim))))
    u0 = domain.initial_condition("random-squares").sample(
        batch, grid, torch.Generator().manual_seed(0)).float()
    result = {}
    for label, n in (("alone", 1), (f"in_batch_of_{batch}", batch)):
        best, median = _timed(lambda n=n: domain.solver.rollout(
            u0[:n], theta[:n], gen["n_frames"], grid=grid, frame_dt=domain.frame_dt), repeats)
        result[f"seconds_per_sample_{label}"] = median / n
    result["quick_dataset_estimate_s"] = (result[f"seconds_per_sample_in_batch_of_{batch}"]
                                          * gen["n_samples"])
    return result


def generation_throughput(n_samples: int = 64, features: bool = True) -> dict:
    """End to end ``noa generate`` on the quick preset: samples/s, MB/s, compression ratio.

    Includes initial conditions, the solver, feature extraction (when on), batch files and the
    final HDF5 assembly; the ratio is raw float32 trajectory bytes over bytes on disk.
    """
    import tempfile
    from pathlib import Path

    from noa_reaction_diffusion.domain import ReactionDiffusion

    from noa_platform.config import domain_config
    from noa_platform.data.generate import generate

    domain = ReactionDiffusion()
    cfg = domain_config(domain, "quick", None, {"generation": {
        "n_samples": n_samples, "features": features}}).generation
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        start = time.perf_counter()
        generate(domain, cfg, out, progress=False, log=lambda m: None)
        seconds = time.perf_counter() - start
        size = out.stat().st_size
    raw = n_samples * (cfg.n_frames + 1) * len(domain.channels) * cfg.resolution ** 2 * 4
    return {"n_samples": n_samples, "resolution": cfg.resolution, "n_frames": cfg.n_frames,
            "features": features, "seconds": seconds, "samples_per_s": n_samples / seconds,
            "mb_written_per_s": size / 1e6 / seconds, "file_mb": size / 1e6,
            "compression_ratio": raw / size}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {
        "environment": {
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": torch.get_num_threads(),
            "device": args.device,
        },
        "reaction_diffusion": reaction_diffusion_throughput(
            sizes=tuple(args.sizes), repeats=args.repeats, device=args.device),
        "reaction_diffusion_quick_preset": quick_preset_sample_cost(),
        "generation_quick_preset": generation_throughput(),
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
