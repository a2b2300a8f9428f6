"""`noa plugins check` and `noa plugins new` as a user meets them (fast; the whole author's
path with a fresh virtual environment is tests/test_authors_path.py)."""

from __future__ import annotations

import json
import tomllib

import pytest
from click.testing import CliRunner
from test_conformance import broken_toy

from noa_platform import plugins as plugin_registry
from noa_platform.cli import main
from noa_platform.plugin_template import names_for, render, template_files
from noa_platform.testing import ToyDomain


@pytest.fixture
def registry_with_toys(monkeypatch):
    reg = plugin_registry.discover(env={"NOA_PLUGINS": ""})  # built-ins only
    for d in (ToyDomain(), broken_toy("batch-mean")):
        reg.domains[d.name] = d
        reg.owners[("domains", d.name)] = "fixture"
    monkeypatch.setattr(plugin_registry, "get_registry", lambda: reg)
    return reg


def test_check_prints_the_table_and_exits_0_for_a_conforming_domain(registry_with_toys):
    result = CliRunner().invoke(main, ["plugins", "check", "toy"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["check", "status"]
    assert any(line.split()[:2] == ["replay", "pass"] for line in lines)
    assert "domain 'toy' conforms" in lines[-1]


def test_check_exits_1_and_names_the_failing_check(registry_with_toys):
    result = CliRunner().invoke(main, ["plugins", "check", "toy-batch-mean", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    failed = [c for c in data["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["batch_independence"]


def test_check_of_an_unknown_domain_is_one_line_listing_the_known(registry_with_toys):
    result = CliRunner().invoke(main, ["plugins", "check", "nope"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    # The installed plugins were left out by NOA_PLUGINS="" above: the line says so.
    assert line.startswith("error: unknown domain 'nope'; known: toy, toy-batch-mean (skipped "
                           "plugins: ") and line.endswith("; see `noa plugins list`)")


@pytest.mark.parametrize("bad", ["Heat", "heat_flow", "heat-", "heat--flow", "9lives", "", "a b"])
def test_new_refuses_a_bad_name_in_one_line(tmp_path, bad):
    result = CliRunner().invoke(main, ["plugins", "new", bad, "--dir", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "is not usable" in result.output
    assert not (tmp_path / "x").exists()


def test_new_refuses_a_non_empty_target_in_one_line(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["plugins", "new", "heat", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not an empty folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_new_renders_every_template_file_with_names_substituted(tmp_path):
    result = CliRunner().invoke(main, ["plugins", "new", "heat-flow", "--dir", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    root = tmp_path / "p"
    rendered = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert len(rendered) == len(template_files())
    assert "noa_heat_flow/domain.py" in rendered and "tests/test_domain.py" in rendered
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "noa-domain-heat-flow" and meta["project"]["version"]
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["project"]["entry-points"]["noa_platform"] == {"heat-flow": "noa_heat_flow.plugin"}
    for path in root.rglob("*"):
        if path.is_file():
            assert "${" not in path.read_text(), path
    assert "class HeatFlow(Domain)" in (root / "noa_heat_flow" / "domain.py").read_text()


def test_names_for_and_render_into_an_empty_existing_folder(tmp_path):
    assert names_for("a1-b2")["package"] == "noa_a1_b2"
    assert names_for("a1-b2")["class_name"] == "A1B2"
    (tmp_path / "empty").mkdir()
    assert render("x", tmp_path / "empty")
