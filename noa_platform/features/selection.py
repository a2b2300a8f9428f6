"""The feature families a run uses, chosen by name from the plugin registry.

``[features] families = [...]`` in the run config names them; each name is looked up among the
specs registered through the ``noa_feature_extractors`` hook (the core's ``initial``,
``summary`` and ``temporal`` come through the same hook). A :class:`FeatureSet` computes the
chosen families of a trajectory batch in the configured order; generation stores them, the
tokenizer is fitted on them, and the MNO's L_commit / L_latent and post-training validation
compute them on rollouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from noa_platform.api import FeatureExtractorSpec
from noa_platform.errors import PluginError
from noa_platform.features.names import FAMILIES

if TYPE_CHECKING:
    from noa_platform.config import RunConfig
    from noa_platform.plugins import PluginRegistry

#: The core's families, in the order :func:`~noa_platform.features.extract_features` returns.
BUILTIN_FAMILIES = FAMILIES


@dataclass(frozen=True)
class FeatureSet:
    """Chosen feature families: ``feature_set(traj) -> {family: [B, D] or [B, T+1, D]}``.

    ``shared`` lists the core's families among them: those are computed together by
    :func:`~noa_platform.features.extract_features`, which shares one per-frame analysis
    between ``summary`` and ``temporal`` instead of repeating it per family.
    """

    specs: tuple[FeatureExtractorSpec, ...]
    owners: tuple[str, ...]
    shared: frozenset[str] = frozenset()

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(s.family for s in self.specs)

    @property
    def names(self) -> dict[str, tuple[str, ...]]:
        """Column names of every family (a fresh dict)."""
        return {s.family: tuple(s.names) for s in self.specs}

    @property
    def versions(self) -> dict[str, str]:
        """Definition version of every family (see ``FeatureExtractorSpec.version``)."""
        return {s.family: s.version for s in self.specs}

    def subset(self, families: Sequence[str]) -> FeatureSet:
        """The same specs restricted to ``families`` (in this set's order)."""
        keep = [i for i, f in enumerate(self.families) if f in set(families)]
        return FeatureSet(tuple(self.specs[i] for i in keep), tuple(self.owners[i] for i in keep),
                          self.shared & frozenset(families))

    def __call__(self, traj: torch.Tensor) -> dict[str, torch.Tensor]:
        shared: dict[str, torch.Tensor] = {}
        if len(self.shared) > 1:
            from noa_platform.features.families import extract_features

            shared = extract_features(traj)
        out: dict[str, torch.Tensor] = {}
        for spec, owner in zip(self.specs, self.owners, strict=True):
            value = shared[spec.family] if spec.family in shared else spec.extract(traj)
            out[spec.family] = _checked(spec, owner, value, traj)
        return out


def _checked(spec: FeatureExtractorSpec, owner: str, value: object,
             traj: torch.Tensor) -> torch.Tensor:
    """The family's output, or a one-line error naming the family and its plugin."""
    where = f"feature family {spec.family!r} (plugin {owner!r})"
    if not isinstance(value, torch.Tensor):
        raise PluginError(f"{where} returned a {type(value).__name__}, not a tensor")
    want = (traj.shape[0], traj.shape[1], len(spec.names)) if spec.temporal \
        else (traj.shape[0], len(spec.names))
    if tuple(value.shape) != want:
        layout = "[B, T+1, D]" if spec.temporal else "[B, D]"
        raise PluginError(f"{where} returned shape {tuple(value.shape)}, expected {layout} = "
                          f"{want} (D = len(names))")
    return value


def feature_set(families: Sequence[str] = BUILTIN_FAMILIES,
                registry: PluginRegistry | None = None) -> FeatureSet:
    """The families called ``families``, looked up in ``registry`` (default: the process's).

    An unknown name is a :class:`~noa_platform.errors.PluginError` listing the known ones.
    """
    from noa_platform.plugins import BUILTIN_NAME, get_registry

    registry = get_registry() if registry is None else registry
    if not families:
        raise PluginError("features.families: choose at least one feature family")
    specs, owners = [], []
    for family in families:
        specs.append(registry.lookup("feature_extractors", family, where="features.families"))
        owners.append(registry.owners.get(("feature_extractors", family), "?"))
    shared = frozenset(f for f, o in zip(families, owners, strict=True)
                       if o == BUILTIN_NAME and f in BUILTIN_FAMILIES)
    return FeatureSet(tuple(specs), tuple(owners), shared)


def run_feature_set(config: RunConfig, registry: PluginRegistry | None = None) -> FeatureSet:
    """The :class:`FeatureSet` of a run config's ``[features] families``."""
    return feature_set(config.features.families, registry)

