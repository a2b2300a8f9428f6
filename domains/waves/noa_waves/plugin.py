"""Entry point of the waves plugin (group ``noa_platform``): the domain and its architecture.

Nothing here imports torch: the architecture's module is imported by its factory.
"""

from __future__ import annotations

import pluggy

from noa_platform.api import ArchitectureSpec
from noa_waves.domain import Waves

#: The plugin contract version this plugin targets (see ``noa_platform.api.PLUGIN_API_VERSION``).
NOA_PLUGIN_API = 2

hookimpl = pluggy.HookimplMarker("noa_platform")


def make_wave_leapfrog(**config):
    """The ``wave-leapfrog`` factory (see :mod:`noa_waves.architecture`)."""
    from noa_waves.architecture import make_wave_leapfrog as factory

    return factory(**config)


@hookimpl
def noa_domains() -> list[Waves]:
    return [Waves()]


@hookimpl
def noa_architectures() -> list[ArchitectureSpec]:
    return [ArchitectureSpec(
        name="wave-leapfrog",
        factory=make_wave_leapfrog,
        description=("kick–drift–kick operator for (u, u_t): learned θ-conditioned spectral "
                     "force of u kicks u_t, u drifts with u_t; every sub-step is a shear, so "
                     "the map preserves phase-space volume (no learned dissipation) except a "
                     "θ-conditioned damping factor"),
    )]
