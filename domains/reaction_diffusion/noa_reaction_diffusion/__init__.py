"""Reaction-diffusion domain plugin for noa-platform (Gray–Scott, FitzHugh–Nagumo)."""

from noa_reaction_diffusion.domain import ReactionDiffusion

__all__ = ["ReactionDiffusion"]
