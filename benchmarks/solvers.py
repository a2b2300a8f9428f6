"""Throughput of the domain solvers (CNO) against the FFT-only bound and exponax, as JSON.

For every installed domain (found through the plugin registry) whose solver is built on the
core's :class:`~noa_platform.numerics.template.SpectralSolver`, per grid size and dtype: million
cell-steps per second, where one cell-step is one grid point of one sample advanced by one
internal time step (all channels, all integrator stages). Measured with
``time.perf_counter`` over whole rollouts (batch 16) after a warm-up; best and median of
``--repeats``. Internal steps are *counted*: the template's steppers are instrumented
(``advance(u_hat, n)`` adds ``n`` × the group's size), which is the step plan
(``steps_per_frame``) for θ-planned solvers and the steps actually taken — redone frames
included — for state-planned ones (fluids); for θ-planned solvers the count is checked
against ``steps_per_frame``.

FFT-only bound: the FFTs the internal steps make are recorded (shape, dtype, transform) over
``PROBE_STEPS`` steps of the instrumented stepper on a state of the run, then replayed on fresh
tensors of those shapes at the full batch and timed in the same run; the bound is the
cell-steps per second the FFTs alone would allow, and ``fraction_of_fft_bound`` the solver's
throughput over it.

exponax (optional, the ``bench`` extra): where it has the same equation — Gray–Scott,
2-D Navier–Stokes vorticity (viscosity and drag, no forcing), the constant-speed wave
equation — both are set up with the same equation, grid, batch, dtype, time step, scheme
order and dealiasing; the float64 trajectories are compared first, and only when they agree
are both timed (float32 and float64) and the ratio reported. Without exponax that section
says ``"status": "skipped"`` and why, and the script still exits 0.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/solvers.py --threads 1 --out solvers.json
    .venv/bin/python benchmarks/solvers.py --quick          # one small size, one repeat

Intra-op threads matter: on 2 cores shared with other work, MKL's threaded FFT on these small
transforms can be an order of magnitude slower than one thread, so the thread count is
recorded with the results (``--threads`` also limits XLA's threads for exponax, set before jax
is imported). The reaction-diffusion entries keep their former meaning and keys
(``"<kinetics>/<n>x<n>/<dtype>"``, also under the top-level ``reaction_diffusion`` key).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

BATCH = 16
#: float64 trajectories of the platform's solver and exponax must agree to this (relative L2
#: over all stored frames) before they are timed against each other. Measured differences
#: are ~1e-13 or smaller (see benchmarks/README.md); the tolerance leaves room for chaos.
AGREEMENT_TOLERANCE = 1e-8
#: Fluids' frames in the throughput benchmark are this fraction of the domain's frame: its CFL
#: plan takes 80–300 internal steps per full frame (time unit 1.0) at 32²–128².
FRAME_FRACTION = {"fluids": 1 / 16}


def _sync() -> None:
    """Wait for queued GPU work, so that a timer read after it sees its end (a no-op on CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up: allocator, FFT plans, coefficient code paths
    _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


#: Interleaved timings repeat until every function has run about this long in total (at most
#: ``MAX_REPEATS`` rounds): a 30 ms rollout timed 5 times on a loaded machine is mostly noise.
MIN_TOTAL_SECONDS = 1.5
MAX_REPEATS = 40


def _timed_interleaved(fns: list[Callable[[], object]], repeats: int,
                       min_total: float = MIN_TOTAL_SECONDS) -> list[tuple[float, float]]:
    """(best, median) seconds of each function, timed in turn (a, b, c, a, b, c, ...) after a
    warm-up call each; at least ``repeats`` rounds, more (up to ``MAX_REPEATS``) until every
    function has had about ``min_total`` seconds (judged from the slowest warm-up)."""
    warm = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        _sync()
        warm.append(time.perf_counter() - start)
    once = max(max(warm), 1e-6)
    repeats = max(repeats, min(MAX_REPEATS, math.ceil(min_total / once)))
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            _sync()
            out.append(time.perf_counter() - start)
    return [(min(t), statistics.median(t)) for t in times]


def _timed_pair(fa: Callable[[], object], fb: Callable[[], object], repeats: int,
                warm: bool = True) -> tuple[tuple[float, float], tuple[float, float]]:
    """``_timed`` of two functions, interleaved (a, b, a, b, ...) so that a change in the
    machine's load hits both alike; ``((best, median) of a, (best, median) of b)``."""
    if warm:
        fa()
        fb()
    _sync()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((fa, times[0]), (fb, times[1])):
            start = time.perf_counter()
            fn()
            _sync()
            out.append(time.perf_counter() - start)
    return ((min(times[0]), statistics.median(times[0])),
            (min(times[1]), statistics.median(times[1])))


# ----------------------------------------------------------------------- instrumentation


class StepCounter:
    """Counts the internal sample-steps the template's steppers take, and keeps the stepper
    of the largest group and its input state (for recording one step's FFTs).

    Patches ``noa_platform.numerics.template.make_stepper`` (the template builds every stepper
    through it) while active; each stepper's ``advance(u_hat, n)`` adds ``n × batch``.
    """

    def __init__(self) -> None:
        self.sample_steps = 0
        self.calls: list[tuple[int, int]] = []   # (group size, steps) per advance call
        self.setup_seconds = 0.0                 # spent building steppers (ETD coefficients)
        self.probe: tuple[object, torch.Tensor] | None = None

    def reset(self) -> None:
        self.sample_steps = 0
        self.calls = []
        self.setup_seconds = 0.0

    @contextlib.contextmanager
    def active(self):
        from noa_platform.numerics import template

        original = template.make_stepper

        def make_stepper(*args, **kwargs):
            start = time.perf_counter()
            stepper = original(*args, **kwargs)
            self.setup_seconds += time.perf_counter() - start
            advance = stepper.advance

            def counted(u_hat, n_steps):
                self.sample_steps += int(n_steps) * int(u_hat.shape[0])
                self.calls.append((int(u_hat.shape[0]), int(n_steps)))
                if self.probe is None or u_hat.shape[0] > self.probe[1].shape[0]:
                    self.probe = (stepper, u_hat.detach().clone())   # the largest group
                return advance(u_hat, n_steps)

            stepper.advance = counted
            return stepper

        template.make_stepper = make_stepper
        try:
            yield self
        finally:
            template.make_stepper = original


_FFT_NAMES = ("rfft2", "irfft2", "fft2", "ifft2", "rfftn", "irfftn", "fftn", "ifftn")


@contextlib.contextmanager
def _recording_ffts(log: list):
    """Record every ``torch.fft.<transform>`` call as ``(name, shape, dtype, kwargs)``."""
    originals = {name: getattr(torch.fft, name) for name in _FFT_NAMES}

    def wrap(name, fn):
        def recorded(x, *args, **kwargs):
            log.append((name, tuple(x.shape), x.dtype, args, dict(kwargs)))
            return fn(x, *args, **kwargs)
        return recorded

    for name, fn in originals.items():
        setattr(torch.fft, name, wrap(name, fn))
    try:
        yield log
    finally:
        for name, fn in originals.items():
            setattr(torch.fft, name, fn)


#: The FFT-only bound is recorded over this many steps of ``advance`` and divided by it, so that
#: a scheme that reuses an evaluation of ``N`` from one step in the next (the splitting with a
#: kick-invariant term: ``N`` once per step) is charged its amortized FFTs.
PROBE_STEPS = 8


def fft_replay(stepper, u_hat: torch.Tensor, batch: int
               ) -> tuple[dict[str, float], Callable | None, int]:
    """The FFTs the internal steps make, ready to replay at ``batch`` samples.

    The calls are recorded during ``stepper.advance(u_hat, PROBE_STEPS)`` (``u_hat`` holds
    ``b`` samples; leading sizes equal to ``b`` — or 2 for a lone transform taken as a pair —
    are scaled to ``batch``) and rebuilt on fresh tensors of those shapes and dtypes. Returns
    the transforms per step (``{"irfft2[16, 2, 64, 33]": 4.0, ...}``), a function replaying
    them ``loops`` times, and the number of steps one call of it replays (``loops ×
    PROBE_STEPS``, enough for ~50 ms); the function is ``None`` when a step makes no FFT (e.g.
    a uniform wave medium: the exact linear flow only).
    """
    log: list = []
    with torch.no_grad(), _recording_ffts(log):
        stepper.advance(u_hat, PROBE_STEPS)
    b = int(u_hat.shape[0])
    gen = torch.Generator().manual_seed(0)
    calls = []
    for name, shape, dtype, args, kwargs in log:
        lead = (batch if shape[0] == b or (b == 1 and shape[0] == 2)
                else max(1, shape[0] * batch // b))
        full = (lead, *shape[1:])
        real = torch.float32 if dtype in (torch.float32, torch.complex64) else torch.float64
        x = torch.randn(full, generator=gen, dtype=real)
        if dtype.is_complex:
            x = torch.complex(x, torch.randn(full, generator=gen, dtype=real))
        x = x.to(u_hat.device)
        calls.append((getattr(torch.fft, name), x, args, kwargs))
    summary: dict[str, float] = {}
    for (name, *_), (_, x, _, _) in zip(log, calls, strict=True):
        key = f"{name}{[int(x.shape[0]), *x.shape[1:]]}"
        summary[key] = summary.get(key, 0.0) + 1.0 / PROBE_STEPS
    if not calls:
        return {}, None, 0

    def replay():
        for fn, x, args, kwargs in calls:
            fn(x, *args, **kwargs)

    # Enough replays per measurement to reach ~50 ms; best of at least 7 (the machine is
    # shared: the best is the least disturbed).
    replay()                                   # warm-up (plans; on a GPU, cuFFT's)
    _sync()
    start = time.perf_counter()
    replay()
    _sync()
    once = max(time.perf_counter() - start, 1e-6)
    loops = max(1, int(0.05 / once))

    def timed():
        for _ in range(loops):
            replay()

    return summary, timed, loops * PROBE_STEPS


# ----------------------------------------------------------------------- cases per domain


@dataclass
class Case:
    """One throughput measurement set-up: θ rows, an initial-condition family, frames."""

    label: str
    theta: np.ndarray               # [batch, P]
    family: str
    frame_dt: float
    seeds: list[int] | None = None
    notes: dict = field(default_factory=dict)


def _unit_rows(space, batch: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((batch, space.dim))


def domain_cases(name: str, domain, batch: int, rng: np.random.Generator) -> list[Case]:
    """Throughput cases of a domain: reaction-diffusion one per kinetics (as before), every
    other domain θ drawn uniformly from its parameter space (unit cube, seeded) and its first
    initial-condition family."""
    space = domain.parameter_space
    frame_dt = domain.frame_dt * FRAME_FRACTION.get(name, 1.0)
    if name == "reaction-diffusion":
        cases = []
        for kinetics in ("gray-scott", "fitzhugh-nagumo"):
            unit = _unit_rows(space, batch, rng)
            unit[:, 0] = space["kinetics"].to_unit(np.array([space["kinetics"].index(kinetics)]))
            cases.append(Case(kinetics, space.from_unit(unit), "gaussian-random-field",
                              frame_dt))
        return cases
    family = next(iter(domain.initial_conditions))
    notes = {}
    if frame_dt != domain.frame_dt:
        notes["frame_dt_note"] = (f"frames of {frame_dt:g} = {FRAME_FRACTION[name]:g} of the "
                                  f"domain's frame {domain.frame_dt:g}, to bound the run time")
    return [Case("uniform-theta", space.from_unit(_unit_rows(space, batch, rng)), family,
                 frame_dt, seeds=list(range(batch)), notes=notes)]


def _planned_steps(solver, case: Case, grid) -> int | None:
    """Σ over samples of ``steps_per_frame`` (None for a state-planned solver)."""
    if getattr(solver, "state_dependent_steps", False):
        return None
    total = 0
    for i, row in enumerate(case.theta):
        seed = None if case.seeds is None else case.seeds[i]
        total += solver.steps_per_frame(row, case.frame_dt, None, seed=seed, grid=grid)[0]
    return total


def domain_throughput(name: str, domain, sizes, dtypes, repeats: int, batch: int = BATCH,
                      device: str = "cpu") -> dict:
    """Mcell-steps/s of one domain's solver per case, size and dtype, with the FFT bound."""
    from noa_platform.numerics.template import SpectralSolver

    solver = domain.solver
    if not isinstance(solver, SpectralSolver):
        return {"status": "skipped",
                "reason": f"{type(solver).__name__} is not a SpectralSolver: no step plan to "
                          "count"}
    rng = np.random.default_rng(0)
    out: dict = {}
    for case in domain_cases(name, domain, batch, rng):
        theta = torch.tensor(case.theta)
        for size in sizes:
            grid = domain.grid_for(size)
            u0 = domain.initial_condition(case.family).sample(
                batch, grid, torch.Generator().manual_seed(0))
            planned = _planned_steps(solver, case, grid)
            for dtype_name in dtypes:
                x = u0.to(getattr(torch, dtype_name)).to(device)
                # At least ~40 internal steps per timed rollout; more frames on small grids.
                frames = max(1, 4 * 32 // size)
                counter = StepCounter()

                def run(x=x, frames=frames, grid=grid, case=case, counter=counter,
                        theta=theta):
                    counter.reset()
                    solver.rollout(x, theta, frames, grid=grid, frame_dt=case.frame_dt,
                                   seeds=case.seeds)

                with counter.active():
                    run()                 # warm-up; also finds the stepper to probe
                    stepper, u_hat = counter.probe
                    transforms, replay, loops = fft_replay(stepper, u_hat, batch)
                    if replay is None:
                        best, median = _timed(run, repeats)
                        fft_best = None
                    else:
                        # Solver and FFTs interleaved, so that the machine's load hits both.
                        (best, median), (fft_best, _) = _timed_pair(
                            run, replay, max(3, repeats), warm=False)
                sample_steps = counter.sample_steps          # of the last repeat
                if planned is not None and sample_steps != planned * frames:
                    raise RuntimeError(f"{name}/{case.label}: counted {sample_steps} "
                                       f"sample-steps, planned {planned * frames}")
                cells = size * size
                cell_steps = cells * sample_steps
                entry = {
                    "batch": batch, "frames": frames, "frame_dt": case.frame_dt,
                    "sample_steps": sample_steps,
                    "steps_per_frame_mean": sample_steps / batch / frames,
                    "step_count": "plan" if planned is not None else "counted",
                    "stepper_setup_seconds": counter.setup_seconds,   # within the last repeat
                    "seconds_best": best, "seconds_median": median,
                    "mcell_steps_per_s_best": cell_steps / best / 1e6,
                    "mcell_steps_per_s_median": cell_steps / median / 1e6,
                    **case.notes,
                }
                per_step = None if fft_best is None else fft_best / loops
                bound = {"ffts_per_step": sum(transforms.values()), "transforms": transforms,
                         "seconds_per_step": per_step,
                         "mcell_steps_per_s": (None if per_step is None
                                               else batch * cells / per_step / 1e6)}
                entry["fft_only"] = bound
                entry["fraction_of_fft_bound"] = (
                    None if bound["mcell_steps_per_s"] is None
                    else entry["mcell_steps_per_s_best"] / bound["mcell_steps_per_s"])
                out[f"{case.label}/{size}x{size}/{dtype_name}"] = entry
    return out


def all_domains_throughput(sizes, dtypes, repeats: int, device: str = "cpu",
                           only: list[str] | None = None) -> dict:
    """``domain_throughput`` for every domain in the plugin registry (or ``only`` those)."""
    from noa_platform.plugins import get_registry

    registry = get_registry()
    out = {}
    for name in sorted(registry.domains):
        if only and name not in only:
            continue
        out[name] = domain_throughput(name, registry.domains[name], sizes, dtypes, repeats,
                                      device=device)
    return out


# ----------------------------------------------------------------------- exponax


def exponax_missing() -> str | None:
    """Why exponax cannot be used here, or None when it and jax import."""
    try:
        importlib.import_module("jax")
        importlib.import_module("exponax")
    except ImportError as exc:
        return (f"exponax is not installed ({type(exc).__name__}: {exc}); install the bench "
                "extra: pip install -e '.[bench]'")
    return None


def _limit_xla_threads(threads: int | None) -> None:
    """One XLA CPU thread when ``--threads 1`` (only effective before jax is imported)."""
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()


def _matching_fraction(n: int, keep: int) -> float:
    """exponax's ``dealiasing_fraction`` that keeps ``|mode| <= keep`` per axis on ``n``
    points: its mask keeps ``|mode| <= fraction · (n//2) − 1``."""
    return (keep + 1.5) / (n // 2)


@dataclass
class PeerSetup:
    """One equation set up identically in the platform's solver and in exponax."""

    equation: str
    domain: str
    theta_row: dict
    family: str
    frame_dt: float
    frames: int
    internal_dt: float | None
    order: int
    make_exponax: Callable[[int, float], object]    # (points, dt) -> exponax stepper
    scheme: str


def peer_setups(registry) -> list[PeerSetup]:
    """The three equations exponax shares with the first-party domains (those installed)."""
    import exponax

    setups = []
    if "reaction-diffusion" in registry.domains:
        rd = registry.domains["reaction-diffusion"]
        from noa_reaction_diffusion.kinetics import GrayScott
        f, k = 0.04, 0.06

        def gray_scott(n, dt, rd=rd):
            extent = rd.grid_for(n).extent[0]          # grid units: spacing 1
            return exponax.stepper.reaction.GrayScott(
                2, extent, n, dt, diffusivity_1=GrayScott.DU, diffusivity_2=GrayScott.DV,
                feed_rate=f, kill_rate=k, order=4,
                dealiasing_fraction=_matching_fraction(n, n // 2))   # keeps every mode
        setups.append(PeerSetup(
            "gray-scott", "reaction-diffusion",
            {"kinetics": rd.parameter_space["kinetics"].index("gray-scott"), "F": f, "k": k,
             "kappa": 0.0, "tau": 0.5},
            "random-squares", rd.frame_dt, 4, None, 4, gray_scott,
            "ETDRK4, no dealiasing, exponax GrayScott(order=4)"))
    if "fluids" in registry.domains:
        fl = registry.domains["fluids"]
        nu, alpha = 0.05, 0.1

        def navier_stokes(n, dt, fl=fl):
            keep = math.floor(2.0 / 3.0 * n / 2)   # the platform's 2/3 rule, per axis
            return exponax.stepper.NavierStokesVorticity(
                2, fl.grid_for(n).extent[0], n, dt, diffusivity=nu, drag=-alpha, order=4,
                dealiasing_fraction=_matching_fraction(n, keep))
        setups.append(PeerSetup(
            "navier-stokes-vorticity", "fluids",
            {"nu": nu, "alpha": alpha, "forcing": 0.0, "forcing_k": 2},
            "gaussian-random-field", 0.25, 2, 0.005, 4, navier_stokes,
            "ETDRK4, 2/3 dealiasing, internal_dt 0.005 (under the CFL limit: every frame "
            "takes the θ plan's 50 steps, checked), exponax NavierStokesVorticity(order=4, "
            "drag=-α)"))
    if "waves" in registry.domains:
        wv = registry.domains["waves"]
        c = 0.75

        def wave(n, dt, wv=wv):
            return exponax.stepper.Wave(2, wv.grid_for(n).extent[0], n, dt, speed_of_sound=c)
        setups.append(PeerSetup(
            "wave-constant-speed", "waves",
            {"c": c, "speed_amplitude": 0.0, "correlation_length": 0.2, "gamma": 0.0},
            "random-field", wv.frame_dt, 32, None, 0, wave,
            "uniform medium: one exact step per frame (matrix exponential), exponax "
            "Wave (exact, ETDRK0 on the diagonalised system)"))
    return setups


def _theta(domain, values: dict, batch: int) -> np.ndarray:
    row = np.array([float(values[n]) for n in domain.parameter_space.names])
    return np.tile(row, (batch, 1))


def _exponax_rollout(stepper_factory, n: int, dt: float, steps: int, frames: int,
                     dtype: str):
    """A jitted, batched exponax rollout ``[B, C, H, W] -> [B, frames, C, H, W]`` in
    ``dtype`` (jax's x64 mode is switched to match before anything is built)."""
    import exponax
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    stepper = stepper_factory(n, dt)
    if steps > 1:
        stepper = exponax.RepeatedStepper(stepper, steps)
    return jax.jit(jax.vmap(exponax.rollout(stepper, frames, include_init=False)))


def exponax_comparison(sizes, dtypes, repeats: int, batch: int = BATCH,
                       timing: bool = True) -> dict:
    """Agreement (float64), then timing (unless ``timing`` is false), of each shared equation;
    see the module docstring."""
    reason = exponax_missing()
    if reason:
        return {"status": "skipped", "reason": reason}
    import exponax
    import jax
    import jax.numpy as jnp

    from noa_platform.plugins import get_registry

    registry = get_registry()
    result: dict = {"status": "complete", "jax": jax.__version__,
                    "exponax": getattr(exponax, "__version__", None) or _dist_version("exponax"),
                    "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "tolerance": AGREEMENT_TOLERANCE, "batch": batch, "equations": {}}
    for setup in peer_setups(registry):
        domain = registry.domains[setup.domain]
        solver = domain.solver
        theta = torch.tensor(_theta(domain, setup.theta_row, batch))
        eq: dict = {"domain": setup.domain, "theta": setup.theta_row, "scheme": setup.scheme,
                    "initial_condition": setup.family, "frame_dt": setup.frame_dt,
                    "frames": setup.frames, "sizes": {}}
        for size in sizes:
            grid = domain.grid_for(size)
            u0 = domain.initial_condition(setup.family).sample(
                batch, grid, torch.Generator().manual_seed(0))
            counter = StepCounter()

            def ours(x, counter=counter, grid=grid, solver=solver, theta=theta, setup=setup):
                counter.reset()
                return solver.rollout(x, theta, setup.frames, grid=grid,
                                      frame_dt=setup.frame_dt, internal_dt=setup.internal_dt)

            # Agreement, float64: the same steps per frame in both (checked from the count).
            with counter.active():
                traj = ours(u0.double())[:, 1:]
            steps = {n for _, n in counter.calls}
            entry: dict = {"cells": size * size}
            if len(steps) != 1:
                entry.update(status="not compared",
                             reason=f"the solver's steps per frame varied: {sorted(steps)}")
                eq["sizes"][f"{size}x{size}"] = entry
                continue
            n_steps = steps.pop()
            dt = setup.frame_dt / n_steps
            entry.update(steps_per_frame=n_steps, dt=dt)
            peer = _exponax_rollout(setup.make_exponax, size, dt, n_steps, setup.frames,
                                    "float64")
            ref = np.asarray(peer(jnp.asarray(u0.double().numpy())))
            ours_np = traj.numpy()
            rel = float(np.linalg.norm(ours_np - ref) / np.linalg.norm(ours_np))
            per_frame = [float(np.linalg.norm(ours_np[:, f] - ref[:, f])
                               / np.linalg.norm(ours_np[:, f])) for f in range(setup.frames)]
            entry["agreement"] = {"relative_l2": rel, "relative_l2_per_frame": per_frame,
                                  "passed": rel <= AGREEMENT_TOLERANCE}
            if rel > AGREEMENT_TOLERANCE:
                entry["status"] = "disagree"
                eq["sizes"][f"{size}x{size}"] = entry
                continue
            entry["status"] = "complete"
            if not timing:
                eq["sizes"][f"{size}x{size}"] = entry
                continue
            cell_steps = size * size * batch * n_steps * setup.frames
            timing = {}
            for dtype_name in dtypes:
                x = u0.to(getattr(torch, dtype_name))
                fn = _exponax_rollout(setup.make_exponax, size, dt, n_steps, setup.frames,
                                      dtype_name)
                xj = jnp.asarray(x.numpy())
                probe = StepCounter()                 # this dtype's stepper, for the FFT bound
                with probe.active():
                    ours(x)
                transforms, replay, replayed = fft_replay(*probe.probe, batch)
                fns = [lambda x=x: ours(x), lambda fn=fn, xj=xj: fn(xj).block_until_ready()]
                if replay is not None:
                    fns.append(replay)
                with counter.active():
                    timed = _timed_interleaved(fns, max(5, repeats))
                (ours_best, ours_med), (ex_best, ex_med) = timed[0], timed[1]
                timing[dtype_name] = {
                    "noa_stepper_setup_seconds": counter.setup_seconds,
                    "noa_seconds_best": ours_best, "noa_seconds_median": ours_med,
                    "exponax_seconds_best": ex_best, "exponax_seconds_median": ex_med,
                    "noa_mcell_steps_per_s": cell_steps / ours_best / 1e6,
                    "exponax_mcell_steps_per_s": cell_steps / ex_best / 1e6,
                    "speedup_vs_exponax": ex_best / ours_best,
                    "speedup_vs_exponax_of_medians": ex_med / ours_med,
                }
                if replay is not None:
                    # The platform's FFTs alone, timed in the same interleaving: the speed-up a
                    # solver doing nothing but its FFTs would have (an upper bound).
                    fft_step = timed[2][0] / replayed
                    fft_rate = size * size * batch / fft_step / 1e6
                    timing[dtype_name].update({
                        "fft_only_transforms_per_step": transforms,
                        "fft_only_mcell_steps_per_s": fft_rate,
                        "noa_fraction_of_fft_bound": cell_steps / ours_best / 1e6 / fft_rate,
                        "fft_only_speedup_vs_exponax": fft_rate / (cell_steps / ex_best / 1e6),
                    })
            jax.config.update("jax_enable_x64", False)
            entry["timing"] = timing
            eq["sizes"][f"{size}x{size}"] = entry
        result["equations"][setup.equation] = eq
    return result


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------- reaction-diffusion extras


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
        _, median = _timed(lambda n=n: domain.solver.rollout(
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


# ----------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads, and XLA's for exponax when 1 "
                             "(default: the libraries' choice)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--peer-sizes", type=int, nargs="+", default=[64],
                        help="grid sizes of the exponax comparison (default 64)")
    parser.add_argument("--domains", nargs="+", default=None,
                        help="only these registered domains (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: sizes 16, one repeat, no exponax timing beyond "
                             "16², no generation section")
    parser.add_argument("--no-exponax", action="store_true", help="skip the peer comparison")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.peer_sizes = [16], 1, [16]
    if args.threads:
        torch.set_num_threads(args.threads)
    _limit_xla_threads(args.threads)
    results: dict = {
        "benchmark": "solvers",
        "environment": {
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "device": args.device,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "settings": {"batch": BATCH, "sizes": args.sizes, "dtypes": args.dtypes,
                     "repeats": args.repeats, "quick": args.quick},
    }
    results["domains"] = all_domains_throughput(args.sizes, args.dtypes, args.repeats,
                                                args.device, args.domains)
    if "reaction-diffusion" in results["domains"]:
        results["reaction_diffusion"] = results["domains"]["reaction-diffusion"]
    if args.no_exponax:
        results["exponax"] = {"status": "skipped", "reason": "--no-exponax"}
    else:
        results["exponax"] = exponax_comparison(args.peer_sizes, args.dtypes, args.repeats)
    if not args.quick and (not args.domains or "reaction-diffusion" in args.domains):
        results["reaction_diffusion_quick_preset"] = quick_preset_sample_cost()
        results["generation_quick_preset"] = generation_throughput()
    results["environment"]["load_average_end"] = (list(os.getloadavg())
                                                  if hasattr(os, "getloadavg") else None)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return results


if __name__ == "__main__":
    main()
