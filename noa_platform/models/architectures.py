"""Architectures by name: the built-in ``u-afno`` spec and building any registered one.

The run config names an architecture in ``[mno.architecture] name = "..."`` (a domain's
``default_architecture`` fills in a config that names none); :func:`build_architecture` looks
the name up among the specs every plugin registered through ``noa_architectures`` (the core's
``u-afno`` included, registered through the same hook) and calls its factory with the
domain's shape plus the section's other keys.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from noa_platform.api import ArchitectureSpec, Domain

# The u-afno spec (and its name) is registered from the torch-free builtins module: listing
# plugins must not import this one. Re-exported here, where callers have always found them.
from noa_platform.builtins import U_AFNO, builtin_architectures  # noqa: F401
from noa_platform.errors import PluginError
from noa_platform.models.checks import ArchitectureConfigError
from noa_platform.models.uafno import UAFNO

if TYPE_CHECKING:
    from noa_platform.plugins import PluginRegistry

#: The shape of the domain, supplied by the caller rather than by the architecture config.
_DOMAIN_KEYWORDS = frozenset({"channels", "n_params", "resolution", "field_channels"})

#: Hyperparameters a config may set for ``u-afno`` (everything UAFNO takes beyond the domain shape).
U_AFNO_KEYS: tuple[str, ...] = tuple(
    name
    for name, p in inspect.signature(UAFNO.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _DOMAIN_KEYWORDS
)

#: Defaults of the ``u-afno`` hyperparameters (the constructor's own defaults).
DEFAULT_CONFIG: dict[str, Any] = {
    name: inspect.signature(UAFNO.__init__).parameters[name].default for name in U_AFNO_KEYS
}


def _check_keys(config: Mapping[str, Any]) -> None:
    unknown = sorted(set(config) - set(U_AFNO_KEYS))
    if unknown:
        raise ArchitectureConfigError(
            f"unknown u-afno config key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: name, {', '.join(U_AFNO_KEYS)}"
        )


def make_u_afno(
    *,
    channels: int,
    n_params: int,
    resolution: int | tuple[int, int] | None = None,
    field_channels: int = 0,
    **config: Any,
) -> UAFNO:
    """The ``u-afno`` factory: ``ArchitectureSpec.factory(**config)``.

    Unlike calling :class:`UAFNO` directly, a misspelled key is an
    :class:`ArchitectureConfigError` that names it, not a ``TypeError``.
    """
    _check_keys(config)
    return UAFNO(
        channels, n_params, resolution=resolution, field_channels=field_channels, **config
    )


def build_architecture(
    config: Mapping[str, Any],
    *,
    channels: int,
    n_params: int,
    field_channels: int = 0,
    resolution: int | tuple[int, int] | None = None,
    registry: PluginRegistry | None = None,
) -> nn.Module:
    """A model from an architecture config such as ``{"name": "u-afno", "levels": 3}``.

    ``name`` (default ``"u-afno"``) is looked up in ``registry`` (default: the process-wide
    plugin registry); an unknown name is a :class:`~noa_platform.errors.PluginError` listing
    the known ones. The other keys go to the architecture's factory, which validates them
    (``u-afno``: unknown keys and bad values raise :class:`ArchitectureConfigError`).
    ``field_channels`` is passed only when non-zero: it is a ``u-afno`` extension, not part of
    the factory contract every architecture implements.
    """
    if registry is None:
        from noa_platform.plugins import get_registry

        registry = get_registry()
    settings = dict(config)
    name = settings.pop("name", U_AFNO)
    spec: ArchitectureSpec = registry.lookup("architectures", name, where="mno.architecture.name")
    if field_channels:
        settings["field_channels"] = field_channels
    model = spec.factory(channels=channels, n_params=n_params, resolution=resolution, **settings)
    if not isinstance(model, nn.Module):
        owner = registry.owners.get(("architectures", name), "?")
        raise PluginError(
            f"architecture {name!r} (plugin {owner!r}) built a {type(model).__name__}, "
            "not a torch.nn.Module"
        )
    return model


def build_domain_architecture(
    domain: Domain,
    config: Mapping[str, Any] | None = None,
    *,
    registry: PluginRegistry | None = None,
) -> nn.Module:
    """The MNO network for ``domain`` from a run's ``[mno.architecture]`` section.

    The section is completed by the domain's ``default_architecture``
    (:meth:`~noa_platform.api.Domain.architecture_config`), so a config that names no
    architecture gets the domain's; the model is sized for the domain's channels and θ.
    """
    return build_architecture(domain.architecture_config(config),
                              channels=len(domain.channels),
                              n_params=domain.parameter_space.dim, registry=registry)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
