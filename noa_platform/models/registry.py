"""Building architectures from configs and the built-in :class:`ArchitectureSpec` list."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from noa_platform.api import ArchitectureSpec
from noa_platform.models.uafno import UAFNO
from noa_platform.models.validation import ArchitectureConfigError

U_AFNO = "u-afno"

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
) -> nn.Module:
    """A model from an architecture config such as ``{"name": "u-afno", "levels": 3}``.

    ``name`` defaults to ``"u-afno"``; missing keys take :data:`DEFAULT_CONFIG`. Unknown keys,
    unknown names and bad values raise :class:`ArchitectureConfigError` (a ``ValueError``).
    Architectures contributed by plugins are built by the core's registry, not here.
    """
    config = dict(config)
    name = config.pop("name", U_AFNO)
    if name != U_AFNO:
        raise ArchitectureConfigError(
            f"unknown architecture {name!r}; built-in architectures: {U_AFNO!r}"
        )
    return make_u_afno(
        channels=channels, n_params=n_params, field_channels=field_channels,
        resolution=resolution, **config,
    )


def builtin_architectures() -> list[ArchitectureSpec]:
    """The architectures the core registers through its own ``noa_architectures`` hook."""
    return [
        ArchitectureSpec(
            name=U_AFNO,
            factory=make_u_afno,
            description=(
                "θ-conditioned U-Net (circular padding, GroupNorm, FiLM) with AFNO spectral "
                "mixing at the bottleneck; residual update u_{t+1} = u_t + Δ"
            ),
        )
    ]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
