"""The tokenizer family the core registers through the ``noa_tokenizers`` hook.

A :class:`~noa_platform.api.TokenizerSpec`'s ``factory(**config)`` builds an untrained
tokenizer. A VQ-VAE cannot be built before it has seen data (its categories, normalization and
codebook sizes come from the data), so the untrained form is :class:`UnfittedTokenizer`: a
validated config whose :meth:`~UnfittedTokenizer.fit` returns the fitted
:class:`~noa_platform.tokenizer.vqvae.Tokenizer`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pydantic import ValidationError

from noa_platform.api import TokenizerSpec
from noa_platform.errors import ConfigError
from noa_platform.tokenizer.config import TokenizerConfig
from noa_platform.tokenizer.vqvae import Tokenizer


class UnfittedTokenizer:
    """A VQ-VAE tokenizer before :meth:`fit`: its config, validated."""

    kind = "vqvae"

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
        return Tokenizer.fit(
            features, names, self.config, val_features=val_features, seed=seed, progress=progress
        )

    @staticmethod
    def load(directory: str | os.PathLike[str]) -> Tokenizer:
        return Tokenizer.load(directory)


def builtin_tokenizers() -> list[TokenizerSpec]:
    """The core's tokenizers: ``vqvae``."""
    return [
        TokenizerSpec(
            name="vqvae",
            factory=UnfittedTokenizer,
            description="VQ-VAE over discovered feature categories: EMA codebooks with k-means "
            "init and dead-code restart (or FSQ), residual levels",
        )
    ]
