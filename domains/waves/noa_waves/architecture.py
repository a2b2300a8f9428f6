"""``wave-leapfrog``: a learned operator shaped like a kick–drift–kick step of ``(u, u_t)``.

Why this shape. A generic residual network ``x → x + Δ(x)`` has no reason to keep a wave's
energy: small contractions in every step add up to waves that fade and blur over a rollout, the
usual failure of learned operators on undamped dynamics. The exact solution operator of a
linear wave equation is, per Fourier mode of a uniform medium, a rotation of ``(ω û, v̂)``; it
factors exactly as a kick, a drift and a kick::

    [[cos ωτ, sin ωτ / ω], [−ω sin ωτ, cos ωτ]] = K D K,
    K = [[1, 0], [−ω tan(ωτ/2), 1]],   D = [[1, sin ωτ / ω], [0, 1]].

This network is that factorisation with learned parts. With ``z = (u, v)`` the normalised
state (:class:`~noa_platform.models.operator.NeuralOperator` feeds it one)::

    v ← v + ½ F(u)          F(u) = 𝓕⁻¹[κ(|n|, θ) û] + f(u, θ)       kick: a force of u alone
    u ← u + G(v)            G(v) = 𝓕⁻¹[δ(|n|, θ) v̂] + g(v, θ)       drift: a motion of v alone
    v ← 𝓕⁻¹[e^{−γ̃ s(|n|, θ)} v̂]                                     damping (see below)
    v ← v + ½ F(u)
    out = z + λ ⊙ (z_new − z)

* ``κ`` and ``δ`` are *learned dispersion symbols*: smooth functions of the integer wavenumber
  ``|n|`` and the θ embedding (one small MLP), so the uniform-medium part of the true step is
  representable exactly for every θ and at every resolution.
* ``f`` and ``g`` are small θ-conditioned (FiLM) convolutional networks with circular padding,
  started near zero: local, nonlinear corrections (the medium's heterogeneity, which the
  operator cannot see — ``c(x)`` is drawn from the sample's seed — enters here on average).
* Every kick and drift is a *shear*: it changes one half of the state by a function of the
  other half, so it is invertible with Jacobian determinant exactly 1. Without the damping
  sub-step the map preserves phase-space volume whatever the weights: it cannot learn to
  dissipate, only to move energy around.
* Damping is one explicit, θ-conditioned factor on ``v``: ``γ̃`` is the conditioning value of
  the θ column named by ``damping_index`` (0 for an undamped row, see
  :meth:`~noa_platform.api.ParameterSpace.conditioning`) and ``s >= 0`` a learned symbol, so an
  undamped row is never damped. Without ``damping_index`` the factor is ``e^{−s}`` (learned).
* ``λ`` (two learned scales, one per channel, ``e^0 = 1`` at the start) converts the state
  change into the wrapper's increment units: the wrapper maps ``out − z`` to a physical
  increment with the *increment* standard deviation, the state lives in the *field* one.

At initialisation every learned part is near zero: the operator starts as persistence.
The latent (``forward_with_latent``) is the hidden features of the first kick's ``f`` and of the
drift's ``g``, ``[B, 2·width, H, W]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from noa_platform.models.checks import ArchitectureConfigError
from noa_platform.models.conditioning import FiLM, ThetaEmbedding

NAME = "wave-leapfrog"

#: Output layers start at the default init times this: the operator starts as persistence but
#: every parameter gets a gradient on the first batch.
OUT_INIT_SCALE = 1e-2


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode="circular")


class LocalNet(nn.Module):
    """``[B, 1, H, W] -> ([B, 1, H, W], hidden [B, width, H, W])``: a θ-conditioned residual
    stack of 3×3 circular convolutions."""

    def __init__(self, width: int, depth: int, cond_dim: int):
        super().__init__()
        self.lift = _conv(1, width)
        self.convs = nn.ModuleList(_conv(width, width) for _ in range(depth))
        self.films = nn.ModuleList(FiLM(cond_dim, width) for _ in range(depth))
        self.act = nn.GELU()
        self.proj = _conv(width, 1, k=1)
        with torch.no_grad():
            self.proj.weight.mul_(OUT_INIT_SCALE)
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.lift(x)
        for conv, film in zip(self.convs, self.films):
            h = h + self.act(film(conv(h), emb))
        return self.proj(h), h


class Symbols(nn.Module):
    """``(|n|, θ embedding) -> (κ, δ, s)``: three real symbols per Fourier mode and sample."""

    def __init__(self, cond_dim: int, hidden: int, k_ref: float):
        super().__init__()
        self.k_ref = k_ref
        self.radial = nn.Linear(3, hidden)
        self.theta = nn.Linear(cond_dim, hidden, bias=False)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 3))
        with torch.no_grad():
            self.out[-1].weight.mul_(OUT_INIT_SCALE)
            self.out[-1].bias.zero_()
        self._freq: dict[tuple, torch.Tensor] = {}

    def _radius(self, h: int, w: int, device, dtype) -> torch.Tensor:
        key = (h, w, str(device), dtype)
        if key not in self._freq:
            ny = torch.fft.fftfreq(h, 1.0 / h, device=device, dtype=dtype)[:, None]
            nx = torch.fft.rfftfreq(w, 1.0 / w, device=device, dtype=dtype)[None, :]
            self._freq[key] = (ny * ny + nx * nx).sqrt() / self.k_ref        # [H, W']
        return self._freq[key]

    def forward(self, emb: torch.Tensor, h: int, w: int) -> torch.Tensor:
        r = self._radius(h, w, emb.device, emb.dtype)
        feats = torch.stack([r, r * r, torch.exp(-r)], dim=-1)            # [H, W', 3]
        hidden = self.radial(feats)[None] + self.theta(emb)[:, None, None, :]
        return self.out(hidden).permute(0, 3, 1, 2)                      # [B, 3, H, W']


class WaveLeapfrog(nn.Module):
    """``(z [B, 2, H, W], θ [B, P]) -> z_next``; see the module docstring."""

    def __init__(self, *, n_params: int, width: int, depth: int, cond_dim: int,
                 symbol_width: int, damping_index: int | None, k_ref: float):
        super().__init__()
        self.n_params = n_params
        self.damping_index = damping_index
        self.width = width
        self.latent_channels = 2 * width
        self.theta_embed = ThetaEmbedding(max(n_params, 1), cond_dim)
        self.symbols = Symbols(cond_dim, symbol_width, k_ref)
        self.force = LocalNet(width, depth, cond_dim)
        self.motion = LocalNet(width, depth, cond_dim)
        self.log_scale = nn.Parameter(torch.zeros(2))

    def _check(self, z: torch.Tensor, theta: torch.Tensor) -> None:
        if z.ndim != 4 or z.shape[1] != 2:
            raise ValueError(f"{NAME}: u must be [B, 2, H, W] (u, u_t), got {tuple(z.shape)}")
        if theta is None or tuple(theta.shape) != (z.shape[0], self.n_params):
            got = None if theta is None else tuple(theta.shape)
            raise ValueError(f"{NAME}: theta must be [{z.shape[0]}, {self.n_params}], got {got}")

    def forward_with_latent(self, z: torch.Tensor, theta: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(z, theta)
        theta = theta.to(dtype=z.dtype, device=z.device)
        h, w = z.shape[-2:]
        emb = self.theta_embed(theta if self.n_params else torch.zeros_like(z[:, :1, 0, 0]))
        kappa, delta, s = self.symbols(emb, h, w).unbind(dim=1)          # [B, H, W'] each
        if self.damping_index is None:
            rate = nn.functional.softplus(s)
        else:
            rate = theta[:, self.damping_index, None, None] * nn.functional.softplus(s)
        damp = torch.exp(-rate)

        def spectral(x: torch.Tensor, symbol: torch.Tensor) -> torch.Tensor:
            return torch.fft.irfft2(torch.fft.rfft2(x) * symbol, s=(h, w))

        u, v = z[:, 0], z[:, 1]
        local_f, latent_f = self.force(u[:, None], emb)
        v = v + 0.5 * (spectral(u, kappa) + local_f[:, 0])               # kick
        local_g, latent_g = self.motion(v[:, None], emb)
        u = u + spectral(v, delta) + local_g[:, 0]                       # drift
        v = spectral(v, damp)                                            # damping
        local_f2, _ = self.force(u[:, None], emb)
        v = v + 0.5 * (spectral(u, kappa) + local_f2[:, 0])              # kick
        new = torch.stack([u, v], dim=1)
        scale = torch.exp(self.log_scale)[None, :, None, None]
        return z + scale * (new - z), torch.cat([latent_f, latent_g], dim=1)

    def forward(self, z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return self.forward_with_latent(z, theta)[0]


_KEYS = ("width", "depth", "cond_dim", "symbol_width", "damping_index", "k_ref")


def _int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ArchitectureConfigError(f"{NAME}: {name} must be an integer >= {minimum}, "
                                      f"got {value!r}")
    return value


def make_wave_leapfrog(*, channels: int, n_params: int, resolution: Any = None,
                       **config: Any) -> WaveLeapfrog:
    """The ``wave-leapfrog`` factory. Keys: ``width`` (24), ``depth`` (2), ``cond_dim`` (32),
    ``symbol_width`` (64), ``damping_index`` (None: the θ column of the damping rate),
    ``k_ref`` (16.0: the wavenumber that the symbols' inputs are scaled by)."""
    unknown = sorted(set(config) - set(_KEYS))
    if unknown:
        raise ArchitectureConfigError(f"unknown {NAME} config key(s) "
                                      f"{', '.join(map(repr, unknown))}; known keys: name, "
                                      f"{', '.join(_KEYS)}")
    if channels != 2:
        raise ArchitectureConfigError(f"{NAME} advances (u, u_t): it needs 2 channels, "
                                      f"got {channels}")
    _int("n_params", n_params, 0)
    damping = config.get("damping_index")
    if damping is not None:
        _int("damping_index", damping, 0)
        if damping >= n_params:
            raise ArchitectureConfigError(f"{NAME}: damping_index {damping} is not a θ column "
                                          f"(θ has {n_params})")
    k_ref = config.get("k_ref", 16.0)
    if not isinstance(k_ref, (int, float)) or isinstance(k_ref, bool) or not k_ref > 0:
        raise ArchitectureConfigError(f"{NAME}: k_ref must be a number > 0, got {k_ref!r}")
    return WaveLeapfrog(
        n_params=n_params,
        width=_int("width", config.get("width", 24), 1),
        depth=_int("depth", config.get("depth", 2), 0),
        cond_dim=_int("cond_dim", config.get("cond_dim", 32), 1),
        symbol_width=_int("symbol_width", config.get("symbol_width", 64), 1),
        damping_index=damping,
        k_ref=float(k_ref),
    )
