"""`noa align` without the optional `align` extra (POT, scikit-learn) says in one line what to
install. The libraries are hidden (or shown) here, so this runs, and passes, whether or not the
extra is installed; it needs no registry, because the check comes before anything is read."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import pytest
from click.testing import CliRunner

from noa_platform.alignment.sources import EXTRA_MODULES
from noa_platform.cli import main


@pytest.mark.parametrize("hidden, named", [
    (("ot",), "pot"),
    (("sklearn",), "scikit-learn"),
    (("ot", "sklearn"), "pot and scikit-learn"),
])
def test_align_without_the_extra_names_it(hidden, named, monkeypatch, tmp_path):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        if name in hidden:
            return None
        if name in EXTRA_MODULES:  # present, whether installed or not
            return importlib.machinery.ModuleSpec(name, None)
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    res = CliRunner().invoke(main, ["align", "toy", "toy-b", "--registry",
                                    str(tmp_path / "registry")])
    assert res.exit_code == 1
    assert res.output.strip() == f"error: noa align needs {named}: pip install 'noa-platform[align]'"
