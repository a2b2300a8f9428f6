"""The waves CNO: pseudo-spectral in space, kick–flow–kick splitting in time, on the core template.

Equation and state. ``u_tt = ∇·(c(x)² ∇u) − γ u_t`` on a periodic square, state ``x = (u, v)``
with ``v = u_t``. Split the speed as ``c(x)² = c̄² + q(x)`` (``c̄`` the θ column ``c``, ``q`` the
heterogeneous rest, drawn from the sample's seed: :mod:`noa_waves.speed`)::

    x_t = L x + N(x),   L = [[0, 1], [c̄² Δ, −γ]],   N(u, v) = (0, ∇·(q ∇u)).

Composition (see :mod:`noa_platform.numerics.template`):

* linear part — a :class:`~noa_platform.numerics.etd.CoupledLinear` matrix per wavenumber,
  ``[[0, 1], [−c̄²|k|², −γ]]``, integrated exactly (``matrix_exp``; exact also for the undamped
  mean mode and critical damping, which are Jordan blocks);
* nonlinear part — the heterogeneous term, linear in ``u``, evaluated pseudo-spectrally:
  spectral gradient (Nyquist modes dropped), times ``q`` in physical space, spectral divergence,
  all with real arithmetic on spectra (bit-reproducible);
* integrator — ``strang`` (:class:`~noa_platform.numerics.etd.StrangSplitting`): half kick by
  ``N``, exact flow of ``L``, half kick. ``N`` reads only ``u`` and changes only ``v``, so the
  kick is the exact flow of ``N`` and the scheme is symplectic Strang splitting.

Energy. The semi-discrete system conserves (for γ = 0) exactly
``E = ½ Σ (v² + c̄² u (−Δu) + q |∇̃u|²) dA`` (``∇̃`` the Nyquist-free spectral gradient), because
``A = c̄²Δ + ∇̃·(q∇̃)`` is symmetric; for γ > 0, ``dE/dt = −γ Σ v² dA``. In time: with ``q = 0``
the step is the exact flow (E is kept to rounding); otherwise the scheme is symplectic and E
oscillates within ``O(dt²)`` of its initial value without drift. :mod:`noa_waves.invariants`
computes E.

Step. Stability is that of the split oscillator (:mod:`noa_platform.numerics.stability`,
``strang``): ``dt · ρ <= 1.5`` with ρ a bound on every frequency of ``L`` and of ``L + N``:
``ρ = c̄ (1 + a) |k|_max`` (``c(x) < c̄ (1 + a)`` for every draw, ``|k|_max`` the grid's largest
wavenumber), from θ and the grid alone, so the plan is per sample and the same for every seed.
The default step is the accuracy step :data:`ACCURACY` ``/ ρ``. A uniform medium (``a = 0``)
has ``N = 0`` and is integrated exactly, in one step per frame.

:meth:`~WaveSolver.rate_bound` and :meth:`~WaveSolver.default_dt` declare the keyword ``grid``,
so the template hands them the rollout's grid; :meth:`WaveSolver.plan` plans outside a rollout.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from noa_platform.api import Grid
from noa_platform.errors import SolverError
from noa_platform.numerics.etd import CoupledLinear
from noa_platform.numerics.nonlinear import Nonlinear
from noa_platform.numerics.spectral import derivative_symbols, laplacian_symbol, wavenumbers
from noa_platform.numerics.template import MAX_STEPS_PER_FRAME, SpectralSolver
from noa_waves.parameters import COL_AMPLITUDE, PARAMETER_SPACE, columns, max_speed
from noa_waves.speed import speed_fields

__all__ = ["ACCURACY", "MAX_STEPS_PER_FRAME", "WaveSolver", "max_wavenumber"]

#: The default step is ``ACCURACY / ρ`` (ρ: the largest frequency, see the module docstring);
#: the stability margin of ``strang`` is 1.5. At 0.3 the most heterogeneous corner of the box
#: (a = 0.4, ℓ = 0.1, c̄ = 1) is within 0.09 % (relative L2, 32 frames of 0.02 at 32²) of a run
#: 6x finer; see docs/waves.md for the measurement.
ACCURACY = 0.3

@functools.lru_cache(maxsize=32)
def max_wavenumber(grid: Grid) -> float:
    """``|k|_max``: the largest ``|k|`` of the grid's spectrum (the Nyquist corner)."""
    ky, kx = wavenumbers(grid)
    return float((ky.square().max() + kx.square().max()).sqrt())


class WaveSolver(SpectralSolver):
    """Batched heterogeneous-medium wave solver; see the module docstring.

    ``rollout(u0 [B, 2, H, W], params [B, 4], n_frames, grid=, frame_dt=, seeds=,
    noise_amplitude=, internal_dt=None) -> [B, n_frames + 1, 2, H, W]``; channels ``(u, u_t)``,
    θ columns as in :mod:`noa_waves.parameters`, ``seeds`` choose each sample's medium.
    """

    name = "waves"
    channels = 2
    dealiasing = "none"
    parameter_space = PARAMETER_SPACE

    def __init__(self, integrator: str = "strang", accuracy: float = ACCURACY):
        """``integrator``: a name in :data:`~noa_platform.numerics.etd.INTEGRATORS` (the ETDRK
        schemes work too, without the symplectic property); ``accuracy``: the default step
        times ρ."""
        super().__init__(integrator)
        if not (0 < accuracy):
            raise SolverError(f"waves: accuracy must be > 0, got {accuracy}")
        self.accuracy = float(accuracy)

    def plan(self, theta_row: np.ndarray, grid: Grid, frame_dt: float,
             internal_dt: float | None = None) -> tuple[int, float]:
        """``(n, dt)``: the internal steps per frame a rollout on ``grid`` takes for θ."""
        return self.steps_per_frame(theta_row, frame_dt, internal_dt, grid=grid)

    @staticmethod
    def _needs(grid: Grid | None) -> Grid:
        if grid is None:
            raise SolverError("waves: the step limit depends on the grid; plan with "
                              "WaveSolver.plan(theta_row, grid, frame_dt) or "
                              "steps_per_frame(..., grid=grid)")
        return grid

    def frequency_bound(self, theta: np.ndarray, grid: Grid) -> np.ndarray:
        """``[b]`` ρ = ``c̄ (1 + a) |k|_max``: bounds every frequency of ``L`` and ``L + N``.

        A uniform medium (``a = 0``) has no kick, and the exact flow is stable and exact for
        any step: its ρ is the smallest positive float, so its frame is one step.
        """
        _, a, _, _ = columns(theta)
        rho = max_speed(theta) * max_wavenumber(grid)
        return np.where(a > 0, rho, np.finfo(np.float64).tiny)

    # -- the template's hooks --------------------------------------------------------------

    def group_key(self, theta_row: np.ndarray) -> bool:
        # Uniform media (N = 0) never share a stepper with heterogeneous ones: their kick is a
        # constant zero, chosen from the row alone.
        return bool(theta_row[COL_AMPLITUDE] > 0)

    def rate_bound(self, theta: np.ndarray, *, grid: Grid | None = None) -> np.ndarray:
        return self.frequency_bound(theta, self._needs(grid))

    def default_dt(self, theta: np.ndarray, *, grid: Grid | None = None) -> np.ndarray:
        return self.accuracy / self.frequency_bound(theta, self._needs(grid))

    def linear_part(self, theta: np.ndarray, grid: Grid) -> CoupledLinear:
        c, _, _, gamma = columns(theta)
        lap = laplacian_symbol(grid)                                   # −|k|², [H, W']
        m = torch.zeros((len(c), *lap.shape, 2, 2), dtype=torch.float64)
        m[..., 0, 1] = 1.0
        m[..., 1, 0] = torch.as_tensor(c * c)[:, None, None] * lap
        m[..., 1, 1] = -torch.as_tensor(gamma)[:, None, None]
        return CoupledLinear(m)

    def nonlinear_term(self, theta: np.ndarray, grid: Grid, dtype: torch.dtype,
                       device: torch.device, *, seeds: Sequence[int] | None = None
                       ) -> Nonlinear:
        c, a, _, _ = columns(theta)
        if not np.any(a > 0):
            return None                      # a uniform medium: L is the whole equation
        speed = speed_fields(theta, grid, seeds)                              # [b, H, W]
        q = (speed.square() - torch.as_tensor(c * c)[:, None, None]).to(dtype).to(device)
        # i k_y, i k_x with the Nyquist modes dropped, purely imaginary. A complex product with a
        # purely imaginary factor is exact in every code path (each part is one rounded product
        # plus an exact zero), so it is as bit-reproducible as real arithmetic, and 30x faster
        # than interleaving real and imaginary parts by hand.
        cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        d = torch.stack(derivative_symbols(grid))[None].to(cdtype).to(device)   # [1, 2, H, W']
        dy, dx = d[:, 0], d[:, 1]
        q = q[:, None]                                                          # [b, 1, H, W]
        shape = tuple(grid.shape)

        def heterogeneous(x_hat: torch.Tensor) -> torch.Tensor:
            # Both gradient components in one inverse and one forward transform (pairs of
            # transforms: the batched FFT path whatever the batch size).
            flux = torch.fft.rfft2(q * torch.fft.irfft2(d * x_hat[:, :1], s=shape))
            out = torch.zeros_like(x_hat)
            torch.mul(dy, flux[:, 0], out=out[:, 1]).add_(dx * flux[:, 1])
            return out

        # N reads u and changes only u_t: a kick leaves it unchanged, so the splitting
        # evaluates it once per step (noa_platform.numerics.etd.StrangSplitting.advance).
        heterogeneous.kick_invariant = True

        return heterogeneous
