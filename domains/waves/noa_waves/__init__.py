"""Waves domain plugin for noa-platform: ``u_tt = ∇·(c(x)² ∇u) − γ u_t`` on a periodic square.

Importing this package does not import torch (``noa domains list`` stays fast): the solver,
the initial conditions' field generators and the architecture load torch when first used.
"""

from noa_waves.domain import Waves

__all__ = ["Waves"]
