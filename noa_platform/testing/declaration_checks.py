"""Checks of what a domain declares: attributes, channels, θ space and reads, presets,
initial-condition families, invariant signatures. Each returns a one-line note on success and
raises :class:`CheckFailed` (or :class:`CheckSkipped`) otherwise."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from noa_platform.api import (
    Channel,
    Domain,
    Grid,
    InitialCondition,
    Invariant,
    ParameterSpace,
    Solver,
)
from noa_platform.config import domain_config
from noa_platform.evaluation.verdicts import KNOWN_BASELINES, thresholds_for
from noa_platform.testing.probe import Probe
from noa_platform.testing.report import CheckFailed, CheckSkipped

REQUIRED_PRESETS = ("quick", "standard")


def check_attributes(domain: Domain, probe: Probe) -> str:
    problems = []
    for attr in ("name", "version", "description"):
        value = getattr(domain, attr, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{attr} is {value!r}, not a non-empty string")
    if not isinstance(getattr(domain, "grid", None), Grid):
        problems.append("grid is not a noa_platform.api.Grid")
    dt = getattr(domain, "frame_dt", None)
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        problems.append(f"frame_dt is {dt!r}, not a positive finite number")
    if not isinstance(getattr(domain, "parameter_space", None), ParameterSpace):
        problems.append("parameter_space is not a ParameterSpace")
    if not isinstance(getattr(domain, "solver", None), Solver):
        problems.append("solver is not a noa_platform.api.Solver")
    ics = getattr(domain, "initial_conditions", None)
    if not isinstance(ics, Mapping) or not ics:
        problems.append("initial_conditions is not a non-empty mapping")
    arch = getattr(domain, "default_architecture", None)
    if not isinstance(arch, Mapping) or not isinstance(arch.get("name"), str):
        problems.append("default_architecture is not a mapping with a 'name'")
    thresholds = getattr(domain, "validation_thresholds", None)
    if not isinstance(thresholds, Mapping) or not all(
            isinstance(v, Mapping) and all(isinstance(x, (int, float)) for x in v.values())
            for v in thresholds.values()):
        problems.append("validation_thresholds is not {metric: {level: number}}")
    else:
        try:  # the verdict table itself says which metrics and levels exist
            thresholds_for(thresholds)
        except KeyError as exc:
            problems.append(str(exc).strip("'\""))
    baselines = getattr(domain, "baselines", None)
    if not isinstance(baselines, (tuple, list)) or not all(isinstance(b, str) for b in baselines):
        problems.append("baselines is not a sequence of names")
    else:
        unknown = sorted(set(baselines) - set(KNOWN_BASELINES))
        if unknown:
            problems.append(f"baselines: unknown {', '.join(map(repr, unknown))}; known: "
                            f"{', '.join(KNOWN_BASELINES)}")
    if getattr(domain, "grid_scaling", None) not in ("extent", "spacing"):
        problems.append(f"grid_scaling is {getattr(domain, 'grid_scaling', None)!r}, "
                        "not 'extent' or 'spacing'")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{domain.name} {domain.version}, frame_dt {domain.frame_dt:g}"


def check_channels(domain: Domain, probe: Probe) -> str:
    chans = tuple(domain.channels)
    if not chans:
        raise CheckFailed("channels is empty")
    bad = [repr(c) for c in chans if not isinstance(c, Channel)]
    if bad:
        raise CheckFailed(f"channels must be noa_platform.api.Channel, got {', '.join(bad)} "
                          "(set them in the class body or build Channel(name, role, units))")
    names = [c.name for c in chans]
    if len(set(names)) != len(names):
        raise CheckFailed(f"channel names are not distinct: {names}")
    states = {c.name for c in chans if c.role == "state"}
    for c in chans:
        if c.role == "rate" and c.rate_of not in states:
            raise CheckFailed(f"rate channel {c.name!r} is the rate of {c.rate_of!r}, "
                              "which is not a state channel")
    return ", ".join(f"{c.name} ({c.role}{', ' + c.units if c.units else ''})" for c in chans)


def check_parameter_reads(domain: Domain, probe: Probe) -> str:
    """``reads`` is well formed, conditioning masks what it says, and the solver really
    ignores a parameter its row's category does not read."""
    space = domain.parameter_space
    try:
        ParameterSpace(space.parameters, reads=space.reads)  # re-validates a mutated table
    except ValueError as exc:
        raise CheckFailed(f"parameter_space.reads is inconsistent: {exc}") from None
    values = probe.box()
    cond = domain.conditioning(values)
    if cond.shape != values.shape or cond.dtype != np.float32:
        raise CheckFailed(f"conditioning gave {cond.dtype} {list(cond.shape)}, "
                          f"expected float32 {list(values.shape)}")
    if not np.all(np.isfinite(cond)) or cond.min() < 0 or cond.max() > 1:
        raise CheckFailed("conditioning values are not finite values in [0, 1]")
    inactive = ~space.active(values)
    if np.any(cond[inactive] != 0):
        raise CheckFailed("conditioning does not mask the parameters a row does not read")
    if not space.reads:
        return "no categorical reads: every parameter is always read"
    # The physics side: changing an unread parameter must not change the trajectory.
    u0 = probe.initial(1)
    checked = 0
    for cat_name, table in space.reads.items():
        ci = space.names.index(cat_name)
        cat = space[cat_name]
        governed = {n for read in table.values() for n in read}
        for choice, read in table.items():
            base = probe.centre()
            base[0, ci] = float(cat.choices.index(choice))  # type: ignore[attr-defined]
            unread = sorted(governed - set(read))
            if not unread:
                continue
            other = base.copy()
            for name in unread:
                j = space.names.index(name)
                other[0, j] = space.parameters[j].from_unit(np.array([0.1]))[0]
            a = probe.rollout(u0, base, 1)
            b = probe.rollout(u0, other, 1)
            if not torch.equal(a, b):
                raise CheckFailed(f"with {cat_name}={choice} the trajectory changes with "
                                  f"{', '.join(unread)}, which reads says it ignores")
            checked += 1
    return f"{checked} categorical choice(s): unread parameters change nothing"


def check_presets(domain: Domain, probe: Probe) -> str:
    from noa_platform.models import build_architecture

    missing = [p for p in REQUIRED_PRESETS if p not in domain.presets]
    if missing:
        raise CheckFailed(f"missing preset(s) {', '.join(missing)} (need at least "
                          f"{', '.join(REQUIRED_PRESETS)})")
    notes = []
    for name in domain.presets:
        cfg = domain_config(domain, name)  # raises ConfigError naming the key
        gen = cfg.generation
        unknown = set(gen.ic_families) - set(domain.initial_conditions)
        if unknown:
            raise CheckFailed(f"preset {name!r}: unknown initial-condition famil(ies) "
                              f"{', '.join(sorted(unknown))}")
        arch = domain.architecture_config(cfg.mno.architecture)
        try:
            build_architecture(arch, channels=len(domain.channels),
                               n_params=domain.parameter_space.dim, resolution=gen.resolution)
        except Exception as exc:
            raise CheckFailed(f"preset {name!r}: architecture {arch.get('name')!r} does not "
                              f"build: {type(exc).__name__}: {exc}") from None
        notes.append(f"{name} {gen.resolution}²×{gen.n_frames} frames×{gen.n_samples}")
    return "; ".join(notes)


def check_initial_conditions(domain: Domain, probe: Probe) -> str:
    c = len(domain.channels)
    shape = (3, c, *probe.grid.shape)
    for name, ic in domain.initial_conditions.items():
        if not isinstance(ic, InitialCondition):
            raise CheckFailed(f"initial_conditions[{name!r}] is not an InitialCondition")
        a = ic.sample(3, probe.grid, torch.Generator().manual_seed(1))
        if not isinstance(a, torch.Tensor) or tuple(a.shape) != shape:
            raise CheckFailed(f"family {name!r} gave {getattr(a, 'shape', type(a))}, "
                              f"expected {list(shape)}")
        if a.dtype != torch.float64 or a.device.type != "cpu":
            raise CheckFailed(f"family {name!r} gave {a.dtype} on {a.device}, expected "
                              "float64 on the CPU")
        if not torch.isfinite(a).all():
            raise CheckFailed(f"family {name!r} gave non-finite values")
        b = ic.sample(3, probe.grid, torch.Generator().manual_seed(1))
        other = ic.sample(3, probe.grid, torch.Generator().manual_seed(2))
        if not torch.equal(a, b):
            raise CheckFailed(f"family {name!r} is not a function of the generator's seed "
                              "(same seed, different fields)")
        if torch.equal(a, other):
            raise CheckFailed(f"family {name!r} ignores the generator (two seeds, same fields)")
    return f"{len(domain.initial_conditions)} families seeded, float64 {list(shape[1:])}"


def check_invariants_signature(domain: Domain, probe: Probe) -> str:
    if not domain.invariants:
        raise CheckSkipped("no invariants declared")
    u0 = probe.initial(2, torch.float64)
    frames = torch.stack([u0, u0.flip(-1)], dim=1)  # [B, T+1, C, H, W] with T = 1
    theta = torch.as_tensor(probe.varied(2), dtype=torch.float64)
    for name, inv in domain.invariants.items():
        if not isinstance(inv, Invariant):
            raise CheckFailed(f"invariants[{name!r}] is not an Invariant")
        if not isinstance(inv.rtol, (int, float)) or not inv.rtol > 0:
            raise CheckFailed(f"invariant {name!r}: rtol {inv.rtol!r} is not positive")
        traj = inv.fn(frames, probe.grid, theta)
        single = inv.fn(u0, probe.grid, theta)
        for got, want, what in ((traj, (2, 2), "[B, T+1, C, H, W]"), (single, (2,), "[B, C, H, W]")):
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != want:
                raise CheckFailed(f"invariant {name!r} of {what} frames gave "
                                  f"{list(getattr(got, 'shape', [])) or type(got).__name__}, "
                                  f"expected {list(want)}")
            if not torch.isfinite(got).all():
                raise CheckFailed(f"invariant {name!r} is not finite on finite frames")
        unknown = set(inv.conserved_under) - set(domain.parameter_space.names)
        if unknown:
            raise CheckFailed(f"invariant {name!r}: conserved_under names unknown parameter(s) "
                              f"{', '.join(sorted(unknown))}")
    return f"{', '.join(domain.invariants)}: (frames, grid, theta) -> [B, T+1]"
