from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from plugin_fixtures import write_fixtures


@pytest.fixture
def fixture_plugins(tmp_path, monkeypatch):
    """A folder on sys.path holding every fixture distribution; returns the folder."""
    root = tmp_path / "site"
    root.mkdir()
    write_fixtures(root)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in list(sys.modules):
        if name.startswith("noa_fixture_"):
            del sys.modules[name]


@pytest.fixture
def cli(fixture_plugins, monkeypatch):
    """``noa ...`` in-process, with only the fixture plugin that provides ``good-toy``."""
    from click.testing import CliRunner

    from noa_platform.cli import main
    from noa_platform.plugins import get_registry

    monkeypatch.setenv("NOA_PLUGINS", "a-good")
    get_registry.cache_clear()
    yield lambda *args: CliRunner().invoke(main, [str(a) for a in args])
    get_registry.cache_clear()


@pytest.fixture(autouse=True)
def isolated_artifact_registry(tmp_path_factory, monkeypatch):
    """`noa train` records its results in a registry (default ./registry): give every test,
    and the processes it starts, its own, so no test writes into the working tree."""
    monkeypatch.setenv("NOA_REGISTRY", str(tmp_path_factory.mktemp("registry")))
