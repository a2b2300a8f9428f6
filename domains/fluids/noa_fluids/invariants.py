"""Energy and enstrophy of a vorticity field (torch imported inside the functions).

``E = ½ ⟨|u|²⟩`` and ``Z = ½ ⟨ω²⟩``, ``⟨·⟩`` the mean over the box, computed in float64. Both
are conserved by the Galerkin-truncated (2/3-dealiased) Euler equations, i.e. at
``ν = α = A = 0``; viscosity and drag dissipate them and the forcing feeds them.
"""

from __future__ import annotations

from typing import Any

from noa_platform.api import Grid, Invariant


def energy(frames: Any, grid: Grid, theta: Any = None) -> Any:
    """``½ ⟨u² + v²⟩`` of vorticity frames ``[..., 1, H, W]`` -> ``[...]`` float64."""
    import torch

    from noa_fluids.solver import velocity

    w = frames[..., 0, :, :].to(dtype=torch.float64)
    u, v = velocity(w, grid)
    return 0.5 * (u * u + v * v).mean(dim=(-2, -1))


def enstrophy(frames: Any, grid: Grid, theta: Any = None) -> Any:
    """``½ ⟨ω²⟩`` of vorticity frames ``[..., 1, H, W]`` -> ``[...]`` float64."""
    import torch

    w = frames[..., 0, :, :].to(dtype=torch.float64)
    return 0.5 * (w * w).mean(dim=(-2, -1))


#: Where the equations conserve both: the inviscid, undamped, unforced limit.
#: The kit's tolerances are for the default, CFL-limited step over the quick horizon at 16²
#: (measured worst drift 1.2e-5 energy, 1.1e-4 enstrophy: at the step the CFL bound allows,
#: ETDRK4 slightly damps the fastest-rotating modes, where inviscid truncated flow piles its
#: enstrophy). With a small internal step both hold to 1e-8 (tests/test_fluids_solver.py).
INVISCID = {"nu": 0.0, "alpha": 0.0, "forcing": 0.0}

INVARIANTS = {
    "energy": Invariant("energy", energy, conserved=True, conserved_under=INVISCID, rtol=5e-5,
                        description="kinetic energy ½⟨|u|²⟩; conserved when ν = α = A = 0"),
    "enstrophy": Invariant("enstrophy", enstrophy, conserved=True, conserved_under=INVISCID,
                           rtol=5e-4,
                           description="enstrophy ½⟨ω²⟩; conserved when ν = α = A = 0"),
}
