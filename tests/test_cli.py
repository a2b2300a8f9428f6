"""The command line: listing, JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from noa_platform import __version__
from noa_platform.cli import main
from noa_platform.plugins import get_registry


@pytest.fixture(autouse=True)
def fresh_registry():
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def noa(*args: str, extra_path: str | None = None) -> subprocess.CompletedProcess:
    """Run ``noa`` in a child process, as a user would, optionally with more on sys.path."""
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([extra_path, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "noa_platform", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and __version__ in res.output


def test_domains_show_json_and_unknown(fixture_plugins):
    res = run("domains", "show", "good-toy", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["plugin"] == "a-good"
    assert [p["name"] for p in info["parameters"]] == ["rate", "offset", "boost"]
    assert info["parameters"][0]["scale"] == "log"
    assert set(info["presets"]) == {"quick", "standard"}
    res = run("domains", "show", "good-toy")
    assert "rate" in res.output and "frame_dt" in res.output

    res = run("domains", "show", "no-such-domain")
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("error: unknown domain 'no-such-domain'")


def test_usage_error_exits_2():
    assert run("domains", "show").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_broken_plugins_do_not_break_the_host(fixture_plugins):
    res = noa("domains", "list", extra_path=str(fixture_plugins))
    assert res.returncode == 0, res.stderr
    assert "good-toy" in res.stdout
    res = noa("plugins", "list", "--json", extra_path=str(fixture_plugins))
    assert res.returncode == 0, res.stderr
    records = {r["name"]: r for r in json.loads(res.stdout)}
    broken = records["b-import-error"]
    assert broken["status"] == "failed"
    assert "this plugin is broken on purpose" in broken["error"]
    assert broken["distribution"] == "noa-fixture-import-error"
    assert records["a-good"]["hooks"] == ["noa_domains"]


def test_errors_are_one_line_without_traceback_unless_verbose():
    res = noa("domains", "show", "nope")
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    res = noa("--verbose", "domains", "show", "nope")
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_generate_info_and_features_from_the_command_line(fixture_plugins, tmp_path):
    out = tmp_path / "toy.h5"
    res = run("generate", "good-toy", "--n", "12", "--out", str(out), "--seed", "3",
              "--no-features", "--quiet")
    assert res.exit_code == 0, res.output
    res = run("data", "info", str(out), "--json")
    info = json.loads(res.output)
    assert info["samples"] == 12 and info["complete"] and info["features"] == {}
    assert info["config"]["seed"] == 3
    assert run("features", str(out), "--quiet").exit_code == 0
    info = json.loads(run("data", "info", str(out), "--json").output)
    assert set(info["features"]) == {"initial", "summary", "temporal"}
    res = run("features", str(out), "--quiet")  # idempotent
    assert res.exit_code == 0 and "already present" in res.output
    text = run("data", "info", str(out)).output
    assert "12 written, complete" in text and "rate" in text

    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    res = run("data", "info", str(bad))
    assert res.exit_code == 1 and "bad.h5: not a readable HDF5 file" in res.output


def test_bad_config_key_is_one_line_naming_file_and_key(fixture_plugins, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[generation]\nn_sampels = 4\n")
    res = run("generate", "good-toy", "--out", str(tmp_path / "x.h5"), "--config", str(cfg))
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == \
        f"error: {cfg}: generation.n_sampels: Extra inputs are not permitted"
    res = run("generate", "good-toy", "--out", str(tmp_path / "x.h5"), "--preset", "huge")
    assert res.exit_code == 1 and "has no preset 'huge'; known: quick, standard" in res.output
