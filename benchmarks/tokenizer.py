"""Tokenizer training time at the sizes of the ``quick`` and ``standard`` presets, as JSON.

Features come from synthetic trajectories (random decaying and growing Fourier modes, so the
feature columns vary and correlate as real ones do) with the preset's sample count and
horizon; the fit uses the default tokenizer config. Reported per preset: feature extraction
time, fit time and steps per second. Quality is not reported here: synthetic features say
nothing about it (see the tokenizer report of a real run, ``RUN_DIR/tokenizer/report.json``).

    python benchmarks/tokenizer.py [--presets quick standard]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from noa_platform.features import extract_features, feature_names
from noa_platform.tokenizer import TokenizerConfig, fit_tokenizer

PRESETS = {"quick": {"n_samples": 256, "frames": 33}, "standard": {"n_samples": 4096, "frames": 65}}


def synthetic_trajectories(n: int, frames: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    t = torch.linspace(0, 1, frames)
    out = torch.zeros(n, frames, 2, size, size)
    for _ in range(4):
        k = torch.randint(1, 5, (n, 2, 2), generator=g).float()
        amp = torch.rand(n, 2, generator=g) * 2
        rate = torch.randn(n, 2, generator=g) * 2
        phase = torch.rand(n, 2, generator=g) * 2 * math.pi
        mode = torch.sin(2 * math.pi * (k[..., 0, None, None] * x + k[..., 1, None, None] * y)
                         + phase[..., None, None])                      # [n, 2, H, W]
        envelope = amp[:, None] * torch.exp(rate[:, None] * t[None, :, None])  # [n, T, 2]
        out += envelope[..., None, None] * mode[:, None]
    return out


def run(preset: str) -> dict:
    spec = PRESETS[preset]
    n = spec["n_samples"]
    start = time.perf_counter()
    feats: dict[str, list[torch.Tensor]] = {}
    for s in range(0, n, 256):
        traj = synthetic_trajectories(min(256, n - s), spec["frames"], seed=s)
        with torch.no_grad():
            for k, v in extract_features(traj).items():
                feats.setdefault(k, []).append(v)
    features = {k: torch.cat(v) for k, v in feats.items()}
    extract_s = time.perf_counter() - start
    train = {k: v[:int(0.8 * n)] for k, v in features.items()}
    config = TokenizerConfig()
    start = time.perf_counter()
    tok = fit_tokenizer(train, feature_names(), config, progress=False)
    fit_s = time.perf_counter() - start
    return {"n_samples": n, "frames": spec["frames"], "feature_seconds": extract_s,
            "fit_seconds": fit_s, "steps": config.steps, "steps_per_s": config.steps / fit_s,
            "n_codebooks": tok.n_codebooks, "codebook_size": tok.codebook_sizes[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()
    print(json.dumps({p: run(p) for p in args.presets}, indent=2))


if __name__ == "__main__":
    main()
