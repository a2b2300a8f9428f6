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

WRONG_API = """
import pluggy
from noa_platform.testing.toy_domain import ToyDomain
NOA_PLUGIN_API = 99
hookimpl = pluggy.HookimplMarker("noa_platform")

@hookimpl
def noa_domains():
    return [ToyDomain("future-toy")]
"""

# entry-point name -> (distribution, module, source). Entry points load in name order, so
# "a-good" registers "good-toy" before "z-duplicate" tries to.
FIXTURES = {
    "a-good": ("noa-fixture-good", "noa_fixture_good", GOOD),
    "b-import-error": ("noa-fixture-import-error", "noa_fixture_import_error", RAISES_ON_IMPORT),
    "c-bad-signature": ("noa-fixture-bad-signature", "noa_fixture_bad_signature", BAD_SIGNATURE),
    "d-misspelled": ("noa-fixture-misspelled", "noa_fixture_misspelled", MISSPELLED_HOOK),
    "e-wrong-api": ("noa-fixture-wrong-api", "noa_fixture_wrong_api", WRONG_API),
    "z-duplicate": ("noa-fixture-duplicate", "noa_fixture_duplicate", DUPLICATE_DOMAIN),
}


def write_distribution(root: Path, ep_name: str, dist: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[noa_platform]\n{ep_name} = {module}\n")


def write_fixtures(root: Path, names: list[str] | None = None) -> None:
    for ep_name, (dist, module, source) in FIXTURES.items():
        if names is None or ep_name in names:
            write_distribution(root, ep_name, dist, module, source)
