"""The registry of trained artifacts (datasets, tokenizers, MNOs, evaluations, alignments,
transfers): a SQLite index plus content-addressed files, at ``./registry`` unless
``--registry PATH`` or ``NOA_REGISTRY`` says otherwise. See ``docs/registry.md``."""

from noa_platform.registry.entry import KINDS, RegistryEntry
from noa_platform.registry.registry import Registry, open_registry, registry_path

__all__ = ["KINDS", "Registry", "RegistryEntry", "open_registry", "registry_path"]
