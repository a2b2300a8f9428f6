"""The fluids CNO: pseudo-spectral vorticity–stream-function Navier–Stokes on the core template.

Composition (see :mod:`noa_platform.numerics.template`):

* linear part ``L = −ν|k|² − α`` (viscosity and drag), integrated exactly by ETD, so neither
  limits the step;
* nonlinear term ``N(ω) = −u·∇ω + f``: ``ψ̂ = ω̂/|k|²`` (zero mean), ``u = ∂ψ/∂y``,
  ``v = −∂ψ/∂x``, ``∇ω`` spectrally, the product in physical space, Kolmogorov forcing
  ``f = −F cos(n y)`` added there; 2/3 dealiasing ``mask · N̂(mask · ω̂)`` (the input's
  truncation folded into the derivative symbols, the output's into the integrator's
  coefficients by the template). Derivatives multiply spectra by purely imaginary symbols (one
  rounded real product per part, in any code path) and transforms go through the batch-stable
  FFT helpers, which keeps a sample's bits independent of its batch;
* the step: ETDRK4 (default). The advection's stiffness depends on the flow, so the solver
  supplies :meth:`FluidsSolver.state_step_limit`, a CFL limit of the *current* state, and the
  template plans every frame of every sample from it (and redoes a frame whose end state asks
  for a smaller step; docs/fluids.md, "Time step").
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from noa_fluids.parameters import (
    COL_ALPHA,
    COL_FORCING,
    COL_FORCING_K,
    COL_NU,
    PARAMETER_SPACE,
)
from noa_platform.api import Grid
from noa_platform.numerics.nonlinear import Nonlinear
from noa_platform.numerics.spectral import (
    batch_stable_rfft2,
    dealias_mask,
    derivative_symbol,
    integer_frequencies,
    inverse_laplacian_symbol,
    laplacian_symbol,
)
from noa_platform.numerics.stability import STABILITY_MARGIN
from noa_platform.numerics.template import SpectralSolver

__all__ = ["FluidsSolver", "cfl_rate", "forcing_field", "velocity"]

#: Default internal step (accuracy cap, time units); the CFL limit usually sets a smaller one.
#: See docs/fluids.md ("Time step") for the measurement behind it.
DEFAULT_DT = 0.25
#: The state's step limit is ``COURANT / ρ`` (ρ from :func:`cfl_rate`): half ETDRK4's
#: stability margin 2.5, for accuracy — at the margin RK4 damps a mode rotating at the rate ρ
#: by 13 % per step, at 0.7 · 1.25 (the template plans at 0.7 of the limit) by 0.3 %. It can
#: never exceed the stability margin (checked in ``__init__``).
COURANT = 1.25


def forcing_field(theta: np.ndarray, grid: Grid) -> torch.Tensor:
    """``f = −F cos(2π n y / L_y)`` per θ row, ``[b, 1, H, 1]`` float64: Kolmogorov forcing of
    vorticity amplitude ``F`` (the curl of the body force ``(F/k) sin(k y) e_x``,
    ``k = 2π n / L_y``; on the ``2π`` box ``(F/n) sin(n y) e_x``)."""
    h = grid.shape[0]
    ly = grid.extent[0]
    y = torch.arange(h, dtype=torch.float64) * grid.spacing[0]
    amp = torch.as_tensor(theta[:, COL_FORCING], dtype=torch.float64).reshape(-1, 1, 1, 1)
    n = torch.as_tensor(theta[:, COL_FORCING_K], dtype=torch.float64).reshape(-1, 1, 1, 1)
    k = n * (2.0 * math.pi / ly)
    return -amp * torch.cos(k * y.reshape(1, 1, h, 1))


def _i_k(z: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``i k ẑ`` for a spectrum in its real view ``[..., 2]`` and real ``k``, in real arithmetic
    (complex products take SIMD paths whose last bits depend on the batch's layout)."""
    return torch.view_as_complex(torch.stack((-k * z[..., 1], k * z[..., 0]), dim=-1))


@functools.lru_cache(maxsize=32)
def _velocity_symbols(grid: Grid, dtype: torch.dtype, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(k_y, k_x, 1/|k|²)`` for :func:`velocity`, built once per grid, dtype and device (the
    CFL limit asks for them twice per sample and frame)."""
    ky = derivative_symbol(grid, 0, device).imag.to(dtype)
    kx = derivative_symbol(grid, 1, device).imag.to(dtype)
    inv = (-inverse_laplacian_symbol(grid, device)).to(dtype)        # 1/|k|², 0 at k = 0
    return ky, kx, inv


def velocity(omega: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v)`` of a vorticity ``[..., H, W]``: ``ψ = Δ⁻¹(−ω)``, ``u = ∂ψ/∂y``,
    ``v = −∂ψ/∂x`` (same dtype and device)."""
    shape = tuple(grid.shape)
    ky, kx, inv = _velocity_symbols(grid, omega.dtype, omega.device)
    psi = torch.view_as_real(torch.fft.rfft2(omega)) * inv[..., None]
    u = torch.fft.irfft2(_i_k(psi, ky), s=shape)
    v = -torch.fft.irfft2(_i_k(psi, kx), s=shape)
    return u, v


@functools.lru_cache(maxsize=32)
def _kept_wavenumbers(grid: Grid) -> tuple[float, float]:
    """Largest ``|k_y|``, ``|k_x|`` the 2/3 rule keeps."""
    ny, nx = integer_frequencies(grid)
    mask = dealias_mask(grid)
    n_y = float((ny.abs() * mask).max())
    n_x = float((nx.abs() * mask).max())
    return n_y * 2.0 * math.pi / grid.extent[0], n_x * 2.0 * math.pi / grid.extent[1]


def cfl_rate(omega: torch.Tensor, grid: Grid) -> torch.Tensor:
    """A bound on the rate of the advection term's Jacobian for a vorticity ``[b, 1, H, W]``,
    per sample ``[b]`` float64: ``k_y,max max|v| + k_x,max max|u| + max|ω|``.

    The first two terms bound ``‖u·∇‖`` on the kept modes (``k_max`` after 2/3 dealiasing):
    the advective CFL rate. The last is the rate at which the flow strains a perturbation
    (``|∇u| ~ |ω|``), the other half of the linearised term ``u'·∇ω``.
    """
    w = omega.detach().to(torch.float64)
    u, v = velocity(w, grid)
    ky, kx = _kept_wavenumbers(grid)
    flat = (w.shape[0], -1)
    return (kx * u.abs().reshape(flat).amax(1) + ky * v.abs().reshape(flat).amax(1)
            + w.abs().reshape(flat).amax(1))


class FluidsSolver(SpectralSolver):
    """Batched 2-D Navier–Stokes in vorticity form; see the module docstring.

    ``rollout(u0 [B, 1, H, W], params [B, 4], n_frames, grid=, frame_dt=, seeds=,
    noise_amplitude=, internal_dt=None) -> [B, n_frames + 1, 1, H, W]``; θ columns as in
    :mod:`noa_fluids.parameters`.
    """

    name = "fluids"
    channels = 1
    dealiasing = "2/3"
    # The term reads ω̂ only through symbols that are zero outside the 2/3 rule's modes.
    nonlinear_reads_kept_modes_only = True

    def __init__(self, integrator: str = "etdrk4", default_dt: float = DEFAULT_DT,
                 courant: float = COURANT):
        super().__init__(integrator)
        self.parameter_space = PARAMETER_SPACE
        self._default_dt = float(default_dt)
        # The advection step is bounded by accuracy and by the integrator's stability margin.
        self.courant = min(float(courant), STABILITY_MARGIN[integrator])

    # -- the template's hooks --------------------------------------------------------------------

    def linear_part(self, theta: np.ndarray, grid: Grid) -> torch.Tensor:
        nu = torch.as_tensor(theta[:, COL_NU], dtype=torch.float64).reshape(-1, 1, 1, 1)
        alpha = torch.as_tensor(theta[:, COL_ALPHA], dtype=torch.float64).reshape(-1, 1, 1, 1)
        return nu * laplacian_symbol(grid) - alpha

    def nonlinear_term(self, theta: np.ndarray, grid: Grid, dtype: torch.dtype,
                       device: torch.device) -> Nonlinear:
        shape = tuple(grid.shape)
        ky = derivative_symbol(grid, 0).imag
        kx = derivative_symbol(grid, 1).imag
        inv = -inverse_laplacian_symbol(grid)                          # 1/|k|², 0 at k = 0
        # The symbols of ∂ψ/∂y = u, ∂ψ/∂x = −v, ∂ω/∂x, ∂ω/∂y applied to ω̂ (ψ̂ = ω̂/|k|² folded
        # in, in float64), as one purely imaginary [1, 4, H, W'] factor: one broadcast product
        # makes all four spectra, one inverse transform all four fields. A product with a
        # purely imaginary factor is one rounded real product per part in every code path, so
        # it is as bit-reproducible as real arithmetic.
        # The 2/3 rule's input truncation is folded in too (zero symbols outside its modes).
        k = torch.stack([ky * inv, kx * inv, kx, ky])[None] * dealias_mask(grid)
        cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        symbols = torch.complex(torch.zeros_like(k), k).to(cdtype).to(device)
        force = forcing_field(theta, grid)[:, 0].to(dtype).to(device)  # [b, H, 1]

        def advection(w_hat: torch.Tensor) -> torch.Tensor:
            u, psi_x, w_x, w_y = torch.fft.irfft2(symbols * w_hat, s=shape).unbind(dim=1)
            # f − (u ∂ω/∂x + v ∂ω/∂y) with v = −∂ψ/∂x, as two fused multiply-adds.
            rhs = torch.addcmul(force, u, w_x, value=-1.0).addcmul_(psi_x, w_y)
            return batch_stable_rfft2(rhs.unsqueeze(1))

        return advection

    def rate_bound(self, theta: np.ndarray) -> np.ndarray:
        # No θ-only bound exists for advection (its rate is the flow's): state_step_limit sets
        # the step. A tiny ρ keeps the θ plan's stability cap out of the way.
        return np.full(len(theta), 1e-9)

    def default_dt(self, theta: np.ndarray) -> np.ndarray:
        return np.full(len(theta), self._default_dt)

    def state_step_limit(self, x: torch.Tensor, theta: np.ndarray, grid: Grid) -> np.ndarray:
        rate = cfl_rate(x, grid).cpu().numpy()
        with np.errstate(divide="ignore"):
            return np.where(rate > 0, self.courant / rate, np.inf)
