"""Fitting a tokenizer: normalization, category discovery, then Adam on the VQ-VAE loss.

Schedule of a fit of ``steps`` optimizer steps:

1. ``autoencoder_warmup * steps`` steps train encoders and decoders without quantization, so
   the latents mean something before codebooks are placed on them;
2. every codebook is initialised by k-means (k-means++ seeding, Lloyd) on the latents of the
   whole training set, level by level (level ``r`` on the residuals left by levels ``< r``);
3. the remaining steps minimise ``Σ_categories MSE(decoded, target) + β ||z - sg(q)||²``; after
   each step every EMA codebook takes one EMA step on its batch, and until
   ``restart_until * steps`` its dead codes are re-seeded on random current latents. Restarts
   stop before the end so the last codes placed have time to settle.

The learning rate decays on a cosine to 10 % of ``lr``. Every random choice (weights,
minibatch order, k-means, restarts) derives from the fit's seed, and the global RNG state of
the caller is left as it was, so two fits with the same seed and inputs give the same bits on
CPU.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from noa_platform.errors import DataError
from noa_platform.tokenizer.categories import Category, discover_categories
from noa_platform.tokenizer.checks import check_features, check_fit_inputs
from noa_platform.tokenizer.config import TokenizerConfig, effective_codebook_size, fsq_levels_for
from noa_platform.tokenizer.normalization import Normalizer
from noa_platform.tokenizer.quantizers import EMAVectorQuantizer
from noa_platform.tokenizer.vqvae import Tokenizer

#: Fewest training trajectories a fit accepts: below this no statistic or codebook is meaningful.
MIN_TRAIN = 8


def as_config(config: TokenizerConfig | Mapping[str, Any] | None) -> TokenizerConfig:
    """A validated config from a model, a dict (unknown keys are errors) or None (defaults)."""
    if config is None:
        return TokenizerConfig()
    if isinstance(config, TokenizerConfig):
        return config
    return TokenizerConfig.model_validate(dict(config))


def build_categories(
    data: Mapping[str, torch.Tensor],
    names: Mapping[str, tuple[str, ...]],
    config: TokenizerConfig,
) -> tuple[list[Category], dict[str, Any]]:
    """Categories of every family (normalized data), in family order; plus the discovery record."""
    categories: list[Category] = []
    record: dict[str, Any] = {}
    for family, cols in names.items():
        x = data[family]
        if x.ndim == 3:
            categories.append(Category(family, 0, tuple(range(len(cols))), cols, temporal=True))
            record[family] = {"k": 1, "temporal": True}
            continue
        groups, record[family] = discover_categories(
            x.numpy(), min_size=config.min_category_size, max_categories=config.max_categories
        )
        for i, group in enumerate(groups):
            categories.append(Category(family, i, tuple(group), tuple(cols[j] for j in group)))
    return categories, record


def fit_tokenizer(
    features: Mapping[str, torch.Tensor],
    names: Mapping[str, Sequence[str]],
    config: TokenizerConfig | Mapping[str, Any] | None = None,
    *,
    val_features: Mapping[str, torch.Tensor] | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> Tokenizer:
    """Fit a VQ-VAE tokenizer on ``features`` (family -> raw ``[N, D]`` or ``[N, T+1, D]``).

    ``names`` gives each family's column names (saved; later inputs are checked against them).
    ``seed`` overrides ``config.seed``. ``val_features`` (same families) are only evaluated at
    the end, into ``tokenizer.fit_summary["val"]``. Training runs on the CPU: the networks are
    small and CPU runs are bit-reproducible; move the result with ``.to(device)``.
    """
    from noa_platform.tokenizer.metrics import report

    config = as_config(config)
    seed = config.seed if seed is None else int(seed)
    xs, names = check_fit_inputs(features, names)
    n = next(iter(xs.values())).shape[0]
    if n < MIN_TRAIN:
        raise DataError(f"a tokenizer needs at least {MIN_TRAIN} training trajectories, got {n}")
    temporal = {f: x.ndim == 3 for f, x in xs.items()}
    expected = {f: (names[f], temporal[f]) for f in names}
    val = check_features(val_features, expected) if val_features is not None else None

    with torch.random.fork_rng(devices=[]), _single_thread():
        torch.manual_seed(seed)
        normalizer = Normalizer.fit(xs, config.normalization)
        data = {f: normalizer.apply(f, x.detach().to("cpu", torch.float32)) for f, x in xs.items()}
        categories, discovery = build_categories(data, names, config)
        size = effective_codebook_size(n, config)
        fsq_levels = None
        if config.quantizer == "fsq":
            fsq_levels = list(config.fsq_levels) if config.fsq_levels else fsq_levels_for(size)
            size = math.prod(fsq_levels)
        tokenizer = Tokenizer(
            config,
            names=names,
            temporal=temporal,
            categories=categories,
            normalizer=normalizer,
            codebook_size=size,
            fsq_levels=fsq_levels,
            seed=seed,
            discovery=discovery,
        )
        history = train(tokenizer, data, config, seed=seed, progress=progress)
        tokenizer.freeze()
        summary: dict[str, Any] = {"n_train": n, "steps": config.steps, **history}
        summary["train"] = _headline(report(tokenizer, xs))
        if val is not None:
            summary["n_val"] = next(iter(val.values())).shape[0]
            summary["val"] = _headline(report(tokenizer, val))
    tokenizer.fit_summary = summary
    return tokenizer


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run the fit on one intra-op thread, restoring the caller's setting afterwards.

    The fit's tensors are tiny (a 64 x 64 matmul): with several threads, synchronisation costs
    more than the arithmetic (100x slower on a busy 2-core machine), and one thread also makes
    the result independent of the core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _headline(rep: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("reconstruction_mse", "min_utilization", "min_perplexity_ratio", "token_entropy_bits")
    return {k: rep[k] for k in keys} | {
        "category_mse": {c["name"]: c["mse"] for c in rep["categories"]}
    }


def _kmeans_init(tokenizer: Tokenizer, data: Mapping[str, torch.Tensor]) -> None:
    """Initialise every EMA codebook on the whole training set's latents, level by level."""
    with torch.no_grad():
        for codec in tokenizer.codecs:
            residual = codec.encode(data[codec.category.family])
            for level in codec.quantizer.levels:
                if isinstance(level, EMAVectorQuantizer):
                    level.kmeans_init(residual)
                residual = residual - level.quantize(residual)[0]


def train(
    tokenizer: Tokenizer,
    data: Mapping[str, torch.Tensor],
    config: TokenizerConfig,
    *,
    seed: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the optimisation on normalized training data; returns a small training history."""
    n = next(iter(data.values())).shape[0]
    batch = min(config.batch_size, n)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(
        tokenizer.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps = config.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.1 + 0.45 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    # At least one quantized step, so every codebook is initialised whatever the fractions.
    warmup = min(int(round(config.autoencoder_warmup * steps)), steps - 1)
    restart_end = int(round(config.restart_until * steps))
    ema = config.quantizer == "ema"
    order, pos = torch.randperm(n, generator=generator), 0
    restarts, last_loss, last_recon = 0, float("nan"), float("nan")

    tokenizer.train()
    bar = tqdm(total=steps, desc="tokenizer", disable=not progress, file=sys.stderr, leave=False)
    for step in range(steps):
        if step == warmup:
            _kmeans_init(tokenizer, data)
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=generator), 0
        idx = order[pos : pos + batch]
        pos += batch

        recon_loss = torch.zeros(())
        commit_loss = torch.zeros(())
        updates = []
        for codec in tokenizer.codecs:
            x = data[codec.category.family][idx]
            z = codec.encode(x)
            target = codec.target(x)
            if step < warmup:
                recon_loss = recon_loss + F.mse_loss(codec.decoder(z), target)
                continue
            out = codec.quantizer(z)
            recon_loss = recon_loss + F.mse_loss(codec.decoder(out.quantized), target)
            # EMA: the codebook follows by EMA, only z is pulled (stop-gradient on q). FSQ: both
            # sides learn, so the levels' projections come to represent z itself.
            q = out.quantized.detach() if ema else out.quantized
            commit_loss = commit_loss + ((z - q) ** 2).mean()
            updates.append((codec, out))
        loss = recon_loss + config.commitment_beta * commit_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()

        if ema:
            for codec, out in updates:
                for r, level in enumerate(codec.quantizer.levels):
                    level.ema_update(out.residuals[r], out.indices[:, r])
                    if step < restart_end:
                        restarts += level.restart_dead(out.residuals[r])
        last_loss, last_recon = (
            float(loss.detach()),
            float(recon_loss.detach()) / len(tokenizer.codecs),
        )
        if progress and (step % 25 == 0 or step == steps - 1):
            bar.set_postfix(loss=f"{last_loss:.4f}", recon=f"{last_recon:.4f}")
        bar.update(1)
    bar.close()
    tokenizer.eval()
    return {"final_loss": last_loss, "final_recon_mse": last_recon, "dead_code_restarts": restarts}
