"""Broken plugins of each kind, as a user meets them on the command line.

Load-time faults (import error, a hook with a wrong signature or a misspelled name, a hook that
raises or returns the wrong type, a domain missing attributes, a module that calls sys.exit,
another API version, a duplicate domain) are failed plugins: `noa plugins list` shows each with
status `failed` and its reason, and the conformance kit cannot be pointed at them (one line
naming the failed plugins). Run-time faults of a plugin that loads (a solver returning NaN, the
wrong shape, or never returning) are the kit's to find: `noa plugins check` fails the check
named after the fault, and a hang costs one time limit. Throughout, the host keeps working: the
other domains are listed and a command on a healthy domain runs.

The fixture plugins are distributions written to a folder on ``sys.path`` (see
``plugin_fixtures.py``), discovered in this process; nothing is installed.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from click.testing import CliRunner
from plugin_fixtures import RUNTIME_FAULTS, write_distribution

from noa_platform.api import Invariant
from noa_platform.cli import main
from noa_platform.plugins import get_registry
from noa_platform.testing import ToyDomain, check_domain
from noa_platform.testing.kit import CHECKS
from noa_platform.testing.time_limit import CheckTimedOut, time_limit

#: What `plugins list` must say about each load-time fault of plugin_fixtures.FIXTURES.
LOAD_FAULTS = {
    "b-import-error": "import failed: RuntimeError: this plugin is broken on purpose",
    "c-bad-signature": "invalid hook implementation",
    "d-misspelled": "unknown hook(s) noa_domain",
    "e-wrong-api": "targets plugin API 99, this platform provides 2",
    "g-hook-raises": "hook noa_domains raised KeyError: 'grid'",
    "h-wrong-type": "hook noa_domains returned a str, expected Domain",
    "i-incomplete": ("hook noa_domains returned domain 'incomplete', whose declaration is "
                     "incomplete: AttributeError: 'Incomplete' object has no attribute 'version'"),
    "j-exits": "import failed: SystemExit: usage: noa_fixture_exits FILE",
    "z-duplicate": "domain name 'good-toy' is already provided by plugin 'a-good'",
}


@pytest.fixture
def plugins(fixture_plugins):
    """Every fixture plugin, the solver faults included, discovered afresh."""
    for ep_name, (dist, module, source) in RUNTIME_FAULTS.items():
        write_distribution(fixture_plugins, ep_name, dist, module, source)
    get_registry.cache_clear()
    yield fixture_plugins
    get_registry.cache_clear()


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def rows(output: str) -> dict[str, list[str]]:
    """`plugins check` table rows by check name: [status, seconds, reason]."""
    out = {}
    names = {c.name for c in CHECKS}
    for line in output.splitlines():
        name, *rest = line.split(maxsplit=3) or [""]
        if name in names:
            out[name] = rest
    return out


def test_plugins_list_shows_each_broken_plugin_with_its_reason(plugins):
    res = cli("plugins", "list")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for name, reason in LOAD_FAULTS.items():
        i = next(k for k, line in enumerate(lines) if line.split()[0] == name)
        assert lines[i].split()[1] == "failed", lines[i]
        assert lines[i + 1].strip().startswith("error: ") and reason in lines[i + 1], lines[i + 1]
    statuses = {line.split()[0]: line.split()[1] for line in lines if not line[0].isspace()}
    # A plugin whose solver is faulty loads: only running the solver can show the fault.
    assert statuses["s-solver-faults"] == statuses["a-good"] == "loaded"
    assert statuses["noa-platform"] == "loaded"


def test_plugins_list_check_shows_the_solver_faults_under_their_plugin(plugins, monkeypatch):
    """A plugin with faulty solvers loads; `plugins list --check` runs the kit on its domains
    and names each one's first failing check under it. (At 1 s a check of the architecture
    may time out too; the first failing check is the solver's.)"""
    monkeypatch.setenv("NOA_PLUGINS", "s-solver-faults")
    get_registry.cache_clear()
    res = cli("plugins", "list", "--check", "--timeout", "1")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("s-solver-faults "))
    assert lines[i].split()[1] == "loaded"
    kit = [line.strip() for line in lines[i + 1:i + 4]]
    assert kit[0].startswith("kit: nan-toy: does NOT conform: finite_over_horizon: non-finite")
    assert kit[1].startswith("kit: shape-toy: does NOT conform: rollout_shape: rollout of 2 "
                             "frames for 2 samples gave [2, 2, 16, 16]")
    assert kit[2].startswith("kit: hang-toy: does NOT conform: rollout_shape: timed out after 1s")


def test_the_host_keeps_working_beside_broken_plugins(plugins, tmp_path):
    res = cli("domains", "list")
    assert res.exit_code == 0, res.output
    listed = {line.split()[0] for line in res.output.splitlines()}
    assert {"good-toy", "nan-toy", "shape-toy", "hang-toy"} <= listed
    assert "future-toy" not in listed  # the wrong-API plugin's domain is not offered
    assert "incomplete" not in listed  # nor one that would break the listing of the others
    res = cli("domains", "show", "good-toy", "--json")  # claimed twice: the first owner's
    assert res.exit_code == 0 and '"plugin": "a-good"' in res.output, res.output
    out = tmp_path / "ok.h5"
    res = cli("generate", "good-toy", "--n", "2", "--out", str(out), "--no-features", "--quiet")
    assert res.exit_code == 0, res.output
    assert out.is_file()


def test_the_kit_on_a_failed_plugins_domain_names_the_failed_plugins(plugins):
    res = cli("plugins", "check", "future-toy")
    assert res.exit_code == 1
    (line,) = res.output.strip().splitlines()
    assert line.startswith("error: unknown domain 'future-toy'; known: ")
    assert "good-toy" in line
    assert ("failed plugins: b-import-error, c-bad-signature, d-misspelled, e-wrong-api, "
            "g-hook-raises, h-wrong-type, i-incomplete, j-exits, z-duplicate; see "
            "`noa plugins list`") in line


def test_naming_a_domain_after_its_failed_or_skipped_plugin_gives_that_plugins_reason(
        plugins, monkeypatch):
    res = cli("plugins", "check", "e-wrong-api")
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: unknown domain 'e-wrong-api': plugin 'e-wrong-api' failed to load: targets "
        "plugin API 99, this platform provides 2; see `noa plugins list`")
    monkeypatch.setenv("NOA_DISABLE_PLUGINS", "noa-fixture-good")  # by distribution name
    get_registry.cache_clear()
    res = cli("domains", "show", "noa-fixture-good")
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: unknown domain 'noa-fixture-good': plugin 'a-good' was skipped: disabled by "
        "NOA_DISABLE_PLUGINS; see `noa plugins list`")


@pytest.mark.parametrize("env", [{"NOA_PLUGINS": ""},
                                 {"NOA_DISABLE_PLUGINS": "a-good,z-duplicate"}])
def test_a_domain_hidden_by_the_selection_variables_says_so(plugins, monkeypatch, env, tmp_path):
    """An empty or stale NOA_PLUGINS / NOA_DISABLE_PLUGINS is the likely reason a domain is
    missing: the error names the skipped plugins beside the failed ones."""
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    get_registry.cache_clear()
    res = cli("generate", "good-toy", "--n", "2", "--out", str(tmp_path / "x.h5"))
    assert res.exit_code == 1
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: unknown domain 'good-toy'; known: ")
    assert "skipped plugins: a-good" in line and line.endswith("; see `noa plugins list`)")


def test_the_kit_fails_a_solver_that_returns_nan_as_not_finite_only(plugins):
    res = cli("plugins", "check", "nan-toy")
    assert res.exit_code == 1, res.output
    table = rows(res.output)
    assert table["finite_over_horizon"][0] == "fail"
    assert table["finite_over_horizon"][2].startswith("non-finite frame 1 of 4 at θ {")
    # NaN replays as NaN: replay and batch independence hold, they must not take the blame.
    assert table["replay"][0] == table["batch_independence"][0] == "pass"
    assert "domain 'nan-toy' does NOT conform: 15 passed, 1 failed" in res.output


def test_the_kit_fails_a_solver_that_returns_the_wrong_shape(plugins):
    report = check_domain(get_registry().domain("shape-toy"),
                          select=[c.name for c in CHECKS if c.runs_solver])
    assert report["rollout_shape"].status == "fail"
    assert report["rollout_shape"].reason == (
        "rollout of 2 frames for 2 samples gave [2, 2, 16, 16], expected [2, 3, 2, 16, 16] "
        "(frame 0 plus 2 frames)")


@pytest.mark.parametrize("domain, fragment", [
    ("nan-toy", ("the solver returned NaN or infinite values for samples 0, 1, 2, 3 (sample 0: "
                "θ {'rate': ")),
    ("shape-toy", ("the solver returned [4, 2, 16, 16] for samples 0..3, expected "
                  "[4, 5, 2, 16, 16] [samples, frames + 1, channels, *grid]")),
])
def test_generating_with_a_faulty_solver_is_one_line_and_stores_nothing(plugins, tmp_path,
                                                                       domain, fragment):
    out = tmp_path / "x.h5"
    res = cli("generate", domain, "--n", "4", "--out", str(out), "--quiet")
    assert res.exit_code == 1 and res.exception is not None  # SystemExit, not a crash
    assert isinstance(res.exception, SystemExit), res.exception
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: domain {domain!r}: ") and fragment in line, line
    assert line.endswith(f"`noa plugins check {domain}` runs the conformance kit on its solver")
    assert not out.exists()
    assert not list((tmp_path / "x.h5.partial").glob("batch-*"))  # no batch of it kept


def test_a_hanging_solver_fails_one_check_and_the_rest_are_not_run(plugins):
    res = cli("plugins", "check", "hang-toy", "--timeout", "0.5")
    assert res.exit_code == 1, res.output
    table = rows(res.output)
    assert table["rollout_shape"][0] == "fail"
    assert table["rollout_shape"][2].startswith("timed out after 0.5s: a hang")
    solver_checks = [c.name for c in CHECKS if c.runs_solver]
    after = solver_checks[solver_checks.index("rollout_shape") + 1:]
    assert all(table[n] == ["skip", "0.00s", "not run: the solver hung in rollout_shape"]
               for n in after), res.output
    # The declarations do not call the solver and are still checked.
    assert table["attributes"][0] == table["initial_conditions"][0] == "pass"
    # The alarm is gone, and the host still works.
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert cli("domains", "show", "good-toy").exit_code == 0


def test_a_hang_outside_the_solver_fails_its_check_only():
    """An invariant that never returns fails `invariants_signature` on time; the solver did
    not hang, so the solver checks after it still run."""
    def forever(u, grid, theta):
        while True:
            time.sleep(0.01)

    domain = ToyDomain("toy-hanging-invariant")
    domain.invariants = {"mean": Invariant("mean", forever)}
    report = check_domain(domain, select=["invariants_signature", "rollout_shape"], timeout=0.3)
    assert report["invariants_signature"].status == "fail"
    assert report["invariants_signature"].reason.startswith("timed out after 0.3s")
    assert report["rollout_shape"].status == "pass"


def test_an_unusable_timeout_is_a_usage_error(plugins):
    for bad in ("0", "-1", "nan", "soon"):
        res = cli("plugins", "check", "good-toy", "--timeout", bad)
        assert res.exit_code == 2, (bad, res.output)
        assert "--timeout" in res.output
    with pytest.raises(ValueError, match="timeout must be a positive"):
        check_domain(ToyDomain(), timeout=0)


def test_time_limit_interrupts_python_code_that_swallows_exceptions():
    def stubborn():
        end = time.monotonic() + 3  # bounded, so a limit that gets swallowed fails the test
        while time.monotonic() < end:
            try:
                time.sleep(0.01)
            except Exception:  # noqa: BLE001, S110 -- a blanket handler must not eat the limit
                pass

    start = time.monotonic()
    with pytest.raises(CheckTimedOut, match="timed out after 0.2s"), time_limit(0.2):
        stubborn()
    assert time.monotonic() - start < 2


def test_time_limit_restores_an_outer_alarm():
    def outer(signum, frame):
        raise AssertionError("the outer alarm is not due yet")

    old = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with time_limit(5):
            time.sleep(0.01)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 20 < left < 30  # the outer timer runs on, less the time spent inside
        assert signal.getsignal(signal.SIGALRM) is outer
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_time_limit_off_the_main_thread_runs_unlimited():
    """SIGALRM only reaches the main thread; elsewhere the check runs without a limit rather
    than failing (documented in docs/plugin-guide.md)."""
    done = []

    def work():
        with time_limit(0.05):
            time.sleep(0.2)
        done.append(True)

    t = threading.Thread(target=work)
    t.start()
    t.join(5)
    assert done == [True]
