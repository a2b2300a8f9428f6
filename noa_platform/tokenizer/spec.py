"""The tokenizer family the core registers through the ``noa_tokenizers`` hook.

A :class:`~noa_platform.api.TokenizerSpec`'s ``factory(**settings)`` builds an untrained
tokenizer; the run config chooses the family with ``[tokenizer] name`` and its other keys are
the settings. A VQ-VAE cannot be built before it has seen data (its categories, normalization
and codebook sizes come from the data), so the untrained form is :class:`UnfittedTokenizer`: a
validated config whose :meth:`~UnfittedTokenizer.fit` returns the fitted
:class:`~noa_platform.tokenizer.vqvae.Tokenizer` and whose :meth:`~UnfittedTokenizer.load`
reads one back.

What the platform asks of an untrained tokenizer of any family (the VQ-VAE's signatures):
``fit(features, names, *, val_features=None, progress=True) -> fitted`` and
``load(directory) -> fitted``; of a fitted one: ``save(directory)``, ``tokenize(features)``,
``commitment_loss(features)``, ``latent_vector(features)``, ``codebook_names``,
``latent_dim_total`` and ``.to(device)``.

This module imports torch only when a tokenizer is fitted or loaded, so registering the
built-ins stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from noa_platform.errors import ConfigError
from noa_platform.tokenizer.config import TokenizerConfig

if TYPE_CHECKING:
    import torch

    from noa_platform.api import TokenizerSpec
    from noa_platform.tokenizer.vqvae import Tokenizer

#: The name of the core's tokenizer family.
VQVAE = "vqvae"


class UnfittedTokenizer:
    """A VQ-VAE tokenizer before :meth:`fit`: its config, validated."""

    kind = VQVAE

    def __init__(self, **config: Any) -> None:
        try:
            self.config = TokenizerConfig.model_validate(config)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "tokenizer"
            raise ConfigError(f"tokenizer config: {where}: {first['msg']}") from None

    def fit(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]],
        *,
        val_features: Mapping[str, torch.Tensor] | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> Tokenizer:
        """:func:`~noa_platform.tokenizer.training.fit_tokenizer` with this config."""
        from noa_platform.tokenizer.training import fit_tokenizer

        return fit_tokenizer(
            features, names, self.config, val_features=val_features, seed=seed, progress=progress
        )

    @staticmethod
    def load(directory: str | os.PathLike[str]) -> Tokenizer:
        from noa_platform.tokenizer.vqvae import Tokenizer

        return Tokenizer.load(directory)


def builtin_tokenizers() -> list[TokenizerSpec]:
    """The core's tokenizers: ``vqvae``."""
    from noa_platform.api import TokenizerSpec

    return [
        TokenizerSpec(
            name=VQVAE,
            factory=UnfittedTokenizer,
            description="VQ-VAE over discovered feature categories: EMA codebooks with k-means "
            "init and dead-code restart (or FSQ), residual levels",
        )
    ]
