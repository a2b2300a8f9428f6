"""U-AFNO: a θ-conditioned U-Net with AFNO spectral mixing at the bottleneck (DESIGN §8).

Data flow for ``u [B, C, H, W]`` on an ``levels``-level model with widths
``w_i = base_channels * 2**i``::

    [u, param_field]            [B, C+K, H, W]
    lift (3×3)                  [B, w_0, H, W]
    level i: ResBlock -> skip_i, Downsample      [B, w_{i+1}, H/2^{i+1}, W/2^{i+1}]
    bottleneck: afno_blocks × AFNOBlock          [B, w_L, H/2^L, W/2^L]  = the latent
    level i (reversed): Upsample, concat skip_i, fuse, ResBlock
    head: GroupNorm/FiLM/GELU, 1×1 conv         [B, C, H, W] = Δ
    u_next = u + Δ

The convolutions give locality and multi-scale features cheaply; the AFNO blocks at the coarsest
grid give global (whole-domain) interaction at a cost that does not grow with the fine grid.
Predicting the increment Δ rather than the next frame makes the identity (the best guess for a
short ``frame_dt``) the starting point, which is why the head is initialised near zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from noa_platform.models.afno import MIXINGS, AFNOBlock, clamp_modes
from noa_platform.models.checks import (
    ArchitectureConfigError,
    as_resolution,
    grid_size_problem,
)
from noa_platform.models.conditioning import ThetaEmbedding
from noa_platform.models.unet import (
    NORMS,
    DecoderLevel,
    Downsample,
    NormFiLMAct,
    ResBlock,
    periodic_conv,
)

#: The head's initial weights are the default init times this: Δ starts small (u_{t+1} ≈ u_t)
#: but not zero, so every upstream parameter gets a gradient on the very first batch.
OUT_INIT_SCALE = 1e-2


class UAFNO(nn.Module):
    """θ-conditioned U-AFNO stepping ``u_t -> u_{t+1} = u_t + Δ(u_t, θ)``.

    Parameters
    ----------
    channels : field channels ``C`` of the domain.
    n_params : length ``P`` of θ; ``0`` builds an unconditioned model (no FiLM parameters).
    resolution : optional grid ``n`` or ``(H, W)`` the model is meant for; only checked for
        compatibility with ``levels`` (no weight depends on it, see :mod:`.afno`).
    field_channels : ``K`` channels of a spatially varying parameter field concatenated to
        the input; ``0`` means the model takes none.
    base_channels, levels : width at full resolution and number of halvings; widths double per
        level, so the bottleneck has ``base_channels * 2**levels`` channels.
    modes : Fourier modes kept per axis at the bottleneck, clamped at run time to the grid.
    afno_blocks : number of AFNO blocks at the bottleneck.
    num_blocks, hidden_factor, sparsity : block-diagonal structure, hidden width multiplier and
        softshrink λ of the spectral MLP.
    cond_dim : width of the θ embedding fed to every FiLM layer.
    mlp_ratio : hidden width multiplier of the AFNO blocks' channel MLP.
    norm : ``"group"`` (GroupNorm in every block) or ``"none"``; see :mod:`.unet` for why a
        domain whose patterns decay may want the second.
    norm_floor : variance floor of every GroupNorm (``0``: PyTorch's 1e-5); see :mod:`.unet`.
    spectral_mixing : ``"afno"`` (as published) or ``"equivariant"`` (commutes with periodic
        shifts, keeps uniform states uniform); see :mod:`.afno`.
    """

    def __init__(
        self,
        channels: int,
        n_params: int,
        *,
        resolution: int | tuple[int, int] | None = None,
        field_channels: int = 0,
        base_channels: int = 32,
        levels: int = 3,
        modes: int = 16,
        afno_blocks: int = 4,
        num_blocks: int = 8,
        hidden_factor: int = 1,
        sparsity: float = 0.01,
        cond_dim: int = 64,
        mlp_ratio: int = 2,
        norm: str = "group",
        norm_floor: float = 0.0,
        spectral_mixing: str = "afno",
    ) -> None:
        super().__init__()
        _check_int("channels", channels, 1)
        _check_int("n_params", n_params, 0)
        _check_int("field_channels", field_channels, 0)
        _check_int("base_channels", base_channels, 1)
        _check_int("levels", levels, 1)
        _check_int("modes", modes, 1)
        _check_int("afno_blocks", afno_blocks, 0)
        _check_int("num_blocks", num_blocks, 1)
        _check_int("hidden_factor", hidden_factor, 1)
        _check_int("cond_dim", cond_dim, 1)
        _check_int("mlp_ratio", mlp_ratio, 1)
        if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool) or sparsity < 0:
            raise ArchitectureConfigError(f"sparsity must be a number >= 0, got {sparsity!r}")
        if (not isinstance(norm_floor, (int, float)) or isinstance(norm_floor, bool)
                or not norm_floor >= 0):
            raise ArchitectureConfigError(f"norm_floor must be a number >= 0, got {norm_floor!r}")
        if norm not in NORMS:
            raise ArchitectureConfigError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if spectral_mixing not in MIXINGS:
            raise ArchitectureConfigError(f"spectral_mixing must be one of {', '.join(MIXINGS)}, "
                                          f"got {spectral_mixing!r}")
        widths = [base_channels * 2**i for i in range(levels + 1)]
        if widths[-1] % num_blocks:
            raise ArchitectureConfigError(
                f"num_blocks={num_blocks} must divide the bottleneck width "
                f"base_channels*2**levels = {widths[-1]}"
            )
        self.resolution: tuple[int, int] | None = None
        if resolution is not None:
            self.resolution = as_resolution(resolution)
            problem = grid_size_problem(*self.resolution, levels)
            if problem:
                raise ArchitectureConfigError(problem)

        self.channels = channels
        self.n_params = n_params
        self.field_channels = field_channels
        self.levels = levels
        self.widths = tuple(widths)
        self.latent_channels = widths[-1]
        self.config: dict[str, Any] = {
            "base_channels": base_channels, "levels": levels, "modes": modes,
            "afno_blocks": afno_blocks, "num_blocks": num_blocks, "hidden_factor": hidden_factor,
            "sparsity": float(sparsity), "cond_dim": cond_dim, "mlp_ratio": mlp_ratio,
            "norm": norm, "norm_floor": float(norm_floor), "spectral_mixing": spectral_mixing,
        }

        film_dim = cond_dim if n_params > 0 else None
        self.theta_embed = ThetaEmbedding(n_params, cond_dim) if n_params > 0 else None
        self.lift = periodic_conv(channels + field_channels, widths[0])
        self.encoder = nn.ModuleList(ResBlock(w, film_dim, norm, norm_floor) for w in widths[:-1])
        self.downs = nn.ModuleList(Downsample(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.bottleneck = nn.ModuleList(
            AFNOBlock(
                widths[-1], film_dim, num_blocks=num_blocks, hidden_factor=hidden_factor,
                modes=modes, sparsity=sparsity, mlp_ratio=mlp_ratio, norm=norm,
                norm_floor=norm_floor, mixing=spectral_mixing,
            )
            for _ in range(afno_blocks)
        )
        # Deepest level first, so iteration order matches the decoder's data flow.
        self.decoder = nn.ModuleList(
            DecoderLevel(widths[i + 1], widths[i], film_dim, norm, norm_floor)
            for i in reversed(range(levels))
        )
        self.head_act = NormFiLMAct(widths[0], film_dim, norm, norm_floor)
        self.head = periodic_conv(widths[0], channels, kernel_size=1)
        with torch.no_grad():
            self.head.weight.mul_(OUT_INIT_SCALE)
            self.head.bias.zero_()

    # ------------------------------------------------------------------ shapes

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(C_b, H_b, W_b)`` of the bottleneck for an ``height × width`` input."""
        factor = 2**self.levels
        return self.latent_channels, height // factor, width // factor

    def kept_modes(self, height: int, width: int) -> tuple[int, int]:
        """Fourier modes ``(m_h, m_w)`` the bottleneck keeps for an ``height × width`` input."""
        _, h_b, w_b = self.latent_shape(height, width)
        return clamp_modes(self.config["modes"], h_b, w_b)

    def _check_inputs(
        self, u: torch.Tensor, theta_unit: torch.Tensor | None, param_field: torch.Tensor | None
    ) -> None:
        if u.ndim != 4 or u.shape[1] != self.channels:
            raise ValueError(
                f"u must be [B, {self.channels}, H, W], got shape {tuple(u.shape)}"
            )
        batch, _, height, width = u.shape
        problem = grid_size_problem(height, width, self.levels)
        if problem:
            raise ValueError(problem)
        if self.n_params > 0 or theta_unit is not None:
            if theta_unit is None or theta_unit.shape != (batch, self.n_params):
                got = None if theta_unit is None else tuple(theta_unit.shape)
                raise ValueError(f"theta_unit must be [{batch}, {self.n_params}], got {got}")
        if self.field_channels:
            want = (batch, self.field_channels, height, width)
            if param_field is None or tuple(param_field.shape) != want:
                got = None if param_field is None else tuple(param_field.shape)
                raise ValueError(f"param_field must be {list(want)}, got {got}")
        elif param_field is not None:
            raise ValueError(
                "this model was built with field_channels=0 but got a param_field; "
                "build it with field_channels=K to use one"
            )

    # ------------------------------------------------------------------ forward

    def forward_with_latent(
        self,
        u: torch.Tensor,
        theta_unit: torch.Tensor | None,
        param_field: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step. ``u [B, C, H, W]``, ``theta_unit [B, P]``, ``param_field [B, K, H, W]``.

        Returns ``(u_next [B, C, H, W], latent [B, C_b, H_b, W_b])``; ``latent`` is the
        bottleneck after the AFNO blocks, the representation a :class:`LatentProjector`
        aligns with the tokenizer's latent space.
        """
        self._check_inputs(u, theta_unit, param_field)
        emb = None
        if self.theta_embed is not None:
            emb = self.theta_embed(theta_unit.to(dtype=u.dtype, device=u.device))
        x = u
        if self.field_channels:
            x = torch.cat([u, param_field.to(dtype=u.dtype, device=u.device)], dim=1)

        h = self.lift(x)
        skips = []
        for block, down in zip(self.encoder, self.downs):
            h = block(h, emb)
            skips.append(h)
            h = down(h)
        for block in self.bottleneck:
            h = block(h, emb)
        latent = h
        for level, skip in zip(self.decoder, reversed(skips)):
            h = level(h, skip, emb)
        delta = self.head(self.head_act(h, emb))
        return u + delta, latent

    def forward(
        self,
        u: torch.Tensor,
        theta_unit: torch.Tensor | None,
        param_field: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``u [B, C, H, W]``, ``theta_unit [B, P]`` -> ``u_next [B, C, H, W]``."""
        return self.forward_with_latent(u, theta_unit, param_field)[0]


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ArchitectureConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
