"""The two reaction kinetics and the θ vector they share.

θ has five columns for both kinetics (physical values, float64)::

    column  name      range                 read by
    0       kinetics  {gray-scott, fitzhugh-nagumo}  both (selects the equations)
    1       F         [0.01, 0.07]          Gray–Scott (feed rate)
    2       k         [0.045, 0.07]         Gray–Scott (kill rate)
    3       kappa     [-0.1, 0.1]           FitzHugh–Nagumo (activator offset κ)
    4       tau       [0.1, 2.5]            FitzHugh–Nagumo (inhibitor time-scale ratio τ)

A kinetics ignores the columns it does not read (any in-range value gives the same trajectory);
keeping them makes θ one fixed-width vector, so datasets and learned operators mix kinetics.

Gray–Scott, in grid units (spacing 1, time in the units of ``frame_dt``)::

    u_t = Du Δu − u v² + F (1 − u),      Du = 0.16
    v_t = Dv Δv + u v² − (F + k) v,      Dv = 0.08

At 64×64 with frames every 50 time units the (F, k) box gives spots, stripes, labyrinths,
solitons, chaos and decay to a uniform state: the rest state (u, v) = (1, 0), or for large F and
small k the other, reacting one.

FitzHugh–Nagumo, in the Turing-pattern form popularised by Rossant's *IPython Cookbook*
(``u_t = a Δu + u − u³ − v + κ``, ``τ v_t = b Δv + u − v`` on [−1, 1]² with a = 2.8e-4,
b = 5e-3), mapped to grid units: space rescaled so that that grid's spacing (0.02) becomes 1,
giving ``a = 0.7``, ``b = 12.5``, and time stretched by ``T = 40`` so that one frame (50 units)
is 1.25 of FHN's own time units and a 32-frame quick run (40 FHN units) shows pattern formation
and saturation::

    u_t = (0.7  Δu + u − u³ − v + κ) / T
    v_t = (12.5 Δv + u − v) / (τ T),      T = 40

Why this box: the homogeneous state is u* = v* = κ^(1/3). Small τ gives a fast, strongly
diffusing inhibitor (D_v/D_u = 17.9/τ) and Turing patterns — labyrinths for κ ≈ 0, spots for
|κ| → 0.1 (κ's sign swaps spots and background) — with wavelength ≈ 12.5 grid cells, i.e. ~5
wavelengths on 64×64 and ~2.5 on the quick 32×32 grid. The homogeneous state loses stability to
oscillations at the Hopf line τ_H = 1/(1 − 3κ^(2/3)) (1 at κ = 0, 2.8 at |κ| = 0.1): past it
(small |κ|, τ ≳ 1.5) come bulk oscillations and travelling fronts; at large |κ| and large τ
the Turing band closes and the state decays to uniform. κ ∈ [−0.1, 0.1], τ ∈ [0.1, 2.5] holds all
three. Measured at 32², 32 frames, random-squares start: Turing labyrinths form within ~8
frames and then coarsen slowly (relative change ~1% per frame by frame 32).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from noa_platform.api import CategoricalParameter, LinearParameter, ParameterSpace

# θ and the laws are read when plugins are discovered; torch only when a solver runs, so it is
# imported inside the methods that build tensors (see domain.py).
if TYPE_CHECKING:
    import torch

KINETICS = ("gray-scott", "fitzhugh-nagumo")

PARAMETER_SPACE = ParameterSpace([
    CategoricalParameter("kinetics", "reaction kinetics (selects which columns are read)",
                         choices=KINETICS),
    LinearParameter("F", "Gray–Scott feed rate", low=0.01, high=0.07),
    LinearParameter("k", "Gray–Scott kill rate", low=0.045, high=0.07),
    LinearParameter("kappa", "FitzHugh–Nagumo activator offset κ", low=-0.1, high=0.1),
    LinearParameter("tau", "FitzHugh–Nagumo inhibitor time-scale ratio τ", low=0.1, high=2.5),
])

COL_KINETICS, COL_F, COL_K, COL_KAPPA, COL_TAU = range(5)

# How the default internal steps were chosen (float64, 32², developed states, two frames of 50
# against a dt = 1/16 reference): Gray–Scott at dt = 1.25 has relative error <= 1e-6 across the
# box (its stability limit is ~1.6); FitzHugh–Nagumo <= 3e-5 at dt = 2.5 for τ = 0.1 and at
# dt = 5 for τ >= 0.2 (errors scale with dt/τ). Both are small next to how far a pattern moves
# in a frame, and a few-valued default keeps samples in few step-plan groups.

# The step a rate bound allows per integrator is the core's (noa_platform.numerics.stability):
# diffusion is integrated exactly, so only the reaction Jacobian's spectral radius ρ limits it.


@dataclass(frozen=True)
class ReactionSplit:
    """A reaction written as ``R_i = Σ_j A_ij x_j + b_i + w_i P(u, v)`` (``x = (u, v)``) with a
    single scalar product field ``P``: the solver then transforms only ``P`` and applies the
    affine part in Fourier space (``Σ_j A_ij x̂_j``, ``b_i`` on the mean mode), one forward FFT
    of one channel per evaluation instead of both channels' reaction (the same ``N̂``).

    Coefficients are per-sample scalars ``[b, 1, 1]`` (or Python floats); a missing key is 0.
    """

    linear: dict[tuple[int, int], object] = field(default_factory=dict)   # A_ij
    constant: dict[int, object] = field(default_factory=dict)              # b_i
    weight: dict[int, object] = field(default_factory=dict)                # w_i
    product: Callable | None = None                                       # P(u, v)


@dataclass(frozen=True)
class Kinetics:
    """One reaction law: diffusion per channel, reaction terms, and time-step limits."""

    name: str

    def default_dt(self, theta: np.ndarray) -> np.ndarray:
        """``[b]`` internal step used when the caller asks for none, from each row alone.

        Chosen for accuracy (see the note above) and taking few distinct values, so that
        samples sharing a step plan are integrated together.
        """
        raise NotImplementedError

    def diffusion(self, theta: np.ndarray) -> np.ndarray:
        """``[b, 2]`` diffusion coefficients (u, v) for physical θ rows ``[b, P]``."""
        raise NotImplementedError

    def rate_bound(self, theta: np.ndarray) -> np.ndarray:
        """``[b]`` bound on the reaction Jacobian's spectral radius over reachable states."""
        raise NotImplementedError

    def coefficients(self, theta: np.ndarray, dtype: torch.dtype,
                     device: torch.device) -> dict[str, torch.Tensor]:
        """Per-sample scalars ``[b, 1, 1]`` that :meth:`reaction` reads."""
        raise NotImplementedError

    def reaction(self, u: torch.Tensor, v: torch.Tensor,
                 c: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reaction terms ``(R_u, R_v)`` for fields ``u, v`` ``[b, H, W]``."""
        raise NotImplementedError

    def split(self, c: dict[str, torch.Tensor]) -> ReactionSplit | None:
        """Optional: :meth:`reaction` as affine part plus one product field (the solver's
        faster form of the same ``N̂``); ``None`` (the default) transforms the reaction."""
        return None


class GrayScott(Kinetics):
    DU = 0.16
    DV = 0.08

    def default_dt(self, theta):
        return np.full(len(theta), 1.25)

    def diffusion(self, theta):
        return np.tile([self.DU, self.DV], (len(theta), 1))

    def rate_bound(self, theta):
        # Row sums of the Jacobian [[-v² - F, -2uv], [v², 2uv - F - k]] on the region
        # u, v >= 0, u + v <= 1 that the kinetics keeps (v² <= 1, 2uv <= 1/2).
        f, k = theta[:, COL_F], theta[:, COL_K]
        return np.maximum(1.0 + f + 0.5, 1.0 + np.maximum(0.5, f + k))

    def coefficients(self, theta, dtype, device):
        import torch

        def col(i):
            return torch.as_tensor(theta[:, i], dtype=torch.float64).to(dtype).to(
                device).reshape(-1, 1, 1)
        f, k = col(COL_F), col(COL_K)
        return {"F": f, "F+k": f + k}

    def reaction(self, u, v, c):
        # Five elementwise passes (fused multiply-adds, in place where a temporary is ours):
        # the reaction runs four times per ETDRK4 step.
        uvv = (u * v).mul_(v)
        return (c["F"].addcmul(c["F"], u, value=-1.0).sub_(uvv),
                uvv.addcmul(c["F+k"], v, value=-1.0))

    def split(self, c):
        # R_u = −F u + F − u v²,  R_v = −(F + k) v + u v²
        return ReactionSplit(linear={(0, 0): -c["F"], (1, 1): -c["F+k"]},
                             constant={0: c["F"]}, weight={0: -1.0, 1: 1.0},
                             product=lambda u, v: (u * v).mul_(v))


class FitzHughNagumo(Kinetics):
    A = 0.7
    B = 12.5
    T = 40.0

    def default_dt(self, theta):
        # The inhibitor's rate 1/(τT) sets the error: halve the step for the stiffest τ < 0.2.
        return np.where(theta[:, COL_TAU] < 0.2, 2.5, 5.0)

    def diffusion(self, theta):
        tau = theta[:, COL_TAU]
        return np.stack([np.full_like(tau, self.A / self.T), self.B / (tau * self.T)], axis=1)

    def rate_bound(self, theta):
        # Row sums of [[1 - 3u², -1], [1/τ, -1/τ]] / T for |u| <= 1.5, a bound the cubic keeps
        # (|κ| <= 0.1 moves the outer roots of u - u³ + κ only to ±1.05).
        tau = theta[:, COL_TAU]
        return np.maximum((3.0 * 1.5**2 - 1.0 + 1.0) / self.T, 2.0 / (tau * self.T))

    def coefficients(self, theta, dtype, device):
        import torch

        def col(x):
            return torch.as_tensor(x, dtype=torch.float64).to(dtype).to(device).reshape(-1, 1, 1)
        return {"kappa": col(theta[:, COL_KAPPA]),
                "1/T": col(np.full(len(theta), 1.0 / self.T)),
                "1/(tau T)": col(1.0 / (theta[:, COL_TAU] * self.T))}

    def reaction(self, u, v, c):
        return (u.addcmul(u * u, u, value=-1.0).sub_(v).add_(c["kappa"]).mul_(c["1/T"]),
                (u - v).mul_(c["1/(tau T)"]))

    def split(self, c):
        # R_u = (u − v + κ)/T − u³/T,  R_v = (u − v)/(τT): linear but for u³
        t, r = c["1/T"], c["1/(tau T)"]
        return ReactionSplit(linear={(0, 0): t, (0, 1): -t, (1, 0): r, (1, 1): -r},
                             constant={0: c["kappa"] * t}, weight={0: -t},
                             product=lambda u, v: (u * u).mul_(u))


#: Kinetics in the order of the ``kinetics`` parameter's choices.
KINETICS_LAWS: tuple[Kinetics, ...] = (
    GrayScott("gray-scott"),
    FitzHughNagumo("fitzhugh-nagumo"),
)
