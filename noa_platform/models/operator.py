"""The MNO as the platform uses it: an architecture wrapped with field normalization.

Architectures see fields normalized per channel (zero mean, unit std over every frame of the
training split) so one set of hyper-parameters suits domains whose fields live on different
scales; callers see physical fields.

The update is a scaled increment: with ``z = (u − mean) / std`` and ``a = architecture(z, θ)``,

    u_next = u + inc_std · (a − z)

so an architecture that returns its input plus a correction (the U-AFNO's residual form)
predicts the frame-to-frame change in units of that change's own per-channel standard
deviation ``inc_std``. Frame increments are often 10–100× smaller than the fields; predicting
them at unit scale keeps the first step's output from being dominated by the identity, and the
error of a one-step forecast starts where persistence is, not where a random field is. With
``inc_std = std`` the wrapper is the plain normalized map ``u_next = mean + std · a``.

Optionally the increment is low-pass filtered (``increment_cutoff = c``: Fourier modes with
``|k| > c · k_max`` are removed, ``k_max`` = half the smaller side). Dissipative physics keeps
almost no energy near the grid scale, and nothing in a network's pointwise layers stops it from
adding some at every step: measured on the quick reaction-diffusion preset, an unfiltered
U-AFNO's rollouts carry 17× the true energy in the top shells after 8 steps and 50× after 32,
which barely moves VRMSE (those shells hold 1e-5 of the variance) but swamps the log-scaled
spectral features the tokenizer reads. The filter is the MNO's version of the 2/3 rule.

The statistics are buffers, so they travel with the state dict.
"""

from __future__ import annotations

import torch
from torch import nn

from noa_platform.models.rollout import rollout


class NeuralOperator(nn.Module):
    """``(u [B, C, H, W], θ [B, P]) -> u_next [B, C, H, W]`` in physical units."""

    def __init__(self, architecture: nn.Module, mean: torch.Tensor, std: torch.Tensor,
                 inc_std: torch.Tensor | None = None, increment_cutoff: float | None = None):
        super().__init__()
        if increment_cutoff is not None and not 0 < increment_cutoff <= 1:
            raise ValueError(f"increment_cutoff must be in (0, 1], got {increment_cutoff}")
        self.architecture = architecture
        self.increment_cutoff = increment_cutoff
        self._masks: dict[tuple, torch.Tensor] = {}
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())
        inc = std if inc_std is None else inc_std
        self.register_buffer("inc_std", inc.reshape(1, -1, 1, 1).clone())

    def normalize(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.mean) / self.std

    def _lowpass_mask(self, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        """``[H, W//2+1]`` 1 where ``|k| <= cutoff · k_max``, else 0 (cached per grid)."""
        key = (*shape, str(device))
        if key not in self._masks:
            h, w = shape
            ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64)[:, None]
            kx = torch.fft.rfftfreq(w, 1.0 / w, dtype=torch.float64)[None, :]
            limit = self.increment_cutoff * (min(h, w) // 2)
            self._masks[key] = ((kx**2 + ky**2).sqrt() <= limit + 1e-9).to(device)
        return self._masks[key]

    def _step(self, u: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        inc = a - z
        if self.increment_cutoff is not None and self.increment_cutoff < 1:
            mask = self._lowpass_mask(tuple(inc.shape[-2:]), inc.device)
            inc = torch.fft.irfft2(torch.fft.rfft2(inc) * mask, s=inc.shape[-2:])
        return u + self.inc_std * inc

    def forward_with_latent(self, u: torch.Tensor, theta: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.normalize(u)
        a, latent = self.architecture.forward_with_latent(z, theta)
        return self._step(u, z, a), latent

    def forward(self, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        z = self.normalize(u)
        return self._step(u, z, self.architecture(z, theta))

    @torch.no_grad()
    def rollout(self, u0: torch.Tensor, theta: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Autoregressive rollout ``[B, n_steps + 1, C, H, W]`` without gradients."""
        return rollout(self, u0, theta, n_steps).frames


def channel_statistics(trajectories: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean, std and increment std ``[C]`` of ``[N, T+1, C, H, W]``.

    The increment std is that of ``u_{t+1} − u_t`` over every consecutive pair. Stds are
    floored away from 0 (a constant channel gets 1) so that dividing by them is safe.
    """
    x = trajectories.double()
    c = x.shape[2]
    flat = x.transpose(0, 2).reshape(c, -1)
    mean, std = flat.mean(dim=1), flat.std(dim=1)
    inc = (x[:, 1:] - x[:, :-1]).transpose(0, 2).reshape(c, -1).std(dim=1) \
        if x.shape[1] > 1 else std

    def floor(s: torch.Tensor) -> torch.Tensor:
        return torch.where(s > 1e-8 * (1 + mean.abs()), s, torch.ones_like(s))

    return mean.float(), floor(std).float(), floor(inc).float()
