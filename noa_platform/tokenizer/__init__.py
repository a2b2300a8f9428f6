"""The VQ-VAE tokenizer: trajectory features -> discrete tokens (one per codebook) and back.

Usage::

    tok = fit_tokenizer(features, names, TokenizerConfig(), val_features=val, seed=0)
    tokens = tok.tokenize(features)            # LongTensor [N, n_codebooks]
    decoded = tok.decode(tokens)               # family -> raw features (temporal: time profile)
    loss = tok.freeze().commitment_loss(mno_features)   # differentiable w.r.t. the features
    tok.save("dir"); Tokenizer.load("dir")     # safetensors + JSON, no pickle
    rep = report(tok, features); plot_report(rep, "tokenizer.png")

Design decisions (each explained where it is implemented):

* Normalization (:mod:`.normalization`): per column, mean/std by default (``robust``:
  median/IQR), temporal families over ``(N, T+1)``; constant columns scale by their magnitude.
  Reconstruction errors are MSEs on normalized features, so 0.10 = 10 % of the variance lost.
* Categories (:mod:`.categories`): each static family clustered on its own by average-linkage
  clustering of ``1 - |corr|``, ``k`` by silhouette, tiny clusters merged; each temporal family
  is one category.
* Codebooks (:mod:`.quantizers`): EMA codebooks with k-means++ init on the whole training
  set's latents after an autoencoder warm-up, dead-code restarts from current latents until
  ``restart_until`` of the fit, residual levels (one token per level); or FSQ. Codebook size
  ``min(codebook_size, max(min_codebook_size, n_train // samples_per_code))``
  (:func:`effective_codebook_size`): 12-16 codes at 256 samples.
* Temporal decoding (:mod:`.networks`): encoded from frames of any length (convolutions, time
  channel, mean pooling), decoded to the time profile at ``temporal_points`` evenly spaced
  times; its error is measured on that profile.
* Token order: categories (family by family, as in ``names``), residual levels within each;
  codebooks are named ``"family.c<c>.r<r>"`` (:attr:`Tokenizer.codebook_names`).

Modules: :mod:`.config`, :mod:`.normalization`, :mod:`.categories`, :mod:`.quantizers`,
:mod:`.networks`, :mod:`.vqvae` (``Tokenizer``, the fitted model), :mod:`.training` (the fit,
the one way to obtain a ``Tokenizer`` from data), :mod:`.checks` (input checks),
:mod:`.metrics` (report, plot), :mod:`.spec` (the ``vqvae`` spec registered through the
``noa_tokenizers`` hook, whose ``fit`` calls :func:`fit_tokenizer`).

The names below are imported on first use (PEP 562), so ``noa_platform.tokenizer.config``,
which the run config needs, is importable without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from noa_platform.lazy_exports import lazy_exports

#: Public name -> module that defines it.
_EXPORTS = {
    "Tokenizer": "noa_platform.tokenizer.vqvae",
    "TokenizerConfig": "noa_platform.tokenizer.config",
    "UnfittedTokenizer": "noa_platform.tokenizer.spec",
    "builtin_tokenizers": "noa_platform.tokenizer.spec",
    "effective_codebook_size": "noa_platform.tokenizer.config",
    "fit_tokenizer": "noa_platform.tokenizer.training",
    "plot_report": "noa_platform.tokenizer.metrics",
    "report": "noa_platform.tokenizer.metrics",
}

__all__ = [
    "Tokenizer",
    "TokenizerConfig",
    "UnfittedTokenizer",
    "builtin_tokenizers",
    "effective_codebook_size",
    "fit_tokenizer",
    "plot_report",
    "report",
]

if TYPE_CHECKING:
    from noa_platform.tokenizer.config import TokenizerConfig, effective_codebook_size
    from noa_platform.tokenizer.metrics import plot_report, report
    from noa_platform.tokenizer.spec import UnfittedTokenizer, builtin_tokenizers
    from noa_platform.tokenizer.training import fit_tokenizer
    from noa_platform.tokenizer.vqvae import Tokenizer


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
