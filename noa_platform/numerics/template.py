"""The spectral solver template: everything a periodic pseudo-spectral ETD solver needs but its
physics.

A domain's solver subclasses :class:`SpectralSolver` and supplies only (the way the exponax
library composes a stepper from a linear operator, a nonlinear function and an integrator):

* :meth:`~SpectralSolver.linear_part` — the linear operator, integrated exactly: a symbol
  diagonal per channel (a float64/complex128 tensor broadcastable to ``[b, C, H, W//2+1]``)
  or a :class:`~noa_platform.numerics.etd.CoupledLinear` matrix per wavenumber;
* :meth:`~SpectralSolver.nonlinear_term` — ``N̂(û)`` (see :mod:`~noa_platform.numerics.nonlinear`);
* :meth:`~SpectralSolver.rate_bound` — a bound ρ on the spectral radius of ``N``'s Jacobian,
  which with the integrator's margin (:mod:`~noa_platform.numerics.stability`) limits the step;
* :meth:`~SpectralSolver.default_dt` — the internal step accuracy asks for;
* :attr:`~SpectralSolver.dealiasing` — ``"none"`` or ``"2/3"``;
* optionally :meth:`~SpectralSolver.group_key` (samples whose nonlinear term has a different
  form, e.g. another reaction law, must not share a group) and :meth:`~SpectralSolver.label`;
* optionally :meth:`~SpectralSolver.state_step_limit` — the largest stable internal step for a
  sample's *current* state (a CFL limit), for physics whose stiffness depends on the solution
  (advection); see "State-dependent steps" below.

The template owns the rest: input checks, the per-sample step plan, grouping samples that share
it, seeded noise, the frame loop, non-finite detection and bit-exact batch independence.

Per-sample seeds (optional). A domain whose physics holds a per-sample *static* random field
(e.g. a heterogeneous wave speed ``c(x)`` drawn from the sample's seed) declares a keyword
``seeds`` on any of :meth:`~SpectralSolver.linear_part`, :meth:`~SpectralSolver.nonlinear_term`,
:meth:`~SpectralSolver.rate_bound` and :meth:`~SpectralSolver.default_dt`; the template then
passes ``seeds=`` — a list of Python ints, one per θ row it hands over (the group's members, or
the one sample being planned), or ``None`` when the caller of ``rollout`` gave no seeds — and
calls hooks without the keyword exactly as before. ``rollout`` validates ``seeds`` (one integer
per sample) whenever it is given, not only with noise. The same seed also seeds the noise; draw
static fields from :func:`static_field_generator` (an independent stream) so the field and the
kicks are not correlated. :func:`noa_platform.data.simulate.simulate` always passes per-sample seeds.
Likewise :meth:`~SpectralSolver.rate_bound` and :meth:`~SpectralSolver.default_dt` may declare
a keyword ``grid`` to receive the rollout's grid (a wave's fastest frequency is the speed times
the largest resolved wavenumber).

Step plan. For each sample alone, ``dt_max = min(default_dt, margin/ρ)`` from its own θ row,
or the caller's ``internal_dt`` (refused above ``margin/ρ``); a frame of ``frame_dt`` is
``n = ceil(frame_dt / dt_max)`` equal steps of ``frame_dt / n``, refused above
:data:`MAX_STEPS_PER_FRAME`. Samples with the same ``(group_key, n, dt)`` are integrated
together.

State-dependent steps (only for a solver that overrides :meth:`~SpectralSolver.state_step_limit`;
every other solver runs exactly as above). Each frame of each sample is planned from that
sample's own state at the start of the frame (after its noise kick): with ``s`` the state's
limit, the frame takes ``n = max(n_θ, ladder(ceil(frame_dt / (STATE_PLAN_FRACTION · s))))``
equal steps, ``n_θ`` being the θ plan above (so ``internal_dt`` and ``default_dt`` still cap
the step) and ``ladder`` rounding up to 1..8, 10, 12, 14, 16, 20, 24, ... (four values per
octave, so samples share few step counts and batch well). After the frame the end state's
limit is checked too: a sample whose step exceeds it (the flow sped up within the frame by
more than the 1/STATE_PLAN_FRACTION headroom), or whose state became non-finite, redoes the
frame from its start state with a smaller step — ``STATE_PLAN_FRACTION`` of the smaller of the
two limits, at least the next ladder value (twice the steps when non-finite) — up to
:data:`MAX_FRAME_RETRIES` times; then, or past :data:`MAX_STEPS_PER_FRAME`, the rollout stops
with a one-line :class:`SolverError` naming the sample's θ and the frame. The limit is
computed one sample at a time, so a sample's plan never depends on its batch-mates; samples
are integrated together per frame when they share ``(group_key, n)``.

Bit-exact batch independence: a sample's trajectory is the same bits alone or in any batch, on
one device and dtype, because (i) its plan depends on its θ only; (ii) ETD coefficients of a
per-sample linear part are computed one sample at a time, and when all samples of a group share
the linear part it is computed once from the same values; (iii) spectra are multiplied by
coefficients with real elementwise arithmetic, and the FFTs act per transform (a lone transform
is taken as a pair: :func:`~noa_platform.numerics.spectral.batch_stable_rfft2`); (iv) noise comes
from one CPU generator per sample. A domain keeps this by making its nonlinear term elementwise
per sample (no reductions over the batch) with per-sample scalars broadcast as ``[b, 1, 1]``.

Noise. With ``noise_amplitude = σ > 0`` the state receives an additive kick ``σ ξ`` (ξ i.i.d.
standard normal per grid point and channel, drawn in float64 on the CPU from
``torch.Generator().manual_seed(seeds[i])``) at the start of every frame interval; recorded
frames are the states at the end of the interval, so frame 0 is ``u0``.
"""

from __future__ import annotations

import functools
import inspect
import math
from abc import abstractmethod
from collections.abc import Callable, Hashable

import numpy as np
import torch

from noa_platform.api import Grid, ParameterSpace, Solver, check_initial_state
from noa_platform.errors import SolverError
from noa_platform.numerics.etd import INTEGRATORS, CoupledLinear, make_stepper
from noa_platform.numerics.nonlinear import Nonlinear
from noa_platform.numerics.spectral import (
    DEALIASING_RULES,
    batch_stable_irfft2,
    batch_stable_rfft2,
    dealiasing_mask,
)
from noa_platform.numerics.stability import stability_limit

__all__ = ["MAX_FRAME_RETRIES", "MAX_STEPS_PER_FRAME", "STATE_PLAN_FRACTION", "SpectralSolver",
           "ladder_steps", "static_field_generator"]

#: More internal steps per frame than this is a request the solver refuses rather than
#: silently spending hours on (e.g. ``frame_dt`` in the wrong units).
MAX_STEPS_PER_FRAME = 100_000

#: A frame under a state-dependent step is planned with this fraction of the start state's
#: limit, so that the limit may fall by 30 % within the frame before the frame is redone.
STATE_PLAN_FRACTION = 0.7
#: How many times a frame is redone with a smaller step before the rollout gives up.
MAX_FRAME_RETRIES = 4

#: The stream :func:`static_field_generator` derives from a sample's seed (the noise uses the
#: seed itself).
_STATIC_STREAM = 0x5747


def static_field_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for a sample's static random fields, independent of its noise.

    ``seed`` is the per-sample seed the template passes (``seeds[i]``); ``stream`` tells apart
    several fields of one sample. Derived with :class:`numpy.random.SeedSequence`, so it is a
    pure function of ``(seed, stream)`` and does not share the noise generator's stream.
    """
    state = np.random.SeedSequence([int(seed), _STATIC_STREAM, int(stream)]).generate_state(
        2, dtype=np.uint32)
    return torch.Generator().manual_seed(((int(state[0]) << 32) | int(state[1]))
                                         & 0x7FFF_FFFF_FFFF_FFFF)


@functools.cache
def _declared_by(function: Callable, keyword: str) -> bool:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
               or p.kind is p.VAR_KEYWORD for p in params)


def _declared(method: Callable, keyword: str) -> bool:
    """Whether a hook declares the optional ``keyword`` (or takes ``**kwargs``); answered once
    per function, since the state-step hook is called per sample and frame."""
    return _declared_by(getattr(method, "__func__", method), keyword)


def _call_hook(method: Callable, *args, **optional):
    """``method(*args, **optional)``, passing only the optional keywords (``seeds``, and
    ``grid`` for the planning hooks) that the hook declares."""
    return method(*args, **{k: v for k, v in optional.items() if _declared(method, k)})


def _kicked(x: torch.Tensor, gens: list[torch.Generator], sigma: float) -> torch.Tensor:
    """``x + σ ξ``, ξ standard normal drawn in float64 on the CPU from each sample's generator."""
    kick = torch.stack([torch.randn(tuple(x.shape[1:]), generator=g, dtype=torch.float64)
                        for g in gens])
    return x + (sigma * kick).to(dtype=x.dtype, device=x.device)


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite. NaN and inf reach the sum (``inf − inf`` is NaN),
    so a finite sum proves it in one pass; ``torch.isfinite`` takes three (~1 ms on a frame of
    16 × 2 × 64²). A non-finite sum of finite entries (overflow) is settled entrywise."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def ladder_steps(n: int) -> int:
    """The smallest step count ``>= n`` in 1..8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ...

    Four values per octave: a state-dependent plan wastes at most 25 % of the steps and
    samples with similar states share a step count (and so a batch).
    """
    n = max(1, int(n))
    if n <= 8:
        return n
    p = 1 << (n.bit_length() - 3)
    return -(-n // p) * p


class SpectralSolver(Solver):
    """A batched periodic pseudo-spectral ETD solver; see the module docstring.

    ``rollout(u0 [B, C, H, W], params [B, P], n_frames, grid=, frame_dt=, seeds=,
    noise_amplitude=, internal_dt=None) -> [B, n_frames + 1, C, H, W]`` in ``u0``'s dtype
    (float32 or float64) and on its device.
    """

    #: Names the solver in errors (subclasses set their domain's name).
    name: str = "spectral solver"
    #: Number of state channels ``C``.
    channels: int
    #: θ's columns; every row is validated against it.
    parameter_space: ParameterSpace
    #: A rule in :data:`~noa_platform.numerics.spectral.DEALIASING_RULES`.
    dealiasing: str = "none"
    #: True when :meth:`nonlinear_term` reads its input only at the modes the dealiasing rule
    #: keeps (e.g. through symbols that are zero elsewhere): the template then skips masking
    #: the input (the output's mask is folded into the integrator's coefficients either way).
    nonlinear_reads_kept_modes_only: bool = False

    def __init__(self, integrator: str = "etdrk4"):
        """``integrator``: a name in :data:`~noa_platform.numerics.etd.INTEGRATORS`."""
        if integrator not in INTEGRATORS:
            raise SolverError(f"unknown integrator {integrator!r}; choose one of "
                              f"{', '.join(INTEGRATORS)}")
        if self.dealiasing not in DEALIASING_RULES:
            raise SolverError(f"{self.name}: unknown dealiasing rule {self.dealiasing!r}; "
                              f"choose one of {', '.join(DEALIASING_RULES)}")
        self.integrator = integrator

    # -- what a domain supplies ----------------------------------------------------------------

    @abstractmethod
    def linear_part(self, theta: np.ndarray, grid: Grid) -> torch.Tensor | CoupledLinear:
        """The linear operator for θ rows ``[b, P]`` (float64) of one group, on the CPU.

        May declare a keyword ``seeds`` (see the module docstring). A real or complex symbol
        broadcastable to ``[b, C, H, W//2+1]`` (leading size ``b`` or 1), or a
        :class:`~noa_platform.numerics.etd.CoupledLinear` ``[b or 1, H, W//2+1, C, C]``.
        """

    @abstractmethod
    def nonlinear_term(self, theta: np.ndarray, grid: Grid, dtype: torch.dtype,
                       device: torch.device) -> Nonlinear:
        """``N̂`` for one group's θ rows: spectrum ``[b, C, H, W//2+1]`` in, same shape out; or
        ``None`` when the group's ``N`` is zero (its steps are then the exact linear flow alone,
        with no FFT).

        May declare a keyword ``seeds`` (see the module docstring)."""

    @abstractmethod
    def rate_bound(self, theta: np.ndarray) -> np.ndarray:
        """``[b]`` bound ρ > 0 on the spectral radius of ``N``'s Jacobian over reachable
        states, from each row alone. May declare the keywords ``seeds`` and ``grid`` (the
        rollout's grid, for a bound that grows with the resolved wavenumbers; ``None`` when a
        caller plans without one)."""

    @abstractmethod
    def default_dt(self, theta: np.ndarray) -> np.ndarray:
        """``[b]`` internal step for accuracy, from each row alone. Few distinct values keep
        samples in few groups. May declare the keywords ``seeds`` and ``grid``."""

    def group_key(self, theta_row: np.ndarray) -> Hashable:
        """Samples with different keys are never integrated together (default: one key)."""
        return 0

    def label(self, theta_row: np.ndarray) -> str:
        """How errors name the solver for this sample (default :attr:`name`)."""
        return self.name

    def state_step_limit(self, x: torch.Tensor, theta: np.ndarray, grid: Grid) -> np.ndarray:
        """Optional: the largest stable internal step ``[1]`` for one sample's current state.

        ``x`` is the physical state ``[1, C, H, W]`` (the run's dtype and device), ``theta`` its
        row ``[1, P]``; return a positive float64 array (``inf`` where the state sets no limit,
        e.g. at rest). May declare a keyword ``seeds``. Overriding it switches the solver to
        per-frame, per-sample step plans (module docstring, "State-dependent steps"); the
        default raises :class:`NotImplementedError` and is never called.
        """
        raise NotImplementedError

    @property
    def state_dependent_steps(self) -> bool:
        """Whether this solver plans its steps from the state (overrides
        :meth:`state_step_limit`)."""
        return type(self).state_step_limit is not SpectralSolver.state_step_limit

    # -- the step plan ---------------------------------------------------------------------------

    def stability_limit(self, theta_row: np.ndarray, seed: int | None = None,
                        grid: Grid | None = None) -> float:
        """Largest stable internal step for one θ row (and its seed and grid, for hooks that
        take ``seeds`` or ``grid``) and this solver's integrator."""
        row = np.asarray(theta_row, dtype=np.float64).reshape(1, -1)
        rho = _call_hook(self.rate_bound, row, seeds=None if seed is None else [int(seed)],
                          grid=grid)
        return float(stability_limit(rho, self.integrator)[0])

    def steps_per_frame(self, theta_row: np.ndarray, frame_dt: float,
                        internal_dt: float | None = None,
                        seed: int | None = None, grid: Grid | None = None) -> tuple[int, float]:
        """``(n, dt)`` for one sample: ``n`` equal internal steps of ``dt`` per frame.

        ``seed`` and ``grid`` are the sample's seed and the rollout's grid, passed on to
        :meth:`rate_bound` and :meth:`default_dt` when they declare ``seeds`` or ``grid``. Raises
        :class:`SolverError` when ``internal_dt`` exceeds the sample's stability limit or the
        frame needs more than :data:`MAX_STEPS_PER_FRAME` steps.
        """
        row = np.asarray(theta_row, dtype=np.float64).reshape(1, -1)
        limit = self.stability_limit(row, seed, grid)
        if internal_dt is None:
            # The accuracy default, capped by the stability limit of a low-order integrator.
            seeds = None if seed is None else [int(seed)]
            dt_max = min(float(_call_hook(self.default_dt, row, seeds=seeds, grid=grid)[0]),
                         limit)
        else:
            dt_max = internal_dt
        if dt_max > limit:
            raise SolverError(
                f"internal time step {dt_max:g} exceeds the {self.label(row[0])} stability "
                f"limit {limit:.4g} for θ = {row[0].tolist()}"
            )
        # The tolerance keeps frame_dt = n · dt_max from becoming n + 1 steps by rounding.
        n = max(1, math.ceil(frame_dt / dt_max * (1.0 - 1e-12)))
        if n > MAX_STEPS_PER_FRAME:
            raise SolverError(
                f"frame_dt = {frame_dt:g} needs {n} internal steps of at most {dt_max:g} per "
                f"frame, more than the limit {MAX_STEPS_PER_FRAME}"
            )
        return n, frame_dt / n

    # -- checks ----------------------------------------------------------------------------------

    def _check(self, u0, params, n_frames, grid, frame_dt, seeds, noise_amplitude, internal_dt):
        check_initial_state(u0, self.channels)
        if u0.dtype not in (torch.float32, torch.float64):
            raise SolverError(f"u0 must be float32 or float64, got {u0.dtype}")
        theta = (params.detach().cpu().numpy() if torch.is_tensor(params)
                 else np.asarray(params)).astype(np.float64)
        theta = np.atleast_2d(theta)
        if theta.shape[0] != u0.shape[0]:
            raise SolverError(f"params has {theta.shape[0]} rows for {u0.shape[0]} samples")
        self.parameter_space.validate(theta)
        if not grid.periodic:
            raise SolverError(f"{self.name}: the spectral solver needs a periodic grid")
        if tuple(u0.shape[-2:]) != tuple(grid.shape):
            raise SolverError(f"u0 is {list(u0.shape[-2:])} points, the grid {list(grid.shape)}")
        if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 0:
            raise SolverError(f"n_frames must be a non-negative integer, got {n_frames!r}")
        frame_dt = float(frame_dt)
        if not (math.isfinite(frame_dt) and frame_dt > 0):
            raise SolverError(f"frame_dt must be positive and finite, got {frame_dt}")
        if internal_dt is not None:
            internal_dt = float(internal_dt)
            if not (math.isfinite(internal_dt) and internal_dt > 0):
                raise SolverError(f"internal_dt must be positive and finite, got {internal_dt}")
        noise_amplitude = float(noise_amplitude)
        if not (math.isfinite(noise_amplitude) and noise_amplitude >= 0):
            raise SolverError(f"noise_amplitude must be finite and >= 0, got {noise_amplitude}")
        seed_list = None
        if noise_amplitude > 0 and seeds is None:
            raise SolverError("noise_amplitude > 0 needs one seed per sample (seeds)")
        if seeds is not None:
            seed_list = [int(s) for s in torch.as_tensor(seeds).reshape(-1).tolist()]
            if len(seed_list) != u0.shape[0]:
                raise SolverError(f"seeds has {len(seed_list)} entries for {u0.shape[0]} samples")
        return theta, int(n_frames), frame_dt, internal_dt, noise_amplitude, seed_list

    # -- integration -----------------------------------------------------------------------------

    def rollout(self, u0, params, n_frames, *, grid: Grid, frame_dt: float, seeds=None,
                noise_amplitude: float = 0.0, internal_dt: float | None = None) -> torch.Tensor:
        """Integrate ``n_frames`` frames of ``frame_dt``; see :class:`~noa_platform.api.Solver`.

        ``internal_dt`` caps the internal step (default: the domain's :meth:`default_dt`); it is
        refused when it exceeds a sample's stability limit. Under state-dependent steps the
        state's limit may lower the step below it, frame by frame.
        """
        theta, n_frames, frame_dt, internal_dt, sigma, seed_list = self._check(
            u0, params, n_frames, grid, frame_dt, seeds, noise_amplitude, internal_dt)
        b = u0.shape[0]
        plan = [self.steps_per_frame(theta[i], frame_dt, internal_dt,
                                     None if seed_list is None else seed_list[i], grid)
                for i in range(b)]
        out = torch.empty((b, n_frames + 1, *u0.shape[1:]), dtype=u0.dtype, device=u0.device)
        out[:, 0] = u0
        if n_frames == 0 or b == 0:
            return out
        if self.state_dependent_steps:
            self._rollout_state_steps(out, u0, theta, n_frames, frame_dt, plan, grid, sigma,
                                      seed_list)
            return out
        groups: dict[tuple, list[int]] = {}
        for i in range(b):
            groups.setdefault((self.group_key(theta[i]), *plan[i]), []).append(i)
        for (_, n_steps, dt), members in groups.items():
            idx = torch.tensor(members, dtype=torch.long, device=u0.device)
            group_seeds = None if seed_list is None else [seed_list[i] for i in members]
            gens = None
            if sigma > 0:
                gens = [torch.Generator().manual_seed(s) for s in group_seeds]
            if len(members) == b:
                # One group (the usual case): frames go straight into the output, without a
                # copy of the input or of the trajectory.
                self._integrate(u0, theta, n_frames, n_steps, dt, grid, sigma, gens,
                                group_seeds, frames=out[:, 1:])
                continue
            traj = self._integrate(u0.index_select(0, idx), theta[members], n_frames, n_steps,
                                   dt, grid, sigma, gens, group_seeds)
            out[:, 1:].index_copy_(0, idx, traj)
        return out

    def _linear(self, theta: np.ndarray, grid: Grid,
                seeds: list[int] | None = None) -> torch.Tensor | CoupledLinear:
        """The group's linear part, kept once when every sample has the same one (the ETD
        coefficients are then computed once, from the same values each sample would give)."""
        lin = _call_hook(self.linear_part, theta, grid, seeds=seeds)
        coupled = isinstance(lin, CoupledLinear)
        tensor = lin.matrix if coupled else lin
        batched = coupled or (torch.is_tensor(tensor) and tensor.ndim == 4)
        if batched and tensor.shape[0] > 1 and bool((tensor == tensor[:1]).all()):
            tensor = tensor[:1]
            lin = CoupledLinear(tensor) if coupled else tensor
        return lin

    def _nonlinear(self, theta, grid, dtype, device, seeds, mask) -> Nonlinear | None:
        """The group's ``N̂`` with Orszag's input truncation ``N̂(mask · û)`` (the output's,
        ``mask · N̂``, is the stepper's: ``make_stepper(dealias=mask)``); ``None`` when the
        domain's term is ``None`` (``N = 0``: the steppers then take the exact linear flow)."""
        term = _call_hook(self.nonlinear_term, theta, grid, dtype, device, seeds=seeds)
        if term is None or mask is None or self.nonlinear_reads_kept_modes_only:
            return term
        removed = ~mask
        return lambda u_hat: term(u_hat.masked_fill(removed, 0))

    def _stepper(self, theta, grid, dt, dtype, device, seeds, mask):
        """An integrator for one group: its linear part, dealiased ``N̂`` and step ``dt``."""
        return make_stepper(self.integrator, linear=self._linear(theta, grid, seeds), dt=dt,
                            nonlinear=self._nonlinear(theta, grid, dtype, device, seeds, mask),
                            dtype=dtype, device=device, dealias=mask)

    def _integrate(self, u0, theta, n_frames, n_steps, dt, grid, sigma, gens, seeds=None,
                   frames=None):
        """Frames 1..n_frames of one group, ``[b, n_frames, C, H, W]`` (written into
        ``frames`` when given)."""
        dtype, device = u0.dtype, u0.device
        shape = grid.shape
        stepper = self._stepper(theta, grid, dt, dtype, device, seeds,
                                dealiasing_mask(grid, self.dealiasing, device))
        if frames is None:
            frames = torch.empty((u0.shape[0], n_frames, *u0.shape[1:]), dtype=dtype,
                                 device=device)
        x = u0
        u_hat = batch_stable_rfft2(x)
        for f in range(n_frames):
            if gens is not None:
                x = _kicked(x, gens, sigma)
                u_hat = batch_stable_rfft2(x)
            u_hat = stepper.advance(u_hat, n_steps)
            x = batch_stable_irfft2(u_hat, shape)
            frames[:, f] = x
            if not _all_finite(x):
                # Never hand back a NaN: name the sample's θ and where it broke instead.
                bad = int((~torch.isfinite(x).flatten(1).all(dim=1)).nonzero()[0])
                raise SolverError(
                    f"{self.label(theta[bad])}: the solution became non-finite in frame {f + 1} "
                    f"(θ = {theta[bad].tolist()}); lower internal_dt or noise_amplitude"
                )
        return frames

    # -- state-dependent steps -------------------------------------------------------------------

    def _rollout_state_steps(self, out, u0, theta, n_frames, frame_dt, plan, grid, sigma,
                             seed_list):
        """Frames 1..n_frames into ``out`` under per-frame, per-sample plans (one stepper per
        sample set and step count, grouped by :meth:`group_key` only)."""
        groups: dict[Hashable, list[int]] = {}
        for i in range(u0.shape[0]):
            groups.setdefault(self.group_key(theta[i]), []).append(i)
        for members in groups.values():
            idx = torch.tensor(members, dtype=torch.long, device=u0.device)
            group_seeds = None if seed_list is None else [seed_list[i] for i in members]
            gens = None
            if sigma > 0:
                gens = [torch.Generator().manual_seed(s) for s in group_seeds]
            traj = self._integrate_state_steps(
                u0.index_select(0, idx), theta[members], n_frames, frame_dt,
                [plan[i][0] for i in members], grid, sigma, gens, group_seeds)
            out[:, 1:].index_copy_(0, idx, traj)

    def _state_limit(self, x_row: torch.Tensor, theta_row: np.ndarray, grid: Grid,
                     seed: int | None) -> float:
        """The state's step limit for one sample (NaN when the state is not finite)."""
        if not _all_finite(x_row):
            return math.nan
        value = _call_hook(self.state_step_limit, x_row, theta_row[None], grid,
                            seeds=None if seed is None else [seed])
        value = float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
        if not value > 0:  # NaN or <= 0: the domain's bound is unusable for this state
            return math.nan
        return value

    def _integrate_state_steps(self, u0, theta, n_frames, frame_dt, n_theta, grid, sigma, gens,
                               seeds):
        """Frames 1..n_frames of one group, ``[b, n_frames, C, H, W]``, each frame of each
        sample planned from its own state (see the module docstring)."""
        dtype, device = u0.dtype, u0.device
        shape = grid.shape
        b = u0.shape[0]
        mask = dealiasing_mask(grid, self.dealiasing, device)
        steppers: dict[tuple, object] = {}

        def stepper(rows: tuple[int, ...], n: int):
            key = (rows, n)
            if key not in steppers:
                if len(steppers) >= 64:  # sample sets change as flows evolve: bound the cache
                    steppers.clear()
                th = theta[list(rows)]
                sd = None if seeds is None else [seeds[i] for i in rows]
                steppers[key] = self._stepper(th, grid, frame_dt / n, dtype, device, sd, mask)
            return steppers[key]

        def seed_of(i):
            return None if seeds is None else seeds[i]

        def needed(limit: float) -> int:
            """Steps for a step of at most STATE_PLAN_FRACTION · limit (1 when unlimited)."""
            if not math.isfinite(limit):
                return 1
            return math.ceil(frame_dt / (STATE_PLAN_FRACTION * limit) * (1.0 - 1e-12))

        def steps_for(i: int, n_state: int, limit: float, f: int) -> int:
            n = max(n_theta[i], ladder_steps(n_state))
            if n > MAX_STEPS_PER_FRAME:
                raise SolverError(
                    f"{self.label(theta[i])}: frame {f + 1} needs {n} internal steps for the "
                    f"state's step limit {limit:.3g}, more than {MAX_STEPS_PER_FRAME} "
                    f"(θ = {theta[i].tolist()})")
            return n

        frames = torch.empty((b, n_frames, *u0.shape[1:]), dtype=dtype, device=device)
        x = u0
        u_hat = batch_stable_rfft2(x)
        limits = [self._state_limit(x[i:i + 1], theta[i], grid, seed_of(i)) for i in range(b)]
        for f in range(n_frames):
            if gens is not None:
                x = _kicked(x, gens, sigma)
                u_hat = batch_stable_rfft2(x)
                limits = [self._state_limit(x[i:i + 1], theta[i], grid, seed_of(i))
                          for i in range(b)]
            steps = [steps_for(i, needed(limits[i]), limits[i], f) for i in range(b)]
            new_hat = torch.empty_like(u_hat)
            new_x = torch.empty_like(x)
            end = [math.nan] * b
            pending = list(range(b))
            for attempt in range(MAX_FRAME_RETRIES + 1):
                by_steps: dict[int, list[int]] = {}
                for i in pending:
                    by_steps.setdefault(steps[i], []).append(i)
                for n, rows in by_steps.items():
                    idx = torch.tensor(rows, dtype=torch.long, device=device)
                    adv = stepper(tuple(rows), n).advance(u_hat.index_select(0, idx), n)
                    new_hat.index_copy_(0, idx, adv)
                    new_x.index_copy_(0, idx, batch_stable_irfft2(adv, shape))
                rejected = []
                for i in pending:
                    end[i] = self._state_limit(new_x[i:i + 1], theta[i], grid, seed_of(i))
                    if not frame_dt / steps[i] <= end[i]:  # also rejects NaN (non-finite)
                        rejected.append(i)
                if not rejected:
                    break
                if attempt == MAX_FRAME_RETRIES:
                    i = rejected[0]
                    what = ("the solution became non-finite" if math.isnan(end[i]) else
                            f"the state's step limit fell to {end[i]:.3g} within the frame")
                    raise SolverError(
                        f"{self.label(theta[i])}: {what} in frame {f + 1} even at "
                        f"{steps[i]} internal steps of {frame_dt / steps[i]:.3g} "
                        f"(θ = {theta[i].tolist()}); lower frame_dt or noise_amplitude")
                for i in rejected:
                    if math.isnan(end[i]):
                        n_state, limit = 2 * steps[i], limits[i]
                    else:
                        limit = min(limits[i], end[i])
                        n_state = max(needed(limit), steps[i] + 1)
                    steps[i] = steps_for(i, n_state, limit, f)
                pending = rejected
            u_hat, x, limits = new_hat, new_x, end
            frames[:, f] = x
        return frames
