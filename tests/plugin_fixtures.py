"""Write small plugin distributions (module + dist-info) into a folder for discovery tests.

``importlib.metadata`` finds a distribution through a ``*.dist-info`` folder on ``sys.path``;
writing one by hand is exactly what an installer leaves behind, without running an installer.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

GOOD = """
import pluggy
from noa_platform.testing.toy_domain import ToyDomain
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    return [ToyDomain("good-toy")]
"""

RAISES_ON_IMPORT = """
raise RuntimeError("this plugin is broken on purpose")
"""

BAD_SIGNATURE = """
import pluggy
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains(unexpected_argument):
    return []
"""

MISSPELLED_HOOK = """
import pluggy
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domain():
    return []
"""

DUPLICATE_DOMAIN = """
import pluggy
from noa_platform.testing.toy_domain import ToyDomain
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    return [ToyDomain("good-toy")]
"""

EXITS_ON_IMPORT = """
import sys
sys.exit("usage: noa_fixture_exits FILE")  # a module written as a script
"""

HOOK_RAISES = """
import pluggy
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    raise KeyError("grid")
"""

WRONG_TYPE = """
import pluggy
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    return ["reaction-diffusion"]  # a name, not a Domain
"""

INCOMPLETE_DOMAIN = """
import pluggy
from noa_platform.api import Domain
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")


class Incomplete(Domain):
    name = "incomplete"  # and nothing else: no version, channels, grid, solver...


@hookimpl
def noa_domains():
    return [Incomplete()]
"""

WRONG_API = """
import pluggy
from noa_platform.testing.toy_domain import ToyDomain
NOA_PLUGIN_API = 99
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    return [ToyDomain("future-toy")]
"""

COMPONENTS = """
import pluggy
import torch
from torch import nn
from noa_platform.api import ArchitectureSpec, FeatureExtractorSpec
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")


class PointwiseNet(nn.Module):
    \"\"\"u + out(tanh(conv3x3(u) + W theta)): the smallest network the trainer accepts.\"\"\"

    def __init__(self, *, channels, n_params, resolution=None, width=4):
        super().__init__()
        self.latent_channels = width
        self.inp = nn.Conv2d(channels, width, 3, padding=1, padding_mode="circular")
        self.theta = nn.Linear(n_params, width)
        self.out = nn.Conv2d(width, channels, 1)

    def forward_with_latent(self, u, theta_unit):
        h = torch.tanh(self.inp(u) + self.theta(theta_unit)[:, :, None, None])
        return u + self.out(h), h

    def forward(self, u, theta_unit):
        return self.forward_with_latent(u, theta_unit)[0]


def extremes(traj):
    \"\"\"Per trajectory: the largest and smallest value over all frames and channels.\"\"\"
    flat = traj.flatten(1)
    return torch.stack([flat.amax(1), flat.amin(1)], dim=1)


@hookimpl
def noa_architectures():
    return [ArchitectureSpec("toy-pointwise", PointwiseNet, "fixture: pointwise update")]


@hookimpl
def noa_feature_extractors():
    return [FeatureExtractorSpec("extremes", extremes, ("extremes.max", "extremes.min"),
                                 description="fixture: largest and smallest value")]
"""

SOLVER_FAULTS = """
import time
import torch
import pluggy
from noa_platform.testing.toy_domain import DecaySolver, ToyDomain
NOA_PLUGIN_API = 2
hookimpl = pluggy.HookimplMarker("noa_platform")


class FaultySolver(DecaySolver):
    \"\"\"The toy's exact solver with one fault: ``nan`` (every frame after 0 is NaN),
    ``shape`` (the frame axis is missing) or ``hang`` (never returns).\"\"\"

    def __init__(self, space, channels, fault):
        super().__init__(space, channels)
        self.fault = fault

    def rollout(self, u0, params, n_frames, **kw):
        if self.fault == "hang":
            while True:
                time.sleep(0.01)
        traj = super().rollout(u0, params, n_frames, **kw)
        if self.fault == "nan":
            traj[:, 1:] = float("nan")
        if self.fault == "shape":
            traj = traj[:, -1]
        return traj


def faulty(fault):
    domain = ToyDomain(f"{fault}-toy")
    domain.solver = FaultySolver(domain.parameter_space, len(domain.channels), fault)
    return domain


@hookimpl
def noa_domains():
    return [faulty("nan"), faulty("shape"), faulty("hang")]
"""

# entry-point name -> (distribution, module, source). Entry points load in name order, so
# "a-good" registers "good-toy" before "z-duplicate" tries to.
FIXTURES = {
    "a-good": ("noa-fixture-good", "noa_fixture_good", GOOD),
    "b-import-error": ("noa-fixture-import-error", "noa_fixture_import_error", RAISES_ON_IMPORT),
    "c-bad-signature": ("noa-fixture-bad-signature", "noa_fixture_bad_signature", BAD_SIGNATURE),
    "d-misspelled": ("noa-fixture-misspelled", "noa_fixture_misspelled", MISSPELLED_HOOK),
    "e-wrong-api": ("noa-fixture-wrong-api", "noa_fixture_wrong_api", WRONG_API),
    "f-components": ("noa-fixture-components", "noa_fixture_components", COMPONENTS),
    "g-hook-raises": ("noa-fixture-hook-raises", "noa_fixture_hook_raises", HOOK_RAISES),
    "h-wrong-type": ("noa-fixture-wrong-type", "noa_fixture_wrong_type", WRONG_TYPE),
    "i-incomplete": ("noa-fixture-incomplete", "noa_fixture_incomplete", INCOMPLETE_DOMAIN),
    "j-exits": ("noa-fixture-exits", "noa_fixture_exits", EXITS_ON_IMPORT),
    "z-duplicate": ("noa-fixture-duplicate", "noa_fixture_duplicate", DUPLICATE_DOMAIN),
}

#: Plugins that load fine but whose solvers break the contract at run time (NaN, wrong
#: shape, a hang): only the kit finds these, so they are written on request, not by default.
RUNTIME_FAULTS = {
    "s-solver-faults": ("noa-fixture-solver-faults", "noa_fixture_solver_faults", SOLVER_FAULTS),
}


def write_distribution(root: Path, ep_name: str, dist: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[noa_platform]\n{ep_name} = {module}\n")


def write_fixtures(root: Path, names: list[str] | None = None,
                   fixtures: dict[str, tuple[str, str, str]] = FIXTURES) -> None:
    for ep_name, (dist, module, source) in fixtures.items():
        if names is None or ep_name in names:
            write_distribution(root, ep_name, dist, module, source)
