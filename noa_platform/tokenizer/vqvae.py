"""The VQ-VAE tokenizer: features of a trajectory -> one token per codebook, and back.

Layout of a fitted tokenizer
----------------------------
* Families: the ``[N, D]`` (static) and ``[N, T+1, D]`` (temporal) feature families it was
  fitted on, in the order of the ``names`` given to
  :func:`~noa_platform.tokenizer.training.fit_tokenizer`.
* Categories: each static family is split into categories of correlated columns
  (:mod:`.categories`); each temporal family is one category. Category ``c`` of family ``f`` is
  named ``"f.c<c>"``; categories are ordered family by family, then by index.
* Codebooks: each category has ``residual_levels`` codebooks; codebook ``r`` of category
  ``"f.c<c>"`` is named ``"f.c<c>.r<r>"``. Column ``j`` of :meth:`tokenize`'s output is codebook
  ``codebook_names[j]``: categories in order, residual levels within a category.
* Latents: each category has a ``latent_dim`` vector; :meth:`latent_vector` concatenates them in
  category order (``latent_dim_total`` columns).

Saved as ``weights.safetensors`` (parameters and codebook buffers) and ``tokenizer.json``
(config, normalization statistics, categories, names, codebook sizes, version, fit summary).
Nothing is pickled.

This module holds the fitted model only; fitting it is :mod:`.training`, which imports this
module (never the other way round).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from noa_platform.atomic import atomic_write_bytes, atomic_write_json
from noa_platform.errors import DataError
from noa_platform.tokenizer.categories import Category
from noa_platform.tokenizer.checks import check_features
from noa_platform.tokenizer.config import TokenizerConfig
from noa_platform.tokenizer.networks import TemporalDecoder, TemporalEncoder, mlp, resample_time
from noa_platform.tokenizer.normalization import Normalizer
from noa_platform.tokenizer.quantizers import (
    FSQ,
    EMAVectorQuantizer,
    QuantizerOutput,
    ResidualQuantizer,
)

#: Format version of a saved tokenizer; bumped when the layout of the files changes.
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "tokenizer.json"


class CategoryCodec(nn.Module):
    """Encoder, residual quantizer and decoder of one category."""

    def __init__(
        self,
        category: Category,
        config: TokenizerConfig,
        *,
        codebook_size: int,
        fsq_levels: list[int] | None,
        seed: int,
    ) -> None:
        super().__init__()
        self.category = category
        self.points = config.temporal_points
        d = len(category.columns)
        if category.temporal:
            self.encoder: nn.Module = TemporalEncoder(d, config.hidden, config.latent_dim)
            self.decoder: nn.Module = TemporalDecoder(
                config.latent_dim, config.hidden, d, config.temporal_points
            )
        else:
            self.encoder = mlp(d, config.hidden, config.latent_dim)
            self.decoder = mlp(config.latent_dim, config.hidden, d)
        levels: list[nn.Module] = []
        for r in range(config.residual_levels):
            if config.quantizer == "ema":
                levels.append(
                    EMAVectorQuantizer(
                        config.latent_dim,
                        codebook_size,
                        decay=config.ema_decay,
                        epsilon=config.ema_epsilon,
                        dead_threshold=config.dead_code_threshold,
                        kmeans_iters=config.kmeans_iters,
                        # Distinct streams per codebook, all derived from the fit's seed.
                        seed=seed * 1_000_003
                        + r * 7919
                        + category.index * 104_729
                        + sum(map(ord, category.family)),
                    )
                )
            else:
                assert fsq_levels is not None
                levels.append(FSQ(config.latent_dim, fsq_levels))
        self.quantizer = ResidualQuantizer(levels)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The category's input from its family's normalized tensor."""
        if self.category.temporal:
            return x
        cols = self.category.columns
        if list(cols) == list(range(x.shape[-1])):
            return x
        return x[:, list(cols)]

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder must reproduce: the columns, or the time profile (temporal)."""
        xc = self.select(x)
        return resample_time(xc, self.points) if self.category.temporal else xc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.select(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor]:
        """Normalized family tensor -> (latent ``[N, latent_dim]``, quantizer output, decoded)."""
        z = self.encode(x)
        out = self.quantizer(z)
        return z, out, self.decoder(out.quantized)


class Tokenizer(nn.Module):
    """A fitted VQ-VAE tokenizer. Build it with :meth:`fit` or :meth:`load`.

    All methods taking ``features`` accept a dict ``family -> tensor`` (raw, unnormalized
    features as the feature extractors produce them: static ``[N, D]``, temporal ``[N, T+1, D]``
    with any ``T >= 0``), optionally with ``names`` (family -> column names) to check the columns
    against the ones the tokenizer was fitted on. Invalid input raises
    :class:`~noa_platform.errors.DataError` with a one-line message.
    """

    def __init__(
        self,
        config: TokenizerConfig,
        *,
        names: Mapping[str, Sequence[str]],
        temporal: Mapping[str, bool],
        categories: Sequence[Category],
        normalizer: Normalizer,
        codebook_size: int,
        fsq_levels: list[int] | None = None,
        seed: int = 0,
        discovery: Mapping[str, Any] | None = None,
        fit_summary: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.names = {f: tuple(cols) for f, cols in names.items()}
        self.temporal = {f: bool(temporal[f]) for f in self.names}
        self.categories = list(categories)
        self.normalizer = normalizer
        self.codebook_size = int(codebook_size)
        self.fsq_levels = list(fsq_levels) if fsq_levels is not None else None
        self.seed = seed
        self.discovery = dict(discovery or {})
        self.fit_summary = dict(fit_summary or {})
        self.codecs = nn.ModuleList(
            CategoryCodec(c, config, codebook_size=codebook_size, fsq_levels=fsq_levels, seed=seed)
            for c in self.categories
        )

    # --- description ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def codebook_names(self) -> list[str]:
        """Name of each column of :meth:`tokenize`'s output: ``"family.c<c>.r<r>"``."""
        return [
            f"{c.name}.r{r}" for c in self.categories for r in range(self.config.residual_levels)
        ]

    @property
    def codebook_sizes(self) -> list[int]:
        """Number of codes of each codebook, in :attr:`codebook_names` order."""
        return [s for codec in self.codecs for s in codec.quantizer.sizes]

    @property
    def n_codebooks(self) -> int:
        return len(self.categories) * self.config.residual_levels

    @property
    def latent_dims(self) -> list[int]:
        return [self.config.latent_dim] * len(self.categories)

    @property
    def latent_dim_total(self) -> int:
        """Columns of :meth:`latent_vector`: the sum of the categories' latent sizes."""
        return sum(self.latent_dims)

    @property
    def expected(self) -> dict[str, tuple[tuple[str, ...], bool]]:
        return {f: (cols, self.temporal[f]) for f, cols in self.names.items()}

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (everything in ``tokenizer.json`` but the statistics)."""
        return {
            "kind": "vqvae",
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(),
            "families": {
                f: {"names": list(cols), "temporal": self.temporal[f]}
                for f, cols in self.names.items()
            },
            "categories": [c.to_json() for c in self.categories],
            "codebook_names": self.codebook_names,
            "codebook_sizes": self.codebook_sizes,
            "codebook_size": self.codebook_size,
            "fsq_levels": self.fsq_levels,
            "latent_dim_total": self.latent_dim_total,
            "seed": self.seed,
            "discovery": self.discovery,
            "fit_summary": self.fit_summary,
        }

    # --- feature handling -------------------------------------------------------------------

    def normalize(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
        *,
        check: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Validate and normalize raw features; returns family -> normalized float tensor."""
        checked = check_features(features, self.expected, names, finite=check)
        device = self.device
        dtype = next(self.parameters()).dtype
        return {
            f: self.normalizer.apply(f, x.to(device=device, dtype=dtype))
            for f, x in checked.items()
        }

    def denormalize(self, family: str, x: torch.Tensor) -> torch.Tensor:
        return self.normalizer.invert(family, x)

    # --- encoding ---------------------------------------------------------------------------

    def encode(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
        *,
        check: bool = True,
    ) -> list[torch.Tensor]:
        """Pre-quantization latents, one ``[N, latent_dim]`` per category (category order).

        Differentiable w.r.t. the features (this is what ``L_latent`` aligns the MNO with).
        ``check=False`` skips the NaN/Inf scan but not the shape and name checks.
        """
        xs = self.normalize(features, names, check=check)
        return [codec.encode(xs[codec.category.family]) for codec in self.codecs]

    def latent_vector(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
        *,
        check: bool = True,
    ) -> torch.Tensor:
        """``[N, latent_dim_total]``: the categories' latents concatenated in category order."""
        return torch.cat(self.encode(features, names, check=check), dim=1)

    def commitment_loss(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
        *,
        check: bool = True,
    ) -> torch.Tensor:
        """Scalar ``mean ||z - sg(q)||^2`` over samples, latent dims and categories.

        ``q`` is the full residual quantization of ``z`` (the sum of all levels' codes), so the
        loss is how far the features' latents are from something the codebooks represent
        exactly. Differentiable w.r.t. the features: with the tokenizer frozen, the MNO's
        training backpropagates it through the (differentiable) features into its rollouts.
        """
        losses = [
            ((z - codec.quantizer(z).quantized.detach()) ** 2).mean()
            for codec, z in zip(self.codecs, self.encode(features, names, check=check), strict=True)
        ]
        return torch.stack(losses).mean()

    @torch.no_grad()
    def tokenize(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> torch.Tensor:
        """``LongTensor [N, n_codebooks]``: one code index per codebook (:attr:`codebook_names`)."""
        return torch.cat(
            [
                self.codecs[i].quantizer(z).indices
                for i, z in enumerate(self.encode(features, names))
            ],
            dim=1,
        )

    # --- decoding ---------------------------------------------------------------------------

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.as_tensor(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.n_codebooks:
            raise DataError(
                f"tokens must be [N, {self.n_codebooks}] (one per codebook), "
                f"got shape {list(tokens.shape)}"
            )
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise DataError(f"tokens must be integers, got {tokens.dtype}")
        sizes = torch.tensor(self.codebook_sizes, device=tokens.device)
        bad = (tokens < 0) | (tokens >= sizes)
        if bool(bad.any()):
            j = int(torch.nonzero(bad.any(0)).flatten()[0])
            raise DataError(
                f"token out of range for codebook {self.codebook_names[j]!r} "
                f"(size {self.codebook_sizes[j]}): {int(tokens[bad[:, j], j][0])}"
            )
        return tokens.long().to(self.device)

    def decode_latents(self, latents: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-category (quantized) latents -> normalized decoded features per family.

        Static families: ``[N, D]``. Temporal families: the time profile ``[N, P, D]``.
        """
        parts: dict[str, dict[int, torch.Tensor]] = {}
        for codec, z in zip(self.codecs, latents, strict=True):
            parts.setdefault(codec.category.family, {})[codec.category.index] = codec.decoder(z)
        out = {}
        for family in self.names:
            cats = [c for c in self.categories if c.family == family]
            if self.temporal[family]:
                out[family] = parts[family][cats[0].index]
                continue
            n = next(iter(parts[family].values())).shape[0]
            full = torch.empty(n, len(self.names[family]), device=self.device)
            for c in cats:
                full[:, list(c.columns)] = parts[family][c.index]
            out[family] = full
        return out

    def decode(
        self, tokens: torch.Tensor, *, normalized: bool = False, n_frames: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``tokens [N, n_codebooks]`` -> decoded features per family.

        ``normalized=False`` (default) returns raw feature units, ``True`` the normalized
        features the reconstruction error is measured on. A temporal family comes back as its
        time profile ``[N, temporal_points, D]`` or, with ``n_frames=T``, interpolated to
        ``[N, T+1, D]`` frames.
        """
        tokens = self._check_tokens(tokens)
        levels = self.config.residual_levels
        with torch.no_grad():
            latents = [
                codec.quantizer.lookup(tokens[:, i * levels : (i + 1) * levels])
                for i, codec in enumerate(self.codecs)
            ]
            out = self.decode_latents(latents)
            for family in list(out):
                if self.temporal[family] and n_frames is not None:
                    out[family] = resample_time(out[family], n_frames + 1)
                if not normalized:
                    out[family] = self.normalizer.invert(family, out[family])
        return out

    def reconstruct(
        self,
        features: Mapping[str, torch.Tensor],
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per category: ``(decoded, target)`` on normalized features, through the quantizer.

        ``target`` is the category's columns ``[N, d]`` or, for a temporal category, the time
        profile ``[N, P, D]`` of its features: what the reconstruction error is measured on.
        """
        xs = self.normalize(features, names)
        out = []
        with torch.no_grad():
            for codec in self.codecs:
                x = xs[codec.category.family]
                out.append((codec(x)[2], codec.target(x)))
        return out

    def freeze(self) -> Tokenizer:
        """Evaluation mode, no parameter gradients: how the MNO's training uses a tokenizer."""
        self.eval()
        self.requires_grad_(False)
        return self

    # --- persistence ------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``weights.safetensors`` and ``tokenizer.json`` into ``directory``.

        Each file is written atomically (:mod:`noa_platform.atomic`), so an interrupted save
        never leaves a half-written file under the final name.
        """
        path = Path(directory)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        # Serialized here and written by Python, so that a failed write (no space, permission)
        # is the OSError naming the file rather than safetensors' own error.
        atomic_write_bytes(path / WEIGHTS_FILE,
                           save(tensors, metadata={"format_version": str(FORMAT_VERSION)}))
        meta = {**self.describe(), "normalization": self.normalizer.to_json()}
        atomic_write_json(path / META_FILE, meta, indent=2, sort_keys=False)
        return path

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
    ) -> Tokenizer:
        """Load a tokenizer written by :meth:`save` (frozen, evaluation mode)."""
        path = Path(directory)
        meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
        for p in (meta_path, weights_path):
            if not p.is_file():
                raise DataError(f"not a saved tokenizer: {p} is missing")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {meta_path}: {exc}") from None
        if meta.get("kind") != "vqvae":
            raise DataError(f"{meta_path} is not a vqvae tokenizer (kind {meta.get('kind')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{meta_path} has format version {meta.get('format_version')}, "
                f"this platform reads version {FORMAT_VERSION}"
            )
        try:
            tokenizer = cls(
                TokenizerConfig.model_validate(meta["config"]),
                names={f: tuple(v["names"]) for f, v in meta["families"].items()},
                temporal={f: bool(v["temporal"]) for f, v in meta["families"].items()},
                categories=[Category.from_json(c) for c in meta["categories"]],
                normalizer=Normalizer.from_json(meta["normalization"]),
                codebook_size=meta["codebook_size"],
                fsq_levels=meta["fsq_levels"],
                seed=meta["seed"],
                discovery=meta.get("discovery"),
                fit_summary=meta.get("fit_summary"),
            )
        # AttributeError: a field of the wrong JSON type (a list where a table belongs).
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{meta_path} is inconsistent: {_first_line(exc)}") from None
        try:
            state = load_file(str(weights_path))
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise DataError(f"cannot read {weights_path}: {_first_line(exc)}") from None
        try:
            tokenizer.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise DataError(
                f"{weights_path} does not match {meta_path}: {_first_line(exc)}"
            ) from None
        return tokenizer.to(map_location).freeze()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
