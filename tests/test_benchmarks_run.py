"""benchmarks/run.py: the smallest configuration end to end in a subprocess, without the bench
extra (exponax, jax and neuraloperator hidden), then benchmarks/report.py on its JSON. Checks
the JSON's shape and that every skipped peer comparison says why; never timings' values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("exponax", "jax", "neuralop")


@pytest.mark.slow
def test_smoke_run_writes_every_section_and_says_why_peers_are_skipped(tmp_path):
    # A module that raises ImportError shadows each peer library, as without the extra.
    shim = tmp_path / "shim"
    shim.mkdir()
    for name in HIDDEN:
        (shim / f"{name}.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    out = tmp_path / "run.json"
    env = {"PYTHONPATH": str(shim), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke",
                           "--domains", "reaction-diffusion", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())

    assert result["benchmark"] == "run" and result["mode"] == "smoke"
    assert result["status"] == "complete"
    env_ = result["environment"]
    assert env_["threads"] == 1 and env_["device"] == "cpu"
    assert len(env_["load_average_start"]) == 3 and len(env_["load_average_end"]) == 3

    solvers = result["solvers"]
    assert solvers["status"] == "complete"
    rd = solvers["domains"]["reaction-diffusion"]
    for kinetics in ("gray-scott", "fitzhugh-nagumo"):
        entry = rd[f"{kinetics}/16x16/float32"]
        assert entry["mcell_steps_per_s_best"] > 0 and entry["fft_only"]["mcell_steps_per_s"] > 0
        assert 0 < entry["fraction_of_fft_bound"]
    assert solvers["exponax"]["status"] == "skipped"
    assert "exponax" in solvers["exponax"]["reason"] and "bench" in solvers["exponax"]["reason"]

    row = result["mno_vs_cno"]["domains"]["reaction-diffusion"]["sizes"]["16x16"]
    assert row["cno_internal_steps_per_frame"] >= 1
    assert row["cno_seconds_per_frame"] > 0 and row["mno_seconds_per_frame"] > 0
    assert row["goal_applies"] == (row["cno_internal_steps_per_frame"] >= 100)

    points = result["growth"]["domains"]["reaction-diffusion"]["points"]
    assert {(p["size"], p["batch"]) for p in points} == {(16, 2), (32, 2), (16, 1)}

    memory = result["training_memory"]
    assert memory["status"] == "complete", memory
    assert [(p["timesteps"], p["bptt_window"]) for p in memory["points"]] == [(8, 4)]
    assert memory["points"][0]["peak_training_mb"] >= 0

    fno = result["mno_vs_fno"]
    assert fno["status"] == "skipped" and "neuraloperator" in fno["reason"]
    assert fno["commands"] and "benchmarks/baselines.py" in fno["commands"][0]
    assert set(result["goals"]) >= {"gray_scott_vs_exponax", "gray_scott_fraction_of_fft_bound",
                                    "mno_10x_where_cno_takes_100_steps"}

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n")
    for _ in range(2):      # the second run replaces the block instead of adding one
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), str(out),
                        "--readme", str(readme)], cwd=ROOT, check=True, timeout=60)
    text = readme.read_text()
    assert text.count("<!-- run.py cpu begin -->") == 1 and "| goal |" in text
    assert "neuraloperator is not installed" in text


def test_report_refuses_a_file_that_is_not_a_run_result(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"benchmark": "solvers"}))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: not a benchmarks/run.py result (no 'benchmark': 'run')"]
