"""The MNO's inference against the CNO's simulation, per frame, and how both grow with the grid
and the batch.

Per frame means one stored frame (the domain's ``frame_dt``): the CNO's time includes every
internal step the frame takes (counted, as in :mod:`solvers`, by instrumenting the template's
steppers: CFL-planned fluids frames include redone ones), the MNO's is one forward step of the
operator (normalization, the architecture, the increment and its filter). Both run on the same
initial states (the domain's first initial-condition family, Sobol θ, batch ``batch``) on the
same device, timed interleaved (CNO, MNO, CNO, ...) after a warm-up, best and median.

The MNO is the domain's ``quick``-preset architecture with untrained weights: inference time
does not depend on the weights' values. Used by :mod:`run`.
"""

from __future__ import annotations

import numpy as np
import torch
from solvers import StepCounter, _timed_interleaved

#: Fraction of a frame the growth measurements integrate per domain (the cost per frame is the
#: measured time divided by it): fluids' CFL plan takes ~300 internal steps per frame at 128²
#: and ~600 at 256².
GROWTH_FRAME_FRACTION = {"fluids": 1 / 8}


def _setup(domain, size: int, batch: int, device: str):
    """Initial states, θ rows, conditioning, seeds for ``batch`` samples on ``size``²."""
    from noa_platform.data.sampling import sample_seeds, sobol_unit
    from noa_platform.data.simulate import initial_states

    space = domain.parameter_space
    values = space.from_unit(sobol_unit(space.dim, batch, 0))
    seeds = [int(s) for s in sample_seeds(0, batch)]
    family = next(iter(domain.initial_conditions))
    u0 = initial_states(domain, [family] * batch, seeds, size).to(torch.float32).to(device)
    theta = torch.as_tensor(np.asarray(values, dtype=np.float64))
    conditioning = torch.from_numpy(domain.conditioning(values)).to(torch.float32).to(device)
    return u0, theta, conditioning, seeds, family


def build_mno(domain, device: str):
    """The domain's quick-preset MNO (untrained), in eval mode on ``device``, and its size."""
    from noa_platform.config import domain_config
    from noa_platform.models import build_domain_architecture
    from noa_platform.models.architectures import count_parameters
    from noa_platform.models.operator import NeuralOperator

    cfg = domain_config(domain, "quick")
    torch.manual_seed(0)
    arch = build_domain_architecture(domain, cfg.mno.architecture)
    c = len(domain.channels)
    op = NeuralOperator(arch, torch.zeros(c), torch.ones(c),
                        increment_cutoff=getattr(cfg.mno, "increment_cutoff", None))
    return op.to(device).eval(), {"architecture": dict(cfg.mno.architecture),
                                  "parameters": count_parameters(op)}


def _cno_call(domain, u0, theta, seeds, frames: int, frame_dt: float, grid, counter):
    def run():
        counter.reset()
        domain.solver.rollout(u0, theta, frames, grid=grid, frame_dt=frame_dt, seeds=seeds)
    return run


def _mno_call(op, u0, conditioning, frames: int):
    def run():
        with torch.inference_mode():
            op.rollout(u0, conditioning, frames)
    return run


def mno_vs_cno(name: str, domain, sizes: list[int], batch: int, frames: int, repeats: int,
               device: str) -> dict:
    """Seconds per frame of the CNO and of the MNO at each size, and their ratio."""
    op, info = build_mno(domain, device)
    out: dict = {"mno": info, "batch": batch, "frames_timed": frames, "sizes": {}}
    for size in sizes:
        grid = domain.grid_for(size)
        u0, theta, cond, seeds, family = _setup(domain, size, batch, device)
        counter = StepCounter()
        cno = _cno_call(domain, u0, theta, seeds, frames, domain.frame_dt, grid, counter)
        mno = _mno_call(op, u0, cond, frames)
        with counter.active():
            (cno_best, cno_med), (mno_best, mno_med) = _timed_interleaved([cno, mno], repeats)
        steps = counter.sample_steps / batch / frames
        out["sizes"][f"{size}x{size}"] = {
            "initial_condition": family,
            "cno_internal_steps_per_frame": steps,
            "cno_seconds_per_frame": cno_best / frames,
            "cno_seconds_per_frame_median": cno_med / frames,
            "mno_seconds_per_frame": mno_best / frames,
            "mno_seconds_per_frame_median": mno_med / frames,
            "mno_speedup_per_frame": cno_best / mno_best,
            # The goal: >= 10x wherever the CNO needs >= 100 internal steps per frame.
            "goal_applies": steps >= 100,
            "goal_met": (cno_best / mno_best >= 10) if steps >= 100 else None,
        }
    return out


def growth(name: str, domain, sizes: list[int], batches: list[int], base_batch: int,
           base_size: int, repeats: int, device: str) -> dict:
    """CNO and MNO seconds per frame against grid size (batch ``base_batch``) and against
    batch (grid ``base_size``²)."""
    op, _ = build_mno(domain, device)
    fraction = GROWTH_FRAME_FRACTION.get(name, 1.0)
    points = [(s, base_batch) for s in sizes] + [(base_size, b) for b in batches
                                                  if (base_size, b) not in
                                                  [(s, base_batch) for s in sizes]]
    rows = []
    for size, batch in points:
        grid = domain.grid_for(size)
        u0, theta, cond, seeds, _ = _setup(domain, size, batch, device)
        counter = StepCounter()
        cno = _cno_call(domain, u0, theta, seeds, 1, domain.frame_dt * fraction, grid, counter)
        mno = _mno_call(op, u0, cond, 1)
        with counter.active():
            (cno_best, _), (mno_best, _) = _timed_interleaved([cno, mno], repeats)
        steps = counter.sample_steps / batch
        rows.append({
            "size": size, "batch": batch, "frame_fraction": fraction,
            "cno_internal_steps": steps,
            "cno_seconds_per_frame": cno_best / fraction,
            "cno_seconds_per_sample_step": cno_best / max(1, counter.sample_steps),
            "mno_seconds_per_frame": mno_best,
        })
    return {"frame_fraction": fraction,
            "note": ("CNO frames integrated over frame_fraction of the domain's frame and "
                     "scaled; steps are per sample over that fraction (mean over the batch)"
                     if fraction != 1.0 else "whole frames"),
            "points": rows}
