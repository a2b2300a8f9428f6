from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from plugin_fixtures import write_fixtures  # noqa: E402


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
