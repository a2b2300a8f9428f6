"""Checks of the CNO (``domain.solver``): shapes, dtype and device, frame 0, determinism
(replay and batch independence), finiteness across the θ box, conservation, and refusals."""

from __future__ import annotations

import math

import numpy as np
import torch

from noa_platform.api import CategoricalParameter, Domain, IntegerParameter, LogParameter
from noa_platform.data.simulate import simulate
from noa_platform.errors import NoaError
from noa_platform.testing.probe import Probe, noise_scale
from noa_platform.testing.report import CheckFailed, CheckSkipped

#: Frames used by the cheap checks (the horizon is only needed for finiteness/conservation).
SHORT = 2
#: Exceptions that count as a clear refusal: the platform's own, or a ValueError.
REFUSALS = (NoaError, ValueError)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``a`` and ``b`` hold the same values, NaN where the other has NaN: ``torch.equal``
    alone calls two identical NaN trajectories different, which would blame replay or batch
    independence for what is a finiteness failure (reported by ``finite_over_horizon``)."""
    if a.shape != b.shape:
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    return torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b])


def _expected(probe: Probe, b: int, n: int) -> tuple[int, ...]:
    return (b, n + 1, len(probe.domain.channels), *probe.grid.shape)


def check_rollout_shape(domain: Domain, probe: Probe) -> str:
    for b, n in ((2, SHORT), (1, 1)):
        out = probe.rollout(probe.initial(b), probe.varied(b), n)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != _expected(probe, b, n):
            got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CheckFailed(f"rollout of {n} frames for {b} samples gave {got}, expected "
                              f"{list(_expected(probe, b, n))} (frame 0 plus {n} frames)")
    return f"[B, T+1, C, H, W] at {probe.resolution}²"


def check_dtype_and_device(domain: Domain, probe: Probe) -> str:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float32, torch.float64):
            u0 = probe.initial(2, dtype).to(device)
            out = probe.rollout(u0, probe.varied(2), 1)
            if out.dtype != dtype or out.device.type != device.type:
                raise CheckFailed(f"{dtype} u0 on {device} gave {out.dtype} on {out.device}; "
                                  "the output must follow u0's dtype and device")
    return f"float32→float32, float64→float64 on {', '.join(d.type for d in devices)}"


def check_frame_zero(domain: Domain, probe: Probe) -> str:
    for dtype in (torch.float32, torch.float64):
        u0 = probe.initial(2, dtype)
        out = probe.rollout(u0, probe.varied(2), 1)
        if out.shape[1:2] != (2,) or not torch.equal(out[:, 0], u0):
            raise CheckFailed(f"frame 0 of the {dtype} output is not u0 bit for bit")
    return "frame 0 is u0 bit for bit (float32, float64)"


def check_replay(domain: Domain, probe: Probe) -> str:
    """Generation and replay share :func:`noa_platform.data.simulate`: simulating the stored
    (θ, seed, family) again must give the same bits, whatever ran in between."""
    n = 2
    values = probe.varied(n)
    seeds = [101, 202]
    families = probe.family_list(n)
    sigma = noise_scale(probe.initial(1))
    notes = []
    for amp in (0.0, sigma):
        kw = dict(n_frames=SHORT, resolution=probe.resolution, noise_amplitude=amp)
        try:
            first = simulate(domain, values, seeds, families, **kw)
        except NoaError as exc:
            if amp > 0:  # a deterministic solver may refuse noise; the contract allows it
                notes.append(f"noise refused ({exc})")
                continue
            raise
        torch.rand(1000)  # replay must not depend on the global RNG's state
        again = simulate(domain, values.copy(), list(seeds), list(families), **kw)
        if not same_bits(first, again):
            i = int((first != again).flatten(1).any(1).nonzero()[0])
            raise CheckFailed(f"replaying sample {i} (θ {probe.describe_row(values[i])}, seed "
                              f"{seeds[i]}{', noise' if amp else ''}) gave other bits than "
                              "its first run")
        notes.append("noisy" if amp else "deterministic")
    return "bit-exact replay from (θ, seed, family): " + ", ".join(notes)


def check_batch_independence(domain: Domain, probe: Probe) -> str:
    """A sample alone equals the same sample inside a batch of unlike samples, bit for bit:
    the last of a batch of 3, in float32 with and without noise and in float64."""
    n = 3
    values = probe.varied(n)
    seeds = [11, 12, 13]
    notes = []
    for dtype, noisy in ((torch.float32, False), (torch.float32, True), (torch.float64, False)):
        u0 = probe.initial(n, dtype)
        amp = noise_scale(u0) if noisy else 0.0
        try:
            batch = probe.rollout(u0, values, SHORT, seeds=seeds, noise_amplitude=amp)
        except NoaError:
            if noisy:  # a deterministic solver may refuse noise
                continue
            raise
        i = n - 1
        alone = probe.rollout(u0[i:i + 1], values[i:i + 1], SHORT, seeds=seeds[i:i + 1],
                              noise_amplitude=amp)
        if not same_bits(alone[0], batch[i]):
            diff = float((alone[0].double() - batch[i].double()).abs().max())
            raise CheckFailed(f"sample {i} alone differs from the same sample in a batch of {n} "
                              f"({str(dtype).removeprefix('torch.')}{', noise' if amp else ''}; "
                              f"max |Δ| {diff:.3g}): a sample may depend only on its own u0, θ "
                              "and seed")
        notes.append(f"{str(dtype).removeprefix('torch.')}{'+noise' if amp else ''}")
    return f"alone == in a batch of {n}, bit for bit: " + ", ".join(notes)


def check_finite_over_horizon(domain: Domain, probe: Probe) -> str:
    box = probe.box()
    u0 = probe.initial(len(box))
    out = probe.rollout(u0, box, probe.horizon)
    finite = torch.isfinite(out).flatten(2).all(2)  # [B, T+1]
    if not finite.all():
        i, t = (int(x) for x in (~finite).nonzero()[0])
        raise CheckFailed(f"non-finite frame {t} of {probe.horizon} at θ "
                          f"{probe.describe_row(box[i])} ({probe.families[i % len(probe.families)]} "
                          "initial condition); refuse such θ or take more internal steps")
    return (f"{len(box)} θ (corners + Sobol) × {probe.horizon} frames at {probe.resolution}²: "
            "finite")


def _apply_conditions(probe: Probe, values: np.ndarray, under: dict) -> np.ndarray:
    values = values.copy()
    for name, value in under.items():
        p = probe.space[name]
        if isinstance(p, CategoricalParameter) and isinstance(value, str):
            value = p.index(value)
        values[:, probe.space.names.index(name)] = float(value)
    return values


def check_conserved_invariants(domain: Domain, probe: Probe) -> str:
    conserved = {k: v for k, v in domain.invariants.items() if v.conserved}
    if not conserved:
        raise CheckSkipped("no invariant is declared conserved")
    notes = []
    for name, inv in conserved.items():
        values = _apply_conditions(probe, probe.box(), dict(inv.conserved_under))
        u0 = probe.initial(len(values), torch.float64)
        traj = probe.rollout(u0, values, probe.horizon)
        theta = torch.as_tensor(values, dtype=torch.float64)
        series = inv.fn(traj, probe.grid, theta).double()  # [B, T+1]
        ref = series[:, :1]
        drift = (series - ref).abs().amax(dim=1)
        # Relative to the initial value, with an absolute floor for invariants that start at 0.
        allowed = inv.rtol * ref[:, 0].abs() + 1e-12
        bad = (drift > allowed).nonzero()
        if len(bad):
            i = int(bad[0])
            raise CheckFailed(f"invariant {name!r} drifts by {float(drift[i]):.3g} "
                              f"(rtol {inv.rtol:g} of {float(ref[i, 0]):.6g}) over "
                              f"{probe.horizon} frames at θ {probe.describe_row(values[i])}")
        worst = float((drift / ref[:, 0].abs().clamp_min(1e-300)).max())
        notes.append(f"{name} (worst relative drift {worst:.1e} ≤ {inv.rtol:g})")
    return ", ".join(notes) + " in float64"


def _outside(p) -> list[float]:
    """Values just outside a parameter's range or choices."""
    if isinstance(p, CategoricalParameter):
        return [float(len(p.choices)), -1.0]
    if isinstance(p, IntegerParameter):
        return [float(p.high + 1), float(p.low - 1)]
    span = p.high - p.low
    if isinstance(p, LogParameter):
        return [p.high * 10.0, p.low / 10.0]
    return [p.high + span, p.low - span]


def check_refuses_out_of_range_theta(domain: Domain, probe: Probe) -> str:
    u0 = probe.initial(1)
    unrefused = []
    for j, p in enumerate(probe.space.parameters):
        for value in _outside(p):
            row = probe.centre()
            row[0, j] = value
            try:
                probe.rollout(u0, row, 1)
            except REFUSALS as exc:
                if p.name not in str(exc):
                    raise CheckFailed(f"{p.name} = {value:g} was refused with an error that "
                                      f"does not name the parameter: {exc}") from None
                continue
            unrefused.append(f"{p.name} = {value:g}")
    if unrefused:
        raise CheckFailed(f"accepted out-of-range θ ({', '.join(unrefused)}); call "
                          "parameter_space.validate(params) in rollout")
    return f"each of {probe.space.dim} parameters refused above and below its range, by name"


def check_refuses_non_finite_u0(domain: Domain, probe: Probe) -> str:
    accepted = []
    for bad in (math.nan, math.inf, -math.inf):
        u0 = probe.initial(2)
        u0[1, 0, 0, 0] = bad
        try:
            probe.rollout(u0, probe.varied(2), 1)
        except REFUSALS:
            continue
        accepted.append(str(bad))
    if accepted:
        raise CheckFailed(f"accepted a u0 holding {', '.join(accepted)}; call "
                          "check_initial_state(u0, channels) in rollout")
    return "NaN, +Inf, -Inf in u0 refused"


def check_refuses_bad_frame_dt(domain: Domain, probe: Probe) -> str:
    accepted = []
    for dt in (0.0, -domain.frame_dt, math.nan, math.inf):
        try:
            probe.rollout(probe.initial(1), probe.centre(), 1, frame_dt=dt)
        except REFUSALS:
            continue
        accepted.append(f"{dt:g}")
    if accepted:
        raise CheckFailed(f"accepted frame_dt = {', '.join(accepted)}; refuse frame_dt that is "
                          "not positive and finite")
    return "frame_dt 0, negative, NaN, Inf refused"
