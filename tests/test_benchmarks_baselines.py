"""benchmarks/baselines.py: the no-extra path always; a tiny toy run where neuraloperator is."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"
TOY = "noa_platform.testing.toy_domain:ToyDomain"


def _load():
    spec = importlib.util.spec_from_file_location("noa_bench_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_the_bench_extra_the_comparison_is_skipped(tmp_path, monkeypatch, capsys):
    # None in sys.modules makes `import neuralop` raise ImportError, as without the extra.
    monkeypatch.setitem(sys.modules, "neuralop", None)
    monkeypatch.setitem(sys.modules, "neuralop.models", None)
    baselines = _load()
    out = tmp_path / "r.json"
    assert baselines.main(["--domain", TOY, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["status"] == "skipped"
    assert "neuraloperator" in printed["reason"] and ".[bench]" in printed["reason"]
    assert not (tmp_path / "r-runs").exists()  # nothing generated or trained


@pytest.mark.slow
def test_fno_baseline_toy_run(tmp_path, capsys):
    pytest.importorskip("neuralop")
    baselines = _load()
    out = tmp_path / "r.json"
    assert baselines.main(["--domain", TOY, "--seeds", "0,1", "--epochs", "2",
                           "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["status"] == "complete"

    p = r["parameters"]
    assert abs(p["fno"]["real_scalars"] / p["u-afno"]["real_scalars"] - 1) <= 0.10
    assert p["relative_difference"] == pytest.approx(
        p["fno"]["real_scalars"] / p["u-afno"]["real_scalars"] - 1)
    assert r["protocol"]["architectures"]["fno"]["name"] == "neuralop-fno"
    assert r["protocol"]["architectures"]["u-afno"]["name"] == "u-afno"

    T = r["dataset"]["shape"][1] - 1  # toy quick preset: 4 steps
    assert r["report_steps"] == [s for s in (1, 8, 32) if s <= T]
    assert [(run["model"], run["seed"]) for run in r["runs"]] == [
        ("u-afno", 0), ("fno", 0), ("u-afno", 1), ("fno", 1)]
    for run in r["runs"]:
        assert run["epochs"] == 2 and run["steps"] > 0
        curve = run["test_vrmse"]
        assert len(curve) == T + 1 and curve[0] == 0.0
        assert all(math.isfinite(v) for v in curve[1:])
    # Same protocol, same budget: both models made the same number of optimizer steps.
    assert len({run["steps"] for run in r["runs"]}) == 1

    for key in ("u-afno", "fno"):
        assert len(r["curves"][key]["mean"]) == len(r["curves"][key]["std"]) == T + 1
        for t in r["report_steps"]:
            cell = r["summary"][key][str(t)]
            runs = [run["test_vrmse"][t] for run in r["runs"] if run["model"] == key]
            assert cell["mean"] == pytest.approx(sum(runs) / 2)
            assert cell["std"] >= 0
    assert len(r["baselines"]["persistence"]) == T + 1
    assert all(v == pytest.approx(1.0) for v in r["baselines"]["spatial_mean"][1:])
    assert "| FNO (" in capsys.readouterr().out

    # The checkpoints hold tensors only, so the platform's weights_only loader reads them.
    from noa_platform.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "r-runs" / "fno-seed0" / "checkpoints" / "best.pt")
    assert "_metadata" not in ckpt["model"]


def test_fno_wrapper_conditions_on_theta_and_returns_a_latent():
    pytest.importorskip("neuralop")
    import torch

    baselines = _load()
    torch.manual_seed(0)
    model = baselines.make_fno(channels=2, n_params=3, n_modes=8, hidden_channels=6, n_layers=2)
    z, theta = torch.randn(4, 2, 16, 16), torch.rand(4, 3)
    out, latent = model.forward_with_latent(z, theta)
    assert out.shape == z.shape and latent.shape == (4, model.latent_channels, 16, 16)
    assert torch.allclose(out, model(z, theta))
    assert not torch.allclose(model(z, theta), model(z, theta + 1))  # θ reaches the output


def test_models_are_evaluated_on_a_stored_split_or_every_sample_of_another_dataset(tmp_path):
    from noa_platform.config import GenerationConfig
    from noa_platform.data.generate import generate
    from noa_platform.data.store import DatasetFile
    from noa_platform.testing.toy_domain import ToyDomain

    baselines, dom = _load(), ToyDomain()
    cfg = GenerationConfig(n_samples=10, n_frames=3, resolution=16, batch_size=5, seed=1,
                           features=False)
    path = generate(dom, cfg, tmp_path / "held-out.h5", progress=False, log=lambda m: None)
    with DatasetFile(path) as ds:
        every = baselines.evaluation_split(ds, "all", dom)
        assert list(every.indices) == list(range(10)) and every.n_frames == 3
        assert every.trajectories(list(range(10))).numpy().tobytes() == \
            ds.trajectories().tobytes()
        expected = dom.conditioning(ds.params("value"))
        assert every.theta.numpy().tolist() == expected.astype("float32").tolist()
        test = baselines.evaluation_split(ds, "test", dom)
        assert list(test.indices) == list(ds.split("test"))
    # "all" of the training dataset would include the training split: refused.
    with pytest.raises(SystemExit, match="--split all evaluates on every sample of "
                                         "--eval-dataset"):
        baselines.main(["--domain", TOY, "--split", "all", "--out", str(tmp_path / "r.json")])
