"""Checkpoint retention: best, last, final and the newest ``training.keep_checkpoints`` epoch
files; pruning never costs the ability to resume, even when a kill interrupts it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_training import assert_bitwise_equal, final_weights, pipeline

from noa_platform.training import checkpoint as checkpoint_module
from noa_platform.training import trainer as trainer_module
from noa_platform.training.checkpoint import load_checkpoint, prune_checkpoints

# No tokenizer losses: retention does not depend on them, and the runs stay quick.
QUICK = {"epochs": 3, "lambda_commit": 0.0, "lambda_latent": 0.0, "keep_checkpoints": 1}


def files(run: Path) -> set[str]:
    return {p.name for p in (run / "checkpoints").iterdir()}


@pytest.mark.slow
def test_keeps_best_last_final_and_the_newest_epochs_and_resumes_after_a_kill_in_pruning(
        tmp_path, monkeypatch):
    data = tmp_path / "data.h5"
    ref = tmp_path / "ref"
    pipeline(ref, data, **QUICK).run(stage="mno")
    assert files(ref) == {"best.pt", "last.pt", "final.pt", "epoch-0003.pt"}
    epoch3 = load_checkpoint(ref / "checkpoints" / "epoch-0003.pt")
    assert epoch3["epoch"] == 3 and epoch3["batch"] == 0
    assert_bitwise_equal(epoch3["model"], load_checkpoint(ref / "checkpoints" / "last.pt")["model"])

    # Killed in the middle of the pruning at the end of epoch 2 (epoch-0001.pt about to go):
    # a deletion is atomic, so the folder a kill leaves is the one this exception leaves.
    run = tmp_path / "run"
    original = Path.unlink

    def dying(self, *args, **kwargs):
        if self.name == "epoch-0001.pt":
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.Path, "unlink", dying)
    with pytest.raises(KeyboardInterrupt):
        pipeline(run, data, **QUICK).run(stage="mno")
    monkeypatch.setattr(checkpoint_module.Path, "unlink", original)
    assert files(run) == {"best.pt", "last.pt", "epoch-0001.pt", "epoch-0002.pt"}

    # Resumed, and killed again mid-epoch 3, after pruning took epoch-0001.pt at the start.
    calls = {"n": 0}
    train_batch = trainer_module.Trainer._train_batch

    def interrupted(self, positions):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return train_batch(self, positions)

    monkeypatch.setattr(trainer_module.Trainer, "_train_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline(run, data, **QUICK).run(stage="mno")
    monkeypatch.setattr(trainer_module.Trainer, "_train_batch", train_batch)
    assert files(run) == {"best.pt", "last.pt", "epoch-0002.pt"}

    # Finished with another keep_checkpoints: what a run keeps is not a setting of its result.
    pipeline(run, data, **{**QUICK, "keep_checkpoints": 2}).run(stage="mno")
    assert files(run) == files(ref) | {"epoch-0002.pt"}
    assert_bitwise_equal(final_weights(run), final_weights(ref))


def test_pruning_keeps_the_newest_by_epoch_number_and_removes_dead_temporaries(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("best.pt", "last.pt", "final.pt", "epoch-0009.pt", "epoch-0010.pt",
                 "epoch-10000.pt", "epoch-0002.pt", "notes.txt"):
        (folder / name).write_bytes(b"x")
    dead = folder / "last.pt.tmp-999999999"  # no such process
    alive = folder / f"last.pt.tmp-{os.getpid()}"  # a save in progress
    other = folder / "notes.txt.tmp-999999999"  # not a checkpoint's
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    removed = prune_checkpoints(folder, 2)
    assert {p.name for p in removed} == {"epoch-0002.pt", "epoch-0009.pt", dead.name}
    assert {p.name for p in folder.iterdir()} == {
        "best.pt", "last.pt", "final.pt", "epoch-0010.pt", "epoch-10000.pt", "notes.txt",
        alive.name, other.name}
    assert prune_checkpoints(folder, 0) and not list(folder.glob("epoch-*"))
