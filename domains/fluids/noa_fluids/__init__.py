"""2-D incompressible Navier–Stokes (vorticity form) domain plugin for noa-platform.

Importing the package does not import torch: the solver, the initial conditions and the
invariants load it when first used.
"""

from noa_fluids.domain import Fluids

__all__ = ["Fluids"]
