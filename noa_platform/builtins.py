"""The core's own contributions, registered through the same hooks as any plugin.

Each hook imports its module when called, so a defect in one of them fails that hook's
registration with a recorded error instead of failing ``import noa_platform.builtins``.
"""

from __future__ import annotations

from noa_platform.api import PLUGIN_API_VERSION
from noa_platform.hookspecs import hookimpl

NOA_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def noa_architectures():
    from noa_platform.models import builtin_architectures

    return builtin_architectures()


@hookimpl
def noa_feature_extractors():
    from noa_platform.features import builtin_extractors

    return builtin_extractors()


@hookimpl
def noa_tokenizers():
    from noa_platform.tokenizer import builtin_tokenizers

    return builtin_tokenizers()
