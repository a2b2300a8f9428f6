"""Exponential time differencing for semi-linear problems ``u_t = L u + N(u)``.

The linear operator ``L`` acts per Fourier mode. Either it is diagonal — given as its symbol, a
tensor broadcastable to the spectrum ``[B, C, H, W//2+1]`` of the state, real or complex, which
may differ per sample (``B``) and per channel (``C``) — or it couples the ``C`` channels of each
wavenumber — given as a :class:`CoupledLinear`, a ``C×C`` matrix per wavenumber (e.g. the wave
system ``(u, u_t)`` with ``[[0, 1], [−c²|k|², −γ]]``); see :func:`matrix_phi_functions`. The
nonlinear part ``N`` is any callable from the state's spectrum to the spectrum of ``N(u)``, or
``None`` for ``N = 0`` (the step is then the exact linear flow alone). A solver is composed, as
in the exponax library, from three independent choices: its linear symbol, its nonlinear
function and an integrator (:data:`INTEGRATORS`: the ETD Runge–Kutta schemes, and the
kick–flow–kick splitting :class:`StrangSplitting` for Hamiltonian problems), e.g.::

    stepper = make_stepper("etdrk4", linear=D * laplacian_symbol(grid), dt=0.5,
                           nonlinear=lambda u_hat: rfft2(f(irfft2(u_hat))))
    u_hat = stepper.advance(u_hat, n_steps)

Coefficients. ETD schemes need the φ-functions ``φ_k(z)`` at ``z = dt·L``. Their closed forms
(``φ_1(z) = (e^z - 1)/z`` ...) lose every digit to cancellation near ``z = 0``, so they are
evaluated by the contour-integral method of Kassam & Trefethen (2005): ``φ_k(z)`` is the mean of
``φ_k`` over ``M`` points on a circle around ``z`` (Cauchy's formula, trapezoidal rule, which
converges geometrically for these entire functions). Unlike the original radius-1 circle —
whose points come within ``|sin(π/2M)|`` of the origin when ``|z| ≈ 1`` — the circle here is
chosen so that every point stays at distance >= 1 from the origin (radius 1 when ``|z| >= 2``,
radius 3 otherwise), which bounds the cancellation everywhere. Everything is computed in
float64/complex128 on the CPU and only then cast to the run's dtype and device.

Coupled linear parts. The same schemes hold with matrix coefficients ``φ_k(dt·M(k))``, computed
without an eigendecomposition (see :func:`matrix_phi_functions`): the wave matrix is a Jordan
block at ``k = 0`` when ``γ = 0`` and at critical damping ``γ = 2c|k|``, where an eigenbasis does
not exist or is ill-conditioned, while the matrix φ-functions stay exact there.

Determinism. Coefficients of a per-sample ``L`` are computed sample by sample, and spectra are
multiplied by coefficients with real arithmetic only (complex128 products take different SIMD
and scalar code paths on CPU, whose last bits differ), so a sample's result does not depend on
which batch it is computed in.

References: S. M. Cox, P. C. Matthews, J. Comput. Phys. 176 (2002) 430–455 (ETDRK schemes);
A.-K. Kassam, L. N. Trefethen, SIAM J. Sci. Comput. 26 (2005) 1214–1233 (contour integrals);
E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, 2nd ed., Springer (2006),
§II.5 and §XIII.1 (splitting, Störmer–Verlet, impulse methods).
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "ETDRK1",
    "ETDRK2",
    "ETDRK4",
    "INTEGRATORS",
    "CoupledLinear",
    "ETDIntegrator",
    "StrangSplitting",
    "make_stepper",
    "matrix_phi_functions",
    "phi_functions",
]

Nonlinear = Callable[[torch.Tensor], torch.Tensor]


#: glibc ``mallopt`` settings applied once, before the first CPU step (see :func:`_keep_freed_heap`).
_MALLOPT = {-3: 32 << 20,      # M_MMAP_THRESHOLD: blocks below 32 MB come from the heap
            -1: 128 << 20}     # M_TRIM_THRESHOLD: keep up to 128 MB of freed heap
_heap_kept = False


def _keep_freed_heap() -> None:
    """Ask glibc to keep freed heap memory for reuse instead of returning it after every step.

    Why: a step allocates and frees a dozen spectra (the FFTs' outputs, the stages); by default
    glibc trims the freed top of the heap back to the OS, and every next step faults the pages
    in again, zeroed: measured ~900 page faults per Gray–Scott step at 64² and batch 16, 40 % of
    the step's time. With blocks under 32 MB served from the heap and up to 128 MB of free heap
    kept, the faults disappear (~14 per step). Process-wide and bounded (at most 128 MB stays
    resident unused); skipped off glibc and when the user set any ``MALLOC_*`` variable
    (their choice stands).
    """
    global _heap_kept
    if _heap_kept:
        return
    _heap_kept = True
    if (sys.platform != "linux" or platform.libc_ver()[0] != "glibc"
            or any(k.startswith("MALLOC_") for k in os.environ)):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for option, value in _MALLOPT.items():
        mallopt(ctypes.c_int(option), ctypes.c_int(value))


def phi_functions(z: torch.Tensor | complex, max_order: int = 3,
                  n_points: int = 32) -> list[torch.Tensor]:
    """``[φ_0(z), φ_1(z), ..., φ_max_order(z)]`` as complex128 tensors of ``z``'s shape.

    ``φ_0(z) = e^z`` and ``φ_k(z) = (φ_{k-1}(z) - 1/(k-1)!) / z``, with the removable
    singularity at ``z = 0`` filled (``φ_k(0) = 1/k!``). Evaluated by the contour-integral method
    (see the module docstring) to about 1e-14 relative accuracy for ``Re z`` up to ~ 700.
    """
    if max_order < 0:
        raise ValueError("max_order must be >= 0")
    if n_points < 8:
        raise ValueError("use at least 8 contour points")
    if not torch.is_tensor(z):
        # torch.as_tensor would make a Python complex complex64 and lose half the digits.
        z = torch.tensor(complex(z), dtype=torch.complex128)
    z = z.detach().to("cpu", torch.complex128)
    theta = (torch.arange(n_points, dtype=torch.float64) + 0.5) * (2.0 * math.pi / n_points)
    circle = torch.polar(torch.ones_like(theta), theta).to(torch.complex128)
    # Keep every contour point at distance >= 1 from the origin (see module docstring).
    radius = torch.where(z.abs() >= 2.0, 1.0, 3.0).to(torch.complex128)
    w = z.unsqueeze(-1) + radius.unsqueeze(-1) * circle
    phis = [torch.exp(w)]
    factorial = 1.0
    for k in range(1, max_order + 1):
        phis.append((phis[-1] - 1.0 / factorial) / w)
        factorial *= k
    out = [p.mean(dim=-1) for p in phis]
    # Exact values at z = 0 (a zero eigenvalue: the mean mode, an undamped channel), so that a
    # state that should not change, e.g. a uniform steady state, keeps its bits.
    zero = z == 0
    if bool(zero.any()):
        factorial = 1.0
        for k in range(max_order + 1):
            factorial *= max(k, 1)
            out[k] = torch.where(zero, torch.full_like(out[k], 1.0 / factorial), out[k])
    return out


def matrix_phi_functions(z: torch.Tensor, max_order: int = 3,
                         n_points: int = 32) -> list[torch.Tensor]:
    """``[φ_0(Z), ..., φ_max_order(Z)]`` for a stack of square matrices ``Z [..., C, C]``.

    Complex128 results of ``Z``'s shape. The contour method of :func:`phi_functions` carries
    over to matrices (Kassam & Trefethen 2005, §3): ``φ_k(Z)`` is the mean of ``φ_k(Z + s I)``
    over ``M`` points ``s`` on a circle of radius ``r``, with ``φ_0 = expm`` and
    ``φ_k(W) = W⁻¹ (φ_{k-1}(W) − I/(k−1)!)``. No eigenvectors are needed, so Jordan blocks (the
    undamped wave's mean mode, critical damping) are as accurate as any other matrix. The
    radius keeps every eigenvalue of every ``W = Z + s I`` at distance >= 1 from 0, bounding the
    cancellation in ``φ_{k-1}(W) − I/(k−1)!``: it is the first of ``1, 3, ..., 2C+1`` outside
    all the intervals ``(|λ_i| − 1, |λ_i| + 1)`` (``C`` open intervals of length 2 cannot cover
    ``C + 1`` points 2 apart). An all-zero ``Z`` gets the exact ``I/k!``.
    """
    if max_order < 0:
        raise ValueError("max_order must be >= 0")
    if n_points < 8:
        raise ValueError("use at least 8 contour points")
    z = z.detach().to("cpu", torch.complex128)
    if z.ndim < 2 or z.shape[-1] != z.shape[-2]:
        raise ValueError(f"need square matrices [..., C, C], got shape {list(z.shape)}")
    c = z.shape[-1]
    eye = torch.eye(c, dtype=torch.complex128)
    moduli = torch.linalg.eigvals(z).abs()                                       # [..., C]
    candidates = torch.arange(1.0, 2.0 * c + 2.0, 2.0, dtype=torch.float64)     # [C + 1]
    clear = ((moduli.unsqueeze(-2) - candidates.unsqueeze(-1)).abs() >= 1.0).all(dim=-1)
    radius = candidates[clear.to(torch.int8).argmax(dim=-1)]                    # first clear
    theta = (torch.arange(n_points, dtype=torch.float64) + 0.5) * (2.0 * math.pi / n_points)
    circle = torch.polar(torch.ones_like(theta), theta).to(torch.complex128)    # [M]
    shift = radius.to(torch.complex128)[..., None] * circle                     # [..., M]
    w = z.unsqueeze(-3) + shift[..., None, None] * eye                          # [..., M, C, C]
    phis = [torch.linalg.matrix_exp(w)]
    factorial = 1.0
    for k in range(1, max_order + 1):
        phis.append(torch.linalg.solve(w, phis[-1] - eye / factorial))
        factorial *= k
    out = [p.mean(dim=-3) for p in phis]
    zero = (z == 0).all(dim=-1).all(dim=-1)[..., None, None]
    if bool(zero.any()):
        factorial = 1.0
        for k in range(max_order + 1):
            factorial *= max(k, 1)
            out[k] = torch.where(zero, eye / factorial, out[k])
    return out


@dataclass(frozen=True)
class CoupledLinear:
    """A linear part that couples the channels of each wavenumber.

    ``matrix``: ``[B, H, W//2+1, C, C]`` (``B`` may be 1 for a shared operator), real or complex,
    with ``(L û)_i = Σ_j matrix[..., i, j] û_j`` at every wavenumber of the ``rfft2`` layout.
    For a real PDE the matrix at ``−k`` must be the conjugate of that at ``k`` (automatic for
    real matrices built from ``|k|²``).
    """

    matrix: torch.Tensor

    def __post_init__(self) -> None:
        m = self.matrix
        if not torch.is_tensor(m) or m.ndim != 5 or m.shape[-1] != m.shape[-2]:
            shape = list(m.shape) if torch.is_tensor(m) else type(m).__name__
            raise ValueError(f"a coupled linear part is a [B, H, W//2+1, C, C] tensor, got {shape}")

    @property
    def channels(self) -> int:
        return int(self.matrix.shape[-1])


def _as_linear(linear: torch.Tensor | float) -> torch.Tensor:
    if not torch.is_tensor(linear):
        linear = torch.tensor(linear, dtype=torch.complex128 if isinstance(linear, complex)
                              else torch.float64)
    lin = linear.detach().to("cpu")
    if lin.is_complex():
        return lin.to(torch.complex128)
    return lin.to(torch.float64)


def _cast(c: torch.Tensor, real: bool, dtype: torch.dtype, device) -> torch.Tensor:
    """A complex128 coefficient to the run's dtype and layout.

    For a real ``L`` only the real part is kept, duplicated along a trailing axis of 2 so that it
    multiplies ``view_as_real(spectrum)`` as a contiguous tensor (a stride-0 trailing axis
    would defeat vectorization and cost ~3x); a complex one is kept as its real view
    ``[..., 2]`` (real and imaginary parts).
    """
    if real:
        return c.real.to(dtype).unsqueeze(-1).expand(*c.shape, 2).contiguous().to(device)
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return torch.view_as_real(c.to(cdtype).contiguous()).to(device)


class ETDIntegrator:
    """An ETD Runge–Kutta stepper for ``û_t = L û + N̂(û)`` with fixed ``dt``.

    Built once per (``L``, ``dt``): the constructor precomputes every coefficient. ``linear``
    is broadcastable to the spectrum ``[B, C, H, W//2+1]``, or a :class:`CoupledLinear`; when
    its leading (batch) dimension is larger than 1 the coefficients are computed one sample at
    a time (see module docstring).
    ``dtype`` is the real dtype of the fields (float32 or float64); spectra passed to
    :meth:`step` must be the matching complex dtype on ``device``.
    """

    #: Nominal order of accuracy in time.
    order: int = 0
    name: str = "abstract"
    #: The coefficients that multiply ``N̂`` (and only ``N̂``): where a dealiasing mask is
    #: folded in.
    nonlinear_coefficients: tuple[str, ...] = ()

    def __init__(self, linear: torch.Tensor | float | CoupledLinear, dt: float,
                 nonlinear: Nonlinear, *,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 contour_points: int = 32, flush_subnormals: bool = True,
                 dealias: torch.Tensor | None = None):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"field dtype must be float32 or float64, got {dtype}")
        dt = float(dt)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"time step must be positive and finite, got {dt}")
        self.dt = dt
        self.nonlinear = nonlinear
        self.flush_below = torch.finfo(dtype).tiny if flush_subnormals else 0.0
        self._largest_subnormal = float(torch.nextafter(
            torch.tensor(self.flush_below, dtype=dtype), torch.tensor(0.0, dtype=dtype)))
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.coupled = isinstance(linear, CoupledLinear)
        if self.coupled:
            lin = _as_linear(linear.matrix)
            self._phi = matrix_phi_functions
            per_sample = lin.shape[0] > 1
        else:
            lin = _as_linear(linear)
            self._phi = phi_functions
            per_sample = lin.ndim == 4 and lin.shape[0] > 1
        self.real_coefficients = not lin.is_complex()
        if per_sample:
            # Per-sample L: one sample at a time, so each row's bits are batch-independent.
            parts = [self._distinct_coefficients(dt * lin[i:i + 1], contour_points)
                     for i in range(lin.shape[0])]
            coeffs = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        else:
            coeffs = self._distinct_coefficients(dt * lin, contour_points)
        for key, value in coeffs.items():
            if self.coupled:
                # [B, H, W', C, C] -> [B, C, C, H, W']: coef[:, i, j] meets channel j's spectrum.
                value = value.permute(0, 3, 4, 1, 2)
            setattr(self, key, _cast(value, self.real_coefficients, dtype, self.device))
        # Orszag's output truncation, mask · N̂: folded into the coefficients that multiply N̂
        # (zero outside the kept modes), which saves a masking pass per evaluation of N; a
        # scheme without such coefficients (the splitting's kick) masks N̂ itself.
        self._removed = None
        if dealias is not None:
            removed = (~dealias.to(torch.bool)).to(self.device)[..., None]   # [H, W', 1]
            if self.nonlinear_coefficients:
                for key in self.nonlinear_coefficients:
                    coef = getattr(self, key)
                    coef = coef.expand(torch.broadcast_shapes(coef.shape, removed.shape))
                    setattr(self, key, coef.masked_fill(removed, 0.0).contiguous())
            else:
                self._removed = removed

    def _coefficients(self, z: torch.Tensor, contour_points: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _distinct_coefficients(self, z: torch.Tensor,
                               contour_points: int) -> dict[str, torch.Tensor]:
        """Coefficients evaluated once per distinct value of a real ``z``, then scattered.

        Isotropic symbols repeat each ``|k|²`` many times (8x fewer distinct values on 128²),
        and the contour evaluation dominates the set-up cost. The distinct values depend only
        on this ``z``, so the result stays a function of this sample's ``L`` alone.
        """
        if z.is_complex() or self.coupled:
            return self._coefficients(z, contour_points)
        values, inverse = torch.unique(z, return_inverse=True)
        return {k: v[inverse] for k, v in self._coefficients(values, contour_points).items()}

    # -- products with the coefficients, on real views ``[B, C, H, W', 2]`` of spectra ------------
    #
    # Every stage works on ``view_as_real`` of the spectra, with one fused kernel per term:
    # ``torch.mul`` for ``coef · x`` and ``addcmul`` for ``acc + value · coef · x`` (the
    # elementwise passes, not the FFTs, were most of a step's time: complex64 adds run
    # unvectorized and each term was a separate product, sum and temporary). Only real
    # elementwise arithmetic is used, so a sample's bits do not depend on its batch (module
    # docstring). ``addcmul`` rounds once (a fused multiply-add) in its vectorized and scalar
    # paths alike (checked on torch 2.13, float32 and float64, tails included), so it keeps
    # that property. A complex diagonal coefficient is applied as its real and imaginary parts.

    def _mul(self, coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``coef · x`` for a real view ``x``; a new real view."""
        if self.coupled:
            out = torch.empty_like(x)
            for i in range(x.shape[1]):
                self._mul_diagonal(coef[:, i, 0], x[:, 0], out[:, i])
                for j in range(1, x.shape[1]):
                    self._fma_diagonal(out[:, i], coef[:, i, j], x[:, j], 1.0)
            return out
        return self._mul_diagonal(coef, x, None)

    def _fma(self, acc: torch.Tensor, coef: torch.Tensor, x: torch.Tensor,
             value: float = 1.0) -> torch.Tensor:
        """``acc += value · coef · x`` in place (real views); returns ``acc``."""
        if self.coupled:
            for i in range(x.shape[1]):
                for j in range(x.shape[1]):
                    self._fma_diagonal(acc[:, i], coef[:, i, j], x[:, j], value)
            return acc
        return self._fma_diagonal(acc, coef, x, value)

    def _added(self, acc: torch.Tensor, coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``acc + coef · x`` as a new real view (``acc`` untouched)."""
        if self.real_coefficients and not self.coupled:
            return torch.addcmul(acc, coef, x)
        return self._fma(acc.clone(), coef, x)

    def _mul_diagonal(self, coef, x, out):
        if self.real_coefficients:
            return torch.mul(coef, x, out=out) if out is not None else coef * x
        if out is None:
            out = torch.empty_like(x)
        xr, xi = x[..., 0], x[..., 1]
        cr, ci = coef[..., 0], coef[..., 1]
        torch.mul(xr, cr, out=out[..., 0]).addcmul_(xi, ci, value=-1.0)
        torch.mul(xr, ci, out=out[..., 1]).addcmul_(xi, cr)
        return out

    def _fma_diagonal(self, acc, coef, x, value):
        if self.real_coefficients:
            return acc.addcmul_(coef, x, value=value)
        xr, xi = x[..., 0], x[..., 1]
        cr, ci = coef[..., 0], coef[..., 1]
        acc[..., 0].addcmul_(xr, cr, value=value).addcmul_(xi, ci, value=-value)
        acc[..., 1].addcmul_(xr, ci, value=value).addcmul_(xi, cr, value=value)
        return acc

    def _n(self, x: torch.Tensor) -> torch.Tensor:
        """The nonlinear term of a real view, as a real view."""
        n = torch.view_as_real(self.nonlinear(torch.view_as_complex(x)))
        return n if self._removed is None else n.masked_fill(self._removed, 0.0)

    def _flushed(self, x: torch.Tensor) -> torch.Tensor:
        """Subnormal entries of a real view set to 0 (see :meth:`advance`); NaN and inf kept.

        ``hardshrink`` with the largest subnormal as threshold zeroes exactly ``|x| < tiny`` in
        one pass (the former ``masked_fill_(abs(x) < tiny)`` took three)."""
        if not self.flush_below:
            return x
        return torch.nn.functional.hardshrink(x, self._largest_subnormal)

    def step(self, u_hat: torch.Tensor) -> torch.Tensor:
        """One step of ``dt``: spectrum ``[B, C, H, W//2+1]`` in, same shape out."""
        return torch.view_as_complex(self._any_step(torch.view_as_real(u_hat)))

    def _any_step(self, u: torch.Tensor) -> torch.Tensor:
        if self.nonlinear is None:            # N = 0: the exact linear flow alone
            return self._mul(self.exp_z, u)
        return self._step(u)

    def _step(self, u: torch.Tensor) -> torch.Tensor:
        """One step on the real view ``[B, C, H, W//2+1, 2]``; a new real view."""
        raise NotImplementedError

    def advance(self, u_hat: torch.Tensor, n_steps: int) -> torch.Tensor:
        """``n_steps`` steps of ``dt``, flushing subnormal spectral entries to zero after each.

        Why flush: modes that only decay (``e^{z}`` per step, no forcing) pass through the
        subnormal range, where CPU arithmetic is 10-100x slower (measured: a decaying
        Gray–Scott run in float32 took 5x longer). Values below ``finfo.tiny`` (1.2e-38 in
        float32) carry no information, and zeroing them is elementwise, hence bit-reproducible.
        """
        if u_hat.device.type == "cpu":
            _keep_freed_heap()
        u = torch.view_as_real(u_hat)
        for _ in range(int(n_steps)):
            u = self._flushed(self._any_step(u))
        return torch.view_as_complex(u)


class ETDRK1(ETDIntegrator):
    """Exponential Euler: ``û⁺ = e^z û + dt φ₁(z) N̂(û)``, first order."""

    order = 1
    name = "etdrk1"
    nonlinear_coefficients = ("c1",)

    def _coefficients(self, z, contour_points):
        phi = self._phi(z, 1, contour_points)
        return {"exp_z": phi[0], "c1": self.dt * phi[1]}

    def _step(self, u):
        return self._fma(self._mul(self.exp_z, u), self.c1, self._n(u))


class ETDRK2(ETDIntegrator):
    """Cox–Matthews ETD2RK, second order.

    ``a = e^z û + dt φ₁ N̂(û)``;  ``û⁺ = a + dt φ₂ (N̂(a) − N̂(û))``.
    """

    order = 2
    name = "etdrk2"
    nonlinear_coefficients = ("c1", "c2")

    def _coefficients(self, z, contour_points):
        phi = self._phi(z, 2, contour_points)
        return {"exp_z": phi[0], "c1": self.dt * phi[1], "c2": self.dt * phi[2]}

    def _step(self, u):
        n_u = self._n(u)
        a = self._fma(self._mul(self.exp_z, u), self.c1, n_u)
        return self._fma(self._added(a, self.c2, self._n(a)), self.c2, n_u, -1.0)


class ETDRK4(ETDIntegrator):
    """Cox–Matthews ETDRK4 in the Kassam–Trefethen form, fourth order.

    With ``z = dt L``, ``E = e^z``, ``E₂ = e^{z/2}``, ``Q = (dt/2) φ₁(z/2)``::

        a  = E₂ û + Q N̂(û)
        b  = E₂ û + Q N̂(a)
        c  = E₂ a + Q (2 N̂(b) − N̂(û))
        û⁺ = E û + f₁ N̂(û) + 2 f₂ (N̂(a) + N̂(b)) + f₃ N̂(c)

    ``f₁ = dt(φ₁ − 3φ₂ + 4φ₃)``, ``f₂ = dt(φ₂ − 2φ₃)``, ``f₃ = dt(4φ₃ − φ₂)`` at ``z``.
    """

    order = 4
    name = "etdrk4"
    nonlinear_coefficients = ("q", "f1", "f2x2", "f3")

    def _coefficients(self, z, contour_points):
        p = self._phi(z, 3, contour_points)
        h = self._phi(z / 2, 1, contour_points)
        dt = self.dt
        return {
            "exp_z": p[0],
            "exp_half": h[0],
            "q": 0.5 * dt * h[1],
            "f1": dt * (p[1] - 3.0 * p[2] + 4.0 * p[3]),
            # f2 is applied to 2(N_a + N_b): fold the 2 in here.
            "f2x2": 2.0 * dt * (p[2] - 2.0 * p[3]),
            "f3": dt * (4.0 * p[3] - p[2]),
        }

    def _step(self, u):
        # 12 elementwise passes besides the four evaluations of N (see _mul).
        n_u = self._n(u)
        e_u = self._mul(self.exp_half, u)
        a = self._added(e_u, self.q, n_u)
        n_a = self._n(a)
        b = self._fma(e_u, self.q, n_a)                  # e_u is not needed after b
        n_b = self._n(b)
        c = self._fma(self._fma(self._mul(self.exp_half, a), self.q, n_b, 2.0), self.q, n_u, -1.0)
        n_c = self._n(c)
        out = self._fma(self._mul(self.exp_z, u), self.f1, n_u)
        self._fma(out, self.f2x2, torch.add(n_a, n_b))
        return self._fma(out, self.f3, n_c)


class StrangSplitting(ETDIntegrator):
    """Kick–flow–kick (Strang) splitting: a half kick by ``N``, the exact linear flow, a half kick.

    With ``h = dt/2`` and ``E = e^{dt L}`` (``torch.exp`` of the symbol, or
    ``torch.linalg.matrix_exp`` of a :class:`CoupledLinear` matrix, in complex128)::

        a  = û + h N̂(û)          # kick
        b  = E a                  # exact flow of the linear part
        û⁺ = b + h N̂(b)          # kick

    One step costs two evaluations of ``N`` and no φ-function beyond ``e^z``.

    When it is what you want. The kick is one forward-Euler step of ``u' = N(u)``; it *is* the
    exact flow of ``N`` when ``N'(u) N(u) = 0`` — a kick that changes only components ``N``
    does not read, e.g. a force that depends on positions and changes velocities (the
    heterogeneous part ``∇·((c² − c̄²)∇u)`` of the wave equation in ``(u, u_t)``). Then:

    * the scheme is Strang splitting of two exact flows: second order, time-reversible;
    * it is **symplectic** when the linear flow is (an undamped, Hamiltonian ``L`` such as
      ``[[0, 1], [c̄²Δ, 0]]``) and the kick is the flow of a Hamiltonian ``V(q)``
      (``p ← p − h ∇V(q)``): a composition of symplectic maps. The energy then has no drift;
      it oscillates within ``O(dt²)`` of its initial value (backward error analysis: a
      modified energy is conserved up to exponentially small terms);
    * with ``N = 0`` it is the exact solution of the linear problem (to the rounding of ``E``).

    For a general ``N`` (``N'N ≠ 0``) the kick is only first order, and so is the scheme; use
    an ETDRK integrator then. Stability: the linear flow is exact but resonates with the kicks
    when ``dt`` times a frequency of ``L`` nears π; see :mod:`~noa_platform.numerics.stability`.
    """

    order = 2
    name = "strang"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.half_dt = 0.5 * self.dt

    def _coefficients(self, z, contour_points):
        if self.coupled:
            # A real matrix has a real exponential: computed in float64 (half the work of
            # complex128), then widened like every other coefficient.
            return {"exp_z": torch.linalg.matrix_exp(z).to(torch.complex128)}
        return {"exp_z": torch.exp(z.to(torch.complex128))}

    def _kick(self, u: torch.Tensor) -> torch.Tensor:
        # u + h N(u) on real views, one fused pass (bit-reproducible like addcmul).
        return torch.add(u, self._n(u), alpha=self.half_dt)

    def _step(self, u):
        return self._kick(self._mul(self.exp_z, self._kick(u)))

    def advance(self, u_hat: torch.Tensor, n_steps: int) -> torch.Tensor:
        """``n_steps`` steps; one evaluation of ``N`` per step when ``N`` is kick-invariant.

        A term that declares ``kick_invariant = True`` (an attribute of the callable) promises
        that its output is zero in every channel it reads — e.g. the wave's kick changes ``u_t``
        and reads ``u`` — so a kick leaves it unchanged: ``N̂(x + h N̂(x)) = N̂(x)``. The second
        half kick of a step and the first of the next then use the same ``N̂(b)``, and a step
        costs one evaluation instead of two (the velocity Verlet form of the scheme). Each
        state is flushed (see :meth:`ETDIntegrator.advance`) before ``N`` reads it, so the
        reused value is exactly that of the flushed next state.
        """
        if self.nonlinear is None or not getattr(self.nonlinear, "kick_invariant", False):
            return super().advance(u_hat, n_steps)
        if u_hat.device.type == "cpu":
            _keep_freed_heap()
        u = torch.view_as_real(u_hat)
        if int(n_steps) <= 0:
            return u_hat
        n = self._n(u)
        for _ in range(int(n_steps)):
            b = self._flushed(self._mul(self.exp_z, torch.add(u, n, alpha=self.half_dt)))
            n = self._n(b)
            u = self._flushed(torch.add(b, n, alpha=self.half_dt))
        return torch.view_as_complex(u)


#: Integrators by name, for configs and for composing solvers.
INTEGRATORS: dict[str, type[ETDIntegrator]] = {
    cls.name: cls for cls in (ETDRK1, ETDRK2, ETDRK4, StrangSplitting)
}


def make_stepper(integrator: str, *, linear: torch.Tensor | float | CoupledLinear, dt: float,
                 nonlinear: Nonlinear, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, contour_points: int = 32,
                 flush_subnormals: bool = True,
                 dealias: torch.Tensor | None = None) -> ETDIntegrator:
    """Compose a stepper from a linear symbol, a nonlinear function and an integrator name.

    ``dealias``: a boolean ``[H, W//2+1]`` mask of the modes ``N̂`` may reach the state through
    (Orszag's output truncation ``mask · N̂``; the input side is the nonlinear function's)."""
    try:
        cls = INTEGRATORS[integrator]
    except KeyError:
        raise ValueError(
            f"unknown integrator {integrator!r}; choose one of {', '.join(INTEGRATORS)}"
        ) from None
    return cls(linear, dt, nonlinear, dtype=dtype, device=device, contour_points=contour_points,
               flush_subnormals=flush_subnormals, dealias=dealias)
