"""Hook specifications of the ``noa_platform`` plugin system.

A plugin is a module exposed under the entry-point group ``noa_platform``. It declares the
contract version it targets as ``NOA_PLUGIN_API`` (see
:data:`noa_platform.api.PLUGIN_API_VERSION`) and implements any of the hooks below with
``@hookimpl``. Every hook takes no argument and returns a list; the platform concatenates the
lists of all loaded plugins. The core's own built-ins (U-AFNO, the feature families, the VQ-VAE
tokenizer) come through the same hooks from :mod:`noa_platform.builtins`.

Every hook feeds something a run can choose by name: ``noa train DOMAIN`` picks the domain,
``[mno.architecture] name`` the architecture, ``[features] families`` the feature families and
``[tokenizer] name`` the tokenizer; an unknown name is an error listing the registered ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from noa_platform.api import ArchitectureSpec, Domain, FeatureExtractorSpec, TokenizerSpec

PROJECT = "noa_platform"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def noa_domains() -> list[Domain]:
    """Domains this plugin provides; each name must be unique across all plugins."""


@hookspec
def noa_architectures() -> list[ArchitectureSpec]:
    """Learned-operator architectures (MNO), chosen by ``[mno.architecture] name``."""


@hookspec
def noa_feature_extractors() -> list[FeatureExtractorSpec]:
    """Feature families (the core's: initial, summary, temporal), chosen by ``[features]
    families``."""


@hookspec
def noa_tokenizers() -> list[TokenizerSpec]:
    """Tokenizer families (the core's: vqvae), chosen by ``[tokenizer] name``."""
