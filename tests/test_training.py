"""MNO training: exact resume after interruption, refusals, checkpoint safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from noa_platform.config import resolve_config
from noa_platform.data.generate import generate
from noa_platform.errors import NoaError
from noa_platform.training import trainer as trainer_module
from noa_platform.training.checkpoint import load_checkpoint, save_checkpoint
from noa_platform.training.pipeline import Pipeline
from noa_platform.testing.toy_domain import ToyDomain

TINY = {
    "generation": {"n_samples": 24, "n_frames": 6, "resolution": 16, "batch_size": 8},
    "tokenizer": {"steps": 60},
    "mno": {"architecture": {"base_channels": 4, "levels": 2, "modes": 4, "afno_blocks": 1,
                             "num_blocks": 2, "cond_dim": 4}},
    "training": {"epochs": 3, "batch_size": 4, "bptt_window": 3, "save_every": 4,
                 "lambda_commit": 0.1, "lambda_latent": 0.1, "warmup_steps": 3,
                 "early_stop_patience": 10},
}


def pipeline(run_dir: Path, dataset: Path, **training) -> Pipeline:
    overrides = {**TINY, "training": {**TINY["training"], **training}}
    cfg = resolve_config(overrides=overrides)
    return Pipeline(ToyDomain(), cfg, run_dir, dataset=dataset, device="cpu", progress=False,
                    log=lambda m: None)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()},
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


def test_resume_refuses_another_config_or_dataset(tmp_path):
    data = tmp_path / "data.h5"
    pipeline(tmp_path / "a", data, epochs=1).run(stage="mno")
    ckpt = tmp_path / "a" / "checkpoints" / "epoch_001.pt"
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
    original = trainer_module.Trainer._window_loss

    def nan_loss(self, *args):
        loss, parts, u, past = original(self, *args)
        return loss * float("nan"), parts, u, past

    monkeypatch.setattr(trainer_module.Trainer, "_window_loss", nan_loss)
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
        "lambda_commit = 0.1\nwarmup_steps = 3\nearly_stop_patience = 10\n")
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
    for wait_for in (1, 3, 6):  # kill once this many step/epoch checkpoints exist
        proc = subprocess.Popen(command(run), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if ckpts.exists() and len([p for p in ckpts.glob("*.pt")
                                       if p.name != "last.pt"]) >= wait_for:
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
