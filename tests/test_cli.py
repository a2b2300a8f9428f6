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
