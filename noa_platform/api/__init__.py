"""The plugin contract: the public interfaces a domain plugin implements.

A domain plugin subclasses :class:`Domain` and hands an instance to the platform from its
``noa_domains`` hook (see :mod:`noa_platform.hookspecs`). The core never imports a domain
package by name; everything it knows about a domain comes through the objects defined here.
Each concept lives in its own module — :mod:`.grid`, :mod:`.parameters` (θ), :mod:`.solver`
(the CNO and initial conditions), :mod:`.specs` (what the other hooks return) and
:mod:`.domain` — and every public name is re-exported here: import from ``noa_platform.api``.

Conventions used throughout
---------------------------
* A *frame* is a field ``[C, H, W]``; a batch of frames is ``[B, C, H, W]``; a trajectory
  batch is ``[B, T+1, C, H, W]`` where index 0 along time is the initial condition and frames
  are ``frame_dt`` apart.
* θ comes in three encodings: the *unit cube* ``[B, P]`` in ``[0, 1]`` (what samplers draw),
  *physical values* ``[B, P]`` (what solvers consume; categorical and integer parameters as
  float indices/values) and the *conditioning* ``[B, P]`` a learned operator sees (canonical
  unit values with the parameters the row's category does not read masked).
* Physical values are float64 NumPy arrays or tensors; fields are float32 unless a caller asks
  for float64 (reference runs, verification).
* Determinism: the same ``(u0, θ, seed)`` gives the same bits, whatever the batch it is
  computed in and whatever else is in that batch, on a given device and dtype.
"""

from __future__ import annotations

from noa_platform.api.domain import ROLES, Channel, Domain, Invariant
from noa_platform.api.grid import Grid
from noa_platform.api.parameters import (
    CategoricalParameter,
    IntegerParameter,
    LinearParameter,
    LogParameter,
    Parameter,
    ParameterSpace,
)
from noa_platform.api.solver import InitialCondition, Solver, check_initial_state
from noa_platform.api.specs import ArchitectureSpec, FeatureExtractorSpec, TokenizerSpec

#: Version of this contract. A plugin declares the version it targets as the module-level
#: attribute ``NOA_PLUGIN_API``; a plugin that targets another version is skipped with
#: :data:`MIGRATION` telling its author what changed.
PLUGIN_API_VERSION = 2

#: What a plugin written for an older contract must change, by the version it targets.
MIGRATION: dict[int, str] = {
    1: ("contract v2: channels are Channel(name, role, units); Invariant.fn takes "
        "(frames, grid, theta); Domain.architecture() is replaced by the "
        "default_architecture config; ParameterSpace takes reads= for categorical "
        "parameters; then set NOA_PLUGIN_API = 2 (see docs/plugin-guide.md)"),
}

__all__ = [
    "MIGRATION",
    "PLUGIN_API_VERSION",
    "ROLES",
    "ArchitectureSpec",
    "CategoricalParameter",
    "Channel",
    "Domain",
    "FeatureExtractorSpec",
    "Grid",
    "InitialCondition",
    "IntegerParameter",
    "Invariant",
    "LinearParameter",
    "LogParameter",
    "Parameter",
    "ParameterSpace",
    "Solver",
    "TokenizerSpec",
    "check_initial_state",
]
