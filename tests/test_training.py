"""MNO training: exact resume after interruption, refusals, checkpoint safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from noa_platform.config import resolve_config
from noa_platform.data.generate import generate
from noa_platform.errors import NoaError
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.training import trainer as trainer_module
from noa_platform.training.checkpoint import load_checkpoint, save_checkpoint
from noa_platform.training.pipeline import Pipeline

TINY = {
    "generation": {"n_samples": 24, "n_frames": 6, "resolution": 16, "batch_size": 8},
    "tokenizer": {"steps": 60},
    "mno": {"architecture": {"base_channels": 4, "levels": 2, "modes": 4, "afno_blocks": 1,
                             "num_blocks": 2, "cond_dim": 4}},
    # Every random option is on, so the resume test fails if a draw is not restored.
    "training": {"epochs": 3, "batch_size": 4, "bptt_window": 3, "save_every": 2,
                 "windows_per_sample": 2, "pushforward_steps": 2, "input_noise": 0.5,
                 "curriculum_epochs": 2, "start_at_zero": 0.25,
                 "lambda_commit": 0.1, "lambda_latent": 0.1, "ema_decay": 0.9,
                 "warmup_steps": 3,
                 "early_stop_patience": 10},
}


def pipeline(run_dir: Path, dataset: Path, *, log=lambda m: None, report_split: str = "test",
             **training) -> Pipeline:
    overrides = {**TINY, "training": {**TINY["training"], **training}}
    cfg = resolve_config(overrides=overrides)
    return Pipeline(ToyDomain(), cfg, run_dir, dataset=dataset, device="cpu", progress=False,
                    log=log, report_split=report_split)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"training_model.{k}": v for k, v in state.get("training_model", {}).items()},
            **{f"projector.{k}": v for k, v in state["projector"].items()}}


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_interrupted_training_resumes_bitwise(tmp_path, monkeypatch):
    data = tmp_path / "data.h5"
    pipeline(tmp_path / "ref", data).run(stage="mno")
    reference = final_weights(tmp_path / "ref")

    calls = {"n": 0}
    original = trainer_module.Trainer._train_batch

    def dying(self, positions):
        calls["n"] += 1
        if calls["n"] in (7, 12):  # mid-epoch 2, then again in epoch 3
            raise KeyboardInterrupt
        return original(self, positions)

    monkeypatch.setattr(trainer_module.Trainer, "_train_batch", dying)
    run = tmp_path / "run"
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            pipeline(run, data).run(stage="mno")
    pipeline(run, data).run(stage="mno")
    assert_bitwise_equal(final_weights(run), reference)
    # The step log was cut back to the checkpoint before continuing: no step twice.
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "val_traj" not in line]
    assert steps == sorted(set(steps)) and steps[-1] == load_checkpoint(
        run / "checkpoints" / "final.pt")["step"]


def test_tokenizer_is_refitted_when_the_feature_definition_changes(tmp_path):
    data, run = tmp_path / "data.h5", tmp_path / "run"
    logs: list[str] = []
    p = pipeline(run, data)
    p.log = logs.append
    p.run(stage="tokenizer")
    p.run(stage="tokenizer")
    assert sum("is up to date" in m for m in logs) == 1
    # A tokenizer fitted on the same trajectories and column names, read by an older
    # definition of a family (what a run left before the definition changed).
    stamp = run / "tokenizer" / "provenance.json"
    old = json.loads(stamp.read_text())
    old["feature_versions"]["summary"] = "0"
    stamp.write_text(json.dumps(old))
    logs.clear()
    p.run(stage="tokenizer")
    assert not any("tokenizer in" in m and "is up to date" in m for m in logs)
    assert any("training the tokenizer" in m for m in logs)


def test_resume_refuses_another_config_or_dataset(tmp_path):
    data = tmp_path / "data.h5"
    pipeline(tmp_path / "a", data, epochs=1).run(stage="mno")
    ckpt = tmp_path / "a" / "checkpoints" / "last.pt"
    with pytest.raises(NoaError, match=r"another config \(training.lr: 0.001 in the checkpoint, "
                                       r"0.01 now\)"):
        pipeline(tmp_path / "b", data, epochs=1, lr=0.01).run(stage="mno", resume=ckpt)
    # Same settings, but a dataset made with another seed: only the fingerprint differs.
    other = tmp_path / "other.h5"
    cfg = resolve_config(overrides=TINY)
    generate(ToyDomain(), cfg.generation.model_copy(update={"seed": 5}), other,
             progress=False, log=lambda m: None)
    with pytest.raises(NoaError, match="trained on another dataset"):
        pipeline(tmp_path / "c", other, epochs=1).run(stage="mno", resume=ckpt)


@pytest.mark.slow
def test_the_report_reads_the_val_split_when_asked(tmp_path):
    from noa_platform.data.store import DatasetFile

    data, logs, run = tmp_path / "data.h5", [], tmp_path / "run"
    path = pipeline(run, data, epochs=1, log=logs.append, report_split="val").run()
    with DatasetFile(data) as ds:
        sizes = {s: len(ds.split(s)) for s in ("val", "test")}
    assert sizes["val"] != sizes["test"]  # so the sample count tells the splits apart
    report = json.loads(path.read_text())
    assert (report["split"], report["samples"]) == ("val", sizes["val"])
    assert f"validation on {sizes['val']} val samples" in logs[-1]
    # The worst-read samples name the feature columns that carry their error, largest first.
    for worst in report["tokenizer_worst_samples"]:
        errors = [c["error"] for c in worst["columns"]]
        assert len(errors) == 5 and errors == sorted(errors, reverse=True)
        assert all("." in c["column"] for c in worst["columns"])
    # The same run folder reports on the test split by default, reusing the trained MNO.
    report = json.loads(pipeline(run, data, epochs=1).run().read_text())
    assert (report["split"], report["samples"]) == ("test", sizes["test"])


def test_checkpoints_load_without_pickle_and_refuse_garbage(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"model": {"w": torch.ones(2)}, "step": 3})
    assert load_checkpoint(path)["step"] == 3
    bad = tmp_path / "bad.pt"
    torch.save({"format": "noa-mno-checkpoint", "format_version": 1, "x": object()}, bad)
    with pytest.raises(NoaError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    (tmp_path / "trunc.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(NoaError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "trunc.pt")


def test_nonfinite_updates_are_skipped_then_stop(tmp_path, monkeypatch):
    p = pipeline(tmp_path / "r", tmp_path / "d.h5", lambda_commit=0.0, lambda_latent=0.0,
                 max_nonfinite=2)
    original = trainer_module.TrajectoryLoss.__call__

    def nan_loss(self, window):
        return original(self, window) * float("nan")

    monkeypatch.setattr(trainer_module.TrajectoryLoss, "__call__", nan_loss)
    with pytest.raises(trainer_module.TrainingError, match="3 updates had a non-finite loss"):
        p.run(stage="mno")


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_is_bitwise(tmp_path, fixture_plugins):
    """Kill `noa train` with SIGKILL three times at different moments; the result is unchanged."""
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[generation]\nn_samples = 24\nn_frames = 6\nresolution = 16\nbatch_size = 8\n"
        "[tokenizer]\nsteps = 60\n"
        "[mno.architecture]\nbase_channels = 4\nlevels = 2\nmodes = 4\nafno_blocks = 1\n"
        "num_blocks = 2\ncond_dim = 4\n"
        "[training]\nepochs = 4\nbatch_size = 2\nbptt_window = 3\nsave_every = 5\n"
        "lambda_commit = 0.1\nwarmup_steps = 3\nearly_stop_patience = 10\n"
        "pushforward_steps = 2\ninput_noise = 0.5\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fixture_plugins),
                                                        os.environ.get("PYTHONPATH", "")])}
    data = tmp_path / "data.h5"

    def command(run: Path) -> list[str]:
        return [sys.executable, "-m", "noa_platform", "train", "good-toy", "--config",
                str(config), "--dataset", str(data), "--run-dir", str(run), "--stage", "mno",
                "--device", "cpu", "--quiet"]

    subprocess.run(command(tmp_path / "ref"), env=env, check=True, capture_output=True)
    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    log = run / "metrics.jsonl"

    def steps_logged() -> int:
        return log.read_text().count('"loss"') if log.exists() else 0

    for wait_for in (3, 11, 23):  # kill once this many optimizer steps are logged
        proc = subprocess.Popen(command(run), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if steps_logged() >= wait_for:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (ckpts / "final.pt").exists()
    done = subprocess.run(command(run), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from it" in done.stderr
    assert_bitwise_equal(final_weights(run), final_weights(tmp_path / "ref"))


def test_windows_cover_the_whole_horizon_and_statistics_use_every_frame(tmp_path):
    """Windows start anywhere in the stored horizon (a share at frame 0); normalization comes
    from every frame; the operator is conditioned on canonical, masked θ."""
    p = pipeline(tmp_path / "r", tmp_path / "d.h5", lambda_commit=0.0, lambda_latent=0.0,
                 pushforward_steps=0, input_noise=0.0, curriculum_epochs=0, bptt_window=2,
                 start_at_zero=0.25)
    with p.prepare_dataset() as ds:
        train = trainer_module.SplitData.load(ds, "train", p.domain.conditioning)
        val = trainer_module.SplitData.load(ds, "val", p.domain.conditioning)
        all_frames = torch.from_numpy(ds.h5["trajectories"][ds.split("train")])
        values = ds.params("value")[ds.split("train")]
    assert train.n_frames == 6 and train.trajectories([0]).shape[1] == 7
    mean, std, inc = train.statistics()
    flat = all_frames.double().transpose(0, 2).reshape(2, -1)
    torch.testing.assert_close(mean.double(), flat.mean(1), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(std.double(), flat.std(1), rtol=1e-6, atol=1e-7)
    inc_ref = (all_frames[:, 1:] - all_frames[:, :-1]).double().transpose(0, 2).reshape(2, -1)
    torch.testing.assert_close(inc.double(), inc_ref.std(1), rtol=1e-6, atol=1e-7)
    # Conditioning: categorical at its bin centre, whatever the raw Sobol value.
    assert set(train.theta[:, 2].tolist()) <= {0.25, 0.75}
    np.testing.assert_allclose(train.theta.numpy(), p.domain.conditioning(values))

    operator = p.build_operator(train)
    t = trainer_module.Trainer(operator, p.config, train, val, tmp_path / "r",
                               dataset_fingerprint="x", progress=False, log=lambda m: None)
    starts = []
    for batch in range(200):
        w = t._window(np.arange(4), trainer_module.batch_generator(0, 0, batch))
        assert w.pred.shape == w.true.shape == (4, 3, 2, 16, 16)
        truth = train.trajectories(np.arange(4))
        for i in range(4):  # the window's truth is a contiguous run of stored frames
            s = [f for f in range(5) if torch.equal(truth[i, f], w.true[i, 0])]
            assert s and torch.equal(truth[i, s[0]:s[0] + 3], w.true[i])
            starts.append(s[0])
    counts = np.bincount(starts, minlength=5)
    assert counts.min() > 0  # every admissible start frame 0..T-W occurs
    # P(start 0) = 0.25 + 0.75/5 = 0.4; 800 draws: 320 ± 14
    assert 270 < counts[0] < 370
    # Same (seed, epoch, batch): same windows.
    a = t._window(np.arange(4), trainer_module.batch_generator(0, 1, 7)).true
    b = t._window(np.arange(4), trainer_module.batch_generator(0, 1, 7)).true
    assert torch.equal(a, b)


def test_operator_predicts_a_scaled_increment():
    class Shift(torch.nn.Module):
        def forward(self, z, theta):
            return z + 1.0  # "one increment-std up"

    mean, std, inc = torch.tensor([1.0, -2.0]), torch.tensor([2.0, 3.0]), torch.tensor([0.1, 0.5])
    op = trainer_module.NeuralOperator(Shift(), mean, std, inc)
    u = torch.randn(3, 2, 4, 4)
    out = op(u, torch.zeros(3, 1))
    torch.testing.assert_close(out - u, inc.view(1, 2, 1, 1).expand_as(u))
    # Without increment statistics the wrapper is the plain normalized map.
    plain = trainer_module.NeuralOperator(Shift(), mean, std)
    torch.testing.assert_close(plain(u, None), u + std.view(1, 2, 1, 1))


def test_weight_average_follows_its_recurrence_and_copies_buffers():
    from noa_platform.training.averaging import WeightAverage

    model = torch.nn.BatchNorm1d(3).double()        # a weight, a bias and running buffers
    avg = WeightAverage(model, decay=0.9)
    expected = model.weight.detach().clone()
    for n in range(1, 40):
        with torch.no_grad():
            model.weight.copy_(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) * n)
            model.running_mean.fill_(n)
        avg.update(model)
        # Written out from the docstring: the n-th update decays at min(0.9, (1+n)/(10+n)).
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * model.weight.detach()
        torch.testing.assert_close(avg.model.weight, expected, rtol=1e-15, atol=0)
    assert avg.model.running_mean.tolist() == [39.0] * 3      # copied, not averaged
    assert avg.updates == 39 and not avg.model.weight.requires_grad
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(model, decay=1.0)


def test_the_weight_average_is_what_is_validated_and_kept(tmp_path):
    data = tmp_path / "data.h5"
    generate(ToyDomain(), resolve_config(overrides=TINY).generation, data, progress=False)
    p = pipeline(tmp_path / "run", data, epochs=2)
    p.run("mno")
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    # Both weight sets are stored, they differ, and the one to use is the average.
    assert best["model"].keys() == best["training_model"].keys()
    assert any(not torch.equal(best["model"][k], best["training_model"][k])
               for k in best["model"])
    assert best["average_updates"] == best["step"]
    # "model" is the average: its rollouts give the validation VRMSE the best epoch logged,
    # the raw weights' do not.
    from noa_platform.data.store import DatasetFile
    from noa_platform.evaluation.rollout_metrics import vrmse_per_step
    from noa_platform.training.data import SplitData

    with DatasetFile(data) as ds:
        operator = p.build_operator(SplitData.load(ds, "train", ToyDomain().conditioning))
        val = SplitData.load(ds, "val", ToyDomain().conditioning)
    true = val.trajectories(np.arange(len(val)))

    def val_vrmse(weights: dict[str, torch.Tensor]) -> float:
        operator.load_state_dict(weights)
        with torch.no_grad():
            pred = operator.eval().rollout(true[:, 0], val.theta, val.n_frames)
        return float(vrmse_per_step(pred, true)[1:].mean())

    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
              .splitlines()]
    best_logged = min(r["val_vrmse"] for r in logged if "val_vrmse" in r)
    assert val_vrmse(best["model"]) == pytest.approx(best_logged, rel=1e-6)
    assert val_vrmse(best["training_model"]) != pytest.approx(best_logged, rel=1e-6)


def test_per_sample_trajectory_loss_weighs_faint_samples_like_bright_ones():
    from noa_platform.training.losses import TrajectoryLoss, Window

    g = torch.Generator().manual_seed(0)
    true = torch.randn(2, 3, 1, 8, 8, generator=g, dtype=torch.float64)
    true[1] *= 0.1  # a faint sample: a tenth of the spread
    pred = true + 0.01 * torch.randn(true.shape, generator=g, dtype=torch.float64)
    pred[1] = true[1] + 0.1 * (pred[1] - true[1])  # ... and an error a tenth as large
    w = Window(pred=pred, true=true, std=torch.ones(1, 1, 1, 1, dtype=torch.float64),
               latents={})
    err = (pred[:, 1:] - true[:, 1:]).square().mean(dim=(1, 2, 3, 4))
    # Plain: the faint sample's error is 1 % of the bright one's and barely counts.
    assert TrajectoryLoss()(w).item() == pytest.approx(err.mean().item(), rel=1e-12)
    # Per sample: each error over its own spatial variance (mean over the window's frames).
    var = true[:, 1:].var(dim=(-2, -1)).mean(dim=(1, 2))
    expected = (err / var.clamp_min(1e-3)).mean().item()
    assert TrajectoryLoss(per_sample=1e-3)(w).item() == pytest.approx(expected, rel=1e-12)
    terms = err / var
    assert terms[1] / terms[0] == pytest.approx(1.0, rel=0.5)  # now comparable
    # The floor: a uniform sample's error is divided by the floor, not by ~0.
    true[1] = 0.3
    pred[1] = 0.3 + 1e-3
    assert TrajectoryLoss(per_sample=0.05)(w).item() < 1e-3


def test_increment_cutoff_removes_exactly_the_modes_above_it():
    # An architecture whose increment is one plane wave per shell of |k| = 1..8 on a 16² grid
    # (k_max = 8): the cutoff 0.5 keeps |k| <= 4, the rest must vanish from the increment and
    # the kept waves must pass unchanged; the state's own high modes are not touched.
    n = 16
    x = torch.arange(n, dtype=torch.float64) * 2 * torch.pi / n
    waves = {k: torch.cos(k * x)[None, :].expand(n, n) for k in range(1, 9)}

    class Waves(torch.nn.Module):
        def forward(self, z, theta):
            return z + sum(waves.values()).to(z.dtype)

    one, zero = torch.ones(1), torch.zeros(1)
    u = torch.randn(2, 1, n, n, dtype=torch.float64)
    op = trainer_module.NeuralOperator(Waves(), zero, one, one, increment_cutoff=0.5).double()
    inc = op(u, None) - u
    expected = sum(waves[k] for k in range(1, 5))
    torch.testing.assert_close(inc, expected.expand_as(inc), rtol=0, atol=1e-13)
    unfiltered = trainer_module.NeuralOperator(Waves(), zero, one, one).double()
    torch.testing.assert_close(unfiltered(u, None) - u, sum(waves.values()).expand_as(u),
                               rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="increment_cutoff"):
        trainer_module.NeuralOperator(Waves(), zero, one, one, increment_cutoff=1.5)
