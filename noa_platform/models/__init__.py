"""Learned operators (MNO): the U-AFNO and its blocks, θ-conditioning, the latent projector.

Public entry points: :class:`UAFNO`, :class:`LatentProjector`, :func:`build_architecture`,
:func:`build_domain_architecture`,
:func:`builtin_architectures` (registered by the core's ``noa_architectures`` hook) and
:func:`count_parameters`.
"""

from noa_platform.models.afno import AFNOBlock, AFNOSpectralFilter, clamp_modes
from noa_platform.models.architectures import (
    DEFAULT_CONFIG,
    U_AFNO_KEYS,
    build_architecture,
    build_domain_architecture,
    builtin_architectures,
    count_parameters,
    make_u_afno,
)
from noa_platform.models.checks import ArchitectureConfigError
from noa_platform.models.conditioning import FiLM, ThetaEmbedding
from noa_platform.models.projector import LatentProjector
from noa_platform.models.uafno import UAFNO

__all__ = [
    "AFNOBlock",
    "AFNOSpectralFilter",
    "ArchitectureConfigError",
    "DEFAULT_CONFIG",
    "FiLM",
    "LatentProjector",
    "ThetaEmbedding",
    "UAFNO",
    "U_AFNO_KEYS",
    "build_architecture",
    "build_domain_architecture",
    "builtin_architectures",
    "clamp_modes",
    "count_parameters",
    "make_u_afno",
]
