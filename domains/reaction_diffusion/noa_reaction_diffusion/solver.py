"""The reaction-diffusion CNO: pseudo-spectral in space, ETDRK4 in time.

Composition (see :mod:`noa_platform.numerics.etd`): the linear part is diffusion, the symbol
``diag(D_u, D_v) · (−|k|²)`` (exact in time under ETD, so diffusion never limits the step); the
nonlinear part is the kinetics' reaction, evaluated in physical space and transformed back (no
dealiasing: the reactions are polynomials of well-resolved fields, and the 2/3 rule would change
the physics on coarse grids); the integrator is ETDRK4 by default.

Internal step. Each kinetics has a default internal step (for accuracy) and a stability limit,
both computed from the sample's own θ row (see :mod:`.kinetics`). A frame of ``frame_dt`` is
split into ``n = ceil(frame_dt / dt_max)`` equal steps, where ``dt_max`` is the default or the
caller's ``internal_dt``. ``n`` therefore depends only on the sample's θ and ``frame_dt``, never
on its batch-mates; samples are integrated in groups sharing kinetics and step plan.

Bit-exact batch independence (checked by the tests): the FFTs act per transform, every
elementwise operation is real arithmetic whose result does not depend on its position in a
SIMD vector, per-sample ETD coefficients are computed one sample at a time, and noise comes
from one CPU generator per sample. A sample's trajectory is thus the same bits alone or in any
batch, on a given device and dtype.

Noise. With ``noise_amplitude = σ > 0`` the state receives an additive kick ``σ ξ`` (ξ i.i.d.
standard normal per grid point and channel, drawn in float64 on the CPU from
``torch.Generator().manual_seed(seeds[i])``) at the start of every frame interval; recorded
frames are the states at the end of the interval, so they are smooth and frame 0 is ``u0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from noa_platform.api import Grid, Solver, check_initial_state
from noa_platform.errors import SolverError
from noa_platform.numerics.etd import INTEGRATORS, make_stepper
from noa_platform.numerics.spectral import laplacian_symbol

from noa_reaction_diffusion.kinetics import (
    COL_KINETICS,
    KINETICS_LAWS,
    PARAMETER_SPACE,
    Kinetics,
)

#: More internal steps per frame than this is a request the solver refuses rather than
#: silently spending hours on (e.g. ``frame_dt`` in the wrong units).
MAX_STEPS_PER_FRAME = 100_000


class ReactionDiffusionSolver(Solver):
    """Batched Gray–Scott / FitzHugh–Nagumo solver; see the module docstring for the scheme.

    ``rollout(u0 [B, 2, H, W], params [B, 5], n_frames, grid=, frame_dt=, seeds=,
    noise_amplitude=, internal_dt=None) -> [B, n_frames + 1, 2, H, W]`` in ``u0``'s dtype
    (float32 or float64) and on its device; θ columns as in :mod:`.kinetics`.
    """

    channels = 2

    def __init__(self, integrator: str = "etdrk4",
                 laws: Sequence[Kinetics] = KINETICS_LAWS):
        """``integrator``: a name in :data:`~noa_platform.numerics.etd.INTEGRATORS`; ``laws``:
        the kinetics by index of the ``kinetics`` column (replace them to verify the scheme with
        other reaction terms, e.g. none at all)."""
        if integrator not in INTEGRATORS:
            raise SolverError(f"unknown integrator {integrator!r}; choose one of "
                              f"{', '.join(INTEGRATORS)}")
        if len(laws) != len(KINETICS_LAWS):
            raise ValueError(f"need {len(KINETICS_LAWS)} kinetics laws, got {len(laws)}")
        self.integrator = integrator
        self.laws = tuple(laws)
        self.parameter_space = PARAMETER_SPACE

    # -- checks ------------------------------------------------------------------------------

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
            raise SolverError("the spectral solver needs a periodic grid")
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
        if noise_amplitude > 0:
            if seeds is None:
                raise SolverError("noise_amplitude > 0 needs one seed per sample (seeds)")
            seed_list = [int(s) for s in torch.as_tensor(seeds).reshape(-1).tolist()]
            if len(seed_list) != u0.shape[0]:
                raise SolverError(f"seeds has {len(seed_list)} entries for {u0.shape[0]} samples")
        return theta, int(n_frames), frame_dt, internal_dt, noise_amplitude, seed_list

    def steps_per_frame(self, theta_row: np.ndarray, frame_dt: float,
                        internal_dt: float | None = None) -> tuple[int, float]:
        """``(n, dt)`` for one sample: ``n`` equal internal steps of ``dt`` per frame.

        Raises :class:`SolverError` when ``internal_dt`` exceeds the sample's stability limit or
        the frame needs more than :data:`MAX_STEPS_PER_FRAME` steps.
        """
        theta_row = np.asarray(theta_row, dtype=np.float64).reshape(1, -1)
        law = self.laws[int(theta_row[0, COL_KINETICS])]
        limit = float(law.stability_limit(theta_row, self.integrator)[0])
        if internal_dt is None:
            # The accuracy default, capped by the stability limit of a low-order integrator.
            dt_max = min(float(law.default_dt(theta_row)[0]), limit)
        else:
            dt_max = internal_dt
        if dt_max > limit:
            raise SolverError(
                f"internal time step {dt_max:g} exceeds the {law.name} stability limit "
                f"{limit:.4g} for θ = {theta_row[0].tolist()}"
            )
        # The tolerance keeps frame_dt = n · dt_max from becoming n + 1 steps by rounding.
        n = max(1, math.ceil(frame_dt / dt_max * (1.0 - 1e-12)))
        if n > MAX_STEPS_PER_FRAME:
            raise SolverError(
                f"frame_dt = {frame_dt:g} needs {n} internal steps of at most {dt_max:g} per "
                f"frame, more than the limit {MAX_STEPS_PER_FRAME}"
            )
        return n, frame_dt / n

    # -- integration -------------------------------------------------------------------------

    def rollout(self, u0, params, n_frames, *, grid: Grid, frame_dt: float, seeds=None,
                noise_amplitude: float = 0.0, internal_dt: float | None = None) -> torch.Tensor:
        """Integrate ``n_frames`` frames of ``frame_dt``; see :class:`~noa_platform.api.Solver`.

        ``internal_dt`` caps the internal step (default: the kinetics' own); it is refused when
        it exceeds a sample's stability limit.
        """
        theta, n_frames, frame_dt, internal_dt, sigma, seed_list = self._check(
            u0, params, n_frames, grid, frame_dt, seeds, noise_amplitude, internal_dt)
        b = u0.shape[0]
        plan = [self.steps_per_frame(theta[i], frame_dt, internal_dt) for i in range(b)]
        out = torch.empty((b, n_frames + 1, *u0.shape[1:]), dtype=u0.dtype, device=u0.device)
        out[:, 0] = u0
        if n_frames == 0 or b == 0:
            return out
        kinetics = theta[:, COL_KINETICS].astype(int)
        # Group samples that share kinetics and step plan; each group is integrated together.
        groups: dict[tuple[int, int, float], list[int]] = {}
        for i in range(b):
            groups.setdefault((kinetics[i], *plan[i]), []).append(i)
        for (kin, n_steps, dt), members in sorted(groups.items()):
            idx = torch.tensor(members, dtype=torch.long, device=u0.device)
            gens = None
            if seed_list is not None:
                gens = [torch.Generator().manual_seed(seed_list[i]) for i in members]
            traj = self._integrate(self.laws[kin], u0.index_select(0, idx), theta[members],
                                   n_frames, n_steps, dt, grid, sigma, gens)
            out[:, 1:].index_copy_(0, idx, traj)
        return out

    def _integrate(self, law, u0, theta, n_frames, n_steps, dt, grid, sigma, gens):
        """Frames 1..n_frames of one group, ``[b, n_frames, 2, H, W]``."""
        dtype, device = u0.dtype, u0.device
        shape = grid.shape
        lap = laplacian_symbol(grid)
        diff = law.diffusion(theta)
        if np.all(diff == diff[:1]):
            # Diffusion shared by the whole group: one symbol, coefficients computed once.
            diff = diff[:1]
        linear = torch.as_tensor(diff, dtype=torch.float64)[:, :, None, None] * lap
        coeffs = law.coefficients(theta, dtype, device)

        def nonlinear(u_hat: torch.Tensor) -> torch.Tensor:
            x = torch.fft.irfft2(u_hat, s=shape)
            ru, rv = law.reaction(x[:, 0], x[:, 1], coeffs)
            return torch.fft.rfft2(torch.stack((ru, rv), dim=1))

        stepper = make_stepper(self.integrator, linear=linear, dt=dt, nonlinear=nonlinear,
                               dtype=dtype, device=device)
        frames = torch.empty((u0.shape[0], n_frames, *u0.shape[1:]), dtype=dtype, device=device)
        x = u0
        u_hat = torch.fft.rfft2(x)
        for f in range(n_frames):
            if gens is not None:
                kick = torch.stack([torch.randn(tuple(u0.shape[1:]), generator=g,
                                                dtype=torch.float64) for g in gens])
                x = x + (sigma * kick).to(dtype=dtype, device=device)
                u_hat = torch.fft.rfft2(x)
            u_hat = stepper.advance(u_hat, n_steps)
            x = torch.fft.irfft2(u_hat, s=shape)
            frames[:, f] = x
            if not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x).flatten(1).all(dim=1)).nonzero()[0])
                raise SolverError(
                    f"{law.name}: the solution became non-finite in frame {f + 1} "
                    f"(θ = {theta[bad].tolist()}); lower internal_dt or noise_amplitude"
                )
        return frames
