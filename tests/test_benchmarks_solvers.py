"""benchmarks/solvers.py: the quick mode's JSON, every domain measured, the exponax skip path,
and (where exponax is installed) the float64 agreement of the shared equations."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "solvers.py"
FIRST_PARTY = ("fluids", "reaction-diffusion", "waves")
SHARED_EQUATIONS = ("gray-scott", "navier-stokes-vorticity", "wave-constant-speed")


def _load():
    spec = importlib.util.spec_from_file_location("noa_bench_solvers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _installed_domains() -> set[str]:
    from noa_platform.plugins import get_registry

    return set(get_registry().domains)


def test_quick_mode_measures_every_domain_and_skips_exponax_without_it(
        tmp_path, monkeypatch, capsys):
    # None in sys.modules makes `import exponax` raise ImportError, as without the extra.
    monkeypatch.setitem(sys.modules, "exponax", None)
    solvers = _load()
    out = tmp_path / "solvers.json"
    result = solvers.main(["--quick", "--threads", "1", "--out", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) == json.loads(json.dumps(result))

    assert printed["settings"]["sizes"] == [16] and printed["settings"]["quick"]
    assert printed["environment"]["threads"] == 1
    assert printed["exponax"]["status"] == "skipped"
    assert "exponax" in printed["exponax"]["reason"] and ".[bench]" in printed["exponax"]["reason"]

    domains = printed["domains"]
    expected = _installed_domains()
    assert set(domains) == expected
    assert set(FIRST_PARTY) <= expected
    for name, entries in domains.items():
        assert entries, name
        for key, entry in entries.items():
            _, grid, dtype = key.split("/")
            assert grid == "16x16" and dtype in ("float32", "float64"), key
            assert entry["batch"] == 16 and entry["frames"] >= 1
            assert entry["sample_steps"] >= entry["batch"] * entry["frames"]
            assert entry["mcell_steps_per_s_best"] > 0, (name, key)
            assert entry["mcell_steps_per_s_median"] > 0, (name, key)
            assert entry["seconds_best"] <= entry["seconds_median"]
            bound = entry["fft_only"]
            assert bound["ffts_per_step"] > 0 and bound["mcell_steps_per_s"] > 0, (name, key)
            assert entry["fraction_of_fft_bound"] > 0
    # Reaction-diffusion keeps its former keys, also at the top level.
    assert set(domains["reaction-diffusion"]) == {
        f"{k}/16x16/{d}" for k in ("gray-scott", "fitzhugh-nagumo")
        for d in ("float32", "float64")}
    assert printed["reaction_diffusion"] == domains["reaction-diffusion"]
    # Gray–Scott's plan is 40 steps of 1.25 per frame of 50; fluids' steps are counted.
    assert domains["reaction-diffusion"]["gray-scott/16x16/float64"]["steps_per_frame_mean"] == 40
    assert domains["fluids"]["uniform-theta/16x16/float32"]["step_count"] == "counted"


def test_exponax_computes_the_same_trajectories():
    pytest.importorskip("exponax")
    pytest.importorskip("jax")
    solvers = _load()
    result = solvers.exponax_comparison([16], ["float64"], 1, timing=False)
    assert result["status"] == "complete"
    assert set(result["equations"]) == set(SHARED_EQUATIONS)
    for name, eq in result["equations"].items():
        entry = eq["sizes"]["16x16"]
        assert entry["status"] == "complete", (name, entry)
        # Measured on 16², float64: 4e-15 (Gray–Scott), 5e-14 (Navier–Stokes), 4e-14 (waves).
        assert entry["agreement"]["relative_l2"] <= 1e-12, (name, entry["agreement"])
        assert "timing" not in entry
