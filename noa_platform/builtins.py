"""The core's own contributions, registered through the same hooks as any plugin.

Registering them must not import torch: every command that discovers plugins (``noa plugins
list``, ``noa domains list``) registers them, and importing torch alone takes about a second.
So the specs built here hold names and descriptions, and their callables (an architecture's
factory, a feature family's extract function) are :class:`ImportedOnCall`: they import the
torch module that implements them when first called, i.e. when a run builds a model or
computes features.

Each hook imports what it needs when called, so a defect in one of them fails that hook's
registration with a recorded error instead of failing ``import noa_platform.builtins``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from noa_platform.api import PLUGIN_API_VERSION, ArchitectureSpec, FeatureExtractorSpec
from noa_platform.hookspecs import hookimpl

NOA_PLUGIN_API = PLUGIN_API_VERSION

#: The name of the core's architecture (the default of ``[mno.architecture] name``).
U_AFNO = "u-afno"


@dataclass(frozen=True)
class ImportedOnCall:
    """``module.attribute(*args, **kwargs)``, importing ``module`` on the first call.

    A plain module-level function would need its module imported to be referenced; this
    stands in for it in a spec until it is used. (Once imported, a module stays in
    ``sys.modules``, so later calls cost a dictionary look-up.)
    """

    module: str
    attribute: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.attribute)(*args, **kwargs)


def builtin_architectures() -> list[ArchitectureSpec]:
    """The architectures the core registers through its own ``noa_architectures`` hook."""
    return [
        ArchitectureSpec(
            name=U_AFNO,
            factory=ImportedOnCall("noa_platform.models.architectures", "make_u_afno"),
            description=(
                "θ-conditioned U-Net (circular padding, GroupNorm, FiLM) with AFNO spectral "
                "mixing at the bottleneck; residual update u_{t+1} = u_t + Δ"
            ),
        )
    ]


def builtin_extractors() -> list[FeatureExtractorSpec]:
    """The three core feature families as specs for the ``noa_feature_extractors`` hook."""
    from noa_platform.features.names import DEFINITION_VERSION, feature_names

    names = feature_names()
    table = (
        ("initial", "statistics of the initial condition, pooled over channels", False),
        ("summary", "evolution of the rollout (trends, spectra, correlations, settling)", False),
        ("temporal", "per-frame statistics [B, T+1, D], pooled over channels", True),
    )
    return [
        FeatureExtractorSpec(
            family=family,
            extract=ImportedOnCall("noa_platform.features.families", f"{family}_features"),
            names=names[family],
            temporal=temporal,
            description=description,
            version=DEFINITION_VERSION,
        )
        for family, description, temporal in table
    ]


@hookimpl
def noa_architectures() -> list[ArchitectureSpec]:
    return builtin_architectures()


@hookimpl
def noa_feature_extractors() -> list[FeatureExtractorSpec]:
    return builtin_extractors()


@hookimpl
def noa_tokenizers():
    # tokenizer.spec imports torch only when a tokenizer is fitted or loaded.
    from noa_platform.tokenizer import builtin_tokenizers

    return builtin_tokenizers()
