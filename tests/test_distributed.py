"""Data-parallel training: 2 gloo processes train like 1, only rank 0 writes, resume continues.

The processes are started with ``torch.multiprocessing.spawn`` and the environment ``torchrun``
would give them (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR/PORT``), so they join
through the same code as ``torchrun -m noa_platform train``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from noa_platform.config import resolve_config
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.tokenizer.quantizers import EMAVectorQuantizer
from noa_platform.training import trainer as trainer_module
from noa_platform.training.distributed import Ranks
from noa_platform.training.pipeline import Pipeline

# A global batch of 3 splits 2 + 1 over two processes (losses weighted by share), and the last
# batch of each epoch (19 trajectories) holds 1 sample, which leaves rank 1 an empty share.
# Both alignment losses are on, so the projector (used outside forward) is data-parallel too;
# the weight average is on, so validation and the resumed checkpoint go through it.
TINY = {
    "generation": {"n_samples": 24, "n_frames": 6, "resolution": 16, "batch_size": 8},
    "tokenizer": {"steps": 12},
    "mno": {"architecture": {"base_channels": 4, "levels": 2, "modes": 4, "afno_blocks": 1,
                             "num_blocks": 2, "cond_dim": 4}},
    "training": {"epochs": 2, "batch_size": 3, "bptt_window": 3, "save_every": 2,
                 "windows_per_sample": 1, "pushforward_steps": 2, "input_noise": 0.5,
                 "curriculum_epochs": 2, "start_at_zero": 0.25, "lambda_commit": 0.1,
                 "lambda_latent": 0.1, "ema_decay": 0.9, "warmup_steps": 3,
                 "early_stop_patience": 10},
}
INTERRUPT_AT = 5  # the 5th batch of the first start fails; last.pt holds step 4
WRITE_EVENTS = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate",
                "shutil.rmtree", "shutil.move", "shutil.copyfile"}


class Interrupted(Exception):
    pass


def pipeline(run: Path, data: Path) -> Pipeline:
    return Pipeline(ToyDomain(), resolve_config(overrides=TINY), run, dataset=data,
                    device="cpu", progress=False, log=lambda m: None)


def record_writes(root: Path, out: list[str]) -> None:
    """Record, through Python's audit hooks, every file operation under ``root`` that writes:
    opening for writing, renames (every atomic write ends in one), removals, new folders."""
    prefix = str(root)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                      else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
            if writes and str(path).startswith(prefix):
                out.append(f"open {path}")
        elif event in WRITE_EVENTS and any(str(a).startswith(prefix) for a in args):
            out.append(f"{event} {args}")

    sys.addaudithook(hook)


def worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    root_path = Path(root)
    run, data = root_path / "ddp", root_path / "data.h5"
    writes: list[str] = []
    record_writes(run, writes)

    # First start: every process fails at the same batch, as a job killed mid-epoch.
    original, calls = trainer_module.Trainer._train_batch, {"n": 0}

    def failing(self, positions):
        calls["n"] += 1
        if calls["n"] == INTERRUPT_AT:
            raise Interrupted
        return original(self, positions)

    trainer_module.Trainer._train_batch = failing
    try:
        pipeline(run, data).run(stage="mno")
    except Interrupted:
        pass
    finally:
        trainer_module.Trainer._train_batch = original
    if rank == 0:  # kept for a single process to resume from
        shutil.copyfile(run / "checkpoints" / "last.pt", root_path / "interrupted.pt")
    # Second start: finds last.pt and resumes from it on every process.
    pipeline(run, data).run(stage="mno")
    (root_path / f"writes-{rank}.json").write_text(json.dumps(writes))
    torch.save(synchronized_codebook(rank, world), root_path / f"codebook-{rank}.pt")


def synchronized_codebook(rank: int, world: int) -> dict[str, torch.Tensor]:
    """An EMA codebook with ``sync_distributed``: k-means on each rank's own latents (rank 0's
    result is broadcast), one EMA step on this rank's share of a batch (statistics summed over
    ranks), dead-code restarts (rank 0's broadcast); beside it the same steps in one process
    on the whole batch."""
    gen = torch.Generator().manual_seed(3)
    init, batch = torch.randn(20 * world, 4, generator=gen), torch.randn(6 * world, 4,
                                                                          generator=gen)
    synced = EMAVectorQuantizer(4, 6, seed=rank)  # ranks disagree until synchronized
    synced.sync_distributed = True
    alone = EMAVectorQuantizer(4, 6, seed=0)
    synced.kmeans_init(init[20 * rank:20 * (rank + 1)])
    alone.kmeans_init(init[:20])
    mine = batch[6 * rank:6 * (rank + 1)]
    synced.ema_update(mine, synced.quantize(mine)[1])
    alone.ema_update(batch, alone.quantize(batch)[1])
    out = {f"ema.{k}": v.clone() for k, v in synced.state_dict().items()}
    out |= {f"alone.{k}": v.clone() for k, v in alone.state_dict().items()}
    synced.usage[:3] = 0.0  # three dead codes
    out["restarted"] = torch.tensor(synced.restart_dead(mine))
    out |= {f"restart.{k}": v.clone() for k, v in synced.state_dict().items()}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_and_wait(fn, args: tuple, nprocs: int, timeout: float) -> None:
    """``mp.spawn`` that fails after ``timeout`` seconds instead of hanging the test run when
    a collective never completes (the barriers wait for hours)."""
    context = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):  # re-raises a worker's exception
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {nprocs} training processes did not finish in {timeout:.0f} s")


def curve(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_then_resume(tmp_path):
    # One process, same global batch and seed (dataset and tokenizer written here as well).
    pipeline(tmp_path / "ref", tmp_path / "data.h5").run(stage="mno")
    spawn_and_wait(worker, (2, free_port(), str(tmp_path)), nprocs=2, timeout=600)

    ref, ddp = curve(tmp_path / "ref"), curve(tmp_path / "ddp")
    # Every step once: the lines rank 0 logged after last.pt were cut on resume.
    assert [r["step"] for r in ddp] == [r["step"] for r in ref]
    assert [r.get("val_vrmse") is None for r in ddp] == [r.get("val_vrmse") is None
                                                         for r in ref]
    for a, b in zip(ref, ddp, strict=True):
        for key in ("loss", "traj", "val_vrmse", "val_traj"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-5, (a["step"], key, a[key], b[key])
        for key in ("commit", "latent", "grad_norm"):  # O(10) values: float32 rounding
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(a[key])), (a, b)
    assert sum("val_vrmse" in r for r in ddp) == TINY["training"]["epochs"]

    # The checkpoint 2 processes wrote mid-epoch resumes in 1 process on the same curve.
    pipeline(tmp_path / "one", tmp_path / "data.h5").run(stage="mno",
                                                          resume=tmp_path / "interrupted.pt")
    after = curve(tmp_path / "one")
    assert after[0]["step"] == INTERRUPT_AT
    assert [r["step"] for r in after] == [r["step"] for r in ref[INTERRUPT_AT - 1:]]
    for a, b in zip(ref[INTERRUPT_AT - 1:], after, strict=True):
        for key in ("loss", "val_vrmse"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-5, (a["step"], key, a[key], b[key])

    # Only rank 0 wrote into the run folder; the hook did see rank 0's writes.
    assert json.loads((tmp_path / "writes-1.json").read_text()) == []
    seen = "\n".join(json.loads((tmp_path / "writes-0.json").read_text()))
    for name in ("metrics.jsonl", "last.pt", "best.pt", "final.pt", "tokenizer", "train.log"):
        assert name in seen, name
    # The tokenizer rank 0 fitted is the one the single process fitted.
    assert (tmp_path / "ddp/tokenizer/weights.safetensors").read_bytes() == \
        (tmp_path / "ref/tokenizer/weights.safetensors").read_bytes()

    # EMA codebooks with sync_distributed: identical on both ranks after every kind of update,
    # and the EMA step on two halves equals the step on the whole batch in one process.
    c0, c1 = (torch.load(tmp_path / f"codebook-{r}.pt") for r in (0, 1))
    for key in c0:
        if not key.startswith("alone."):
            assert torch.equal(c0[key], c1[key]), key
    for name in ("codebook", "usage", "embed_sum"):
        torch.testing.assert_close(c0[f"ema.{name}"], c0[f"alone.{name}"], rtol=1e-6,
                                   atol=1e-7)
    assert int(c0["restarted"]) == 3
    assert not torch.equal(c0["restart.codebook"][:3], c0["ema.codebook"][:3])


def test_batch_shares_cover_the_batch_and_weights_give_the_global_mean():
    for n in range(1, 12):
        for world in (1, 2, 3, 4):
            ranks = [Ranks(rank=r, world_size=world) for r in range(world)]
            spans = [r.share(n) for r in ranks]
            assert [hi - lo for lo, hi in spans] == ranks[0].share_sizes(n)
            covered = [i for lo, hi in spans for i in range(lo, hi)]
            assert covered == list(range(n))  # contiguous, in rank order, nothing twice
            # DDP averages over processes: Σ_r factor_r / world · mean_r = the global mean.
            losses = torch.arange(n, dtype=torch.float64) ** 2
            average = 0.0
            for r in ranks:
                mine, factor = r.batch_share(n)
                assert factor == 0.0 or mine.stop - mine.start == r.share(n)[1] - r.share(n)[0]
                average += factor * float(losses[mine].mean()) / world
            assert average == pytest.approx(float(losses.mean()), rel=1e-12)


def test_every_registered_architecture_has_only_real_parameters():
    """DDP's reducer and the checkpoints expect real tensors; spectral weights are stored as
    (real, imaginary) pairs along a leading axis of 2 instead of as complex parameters."""
    from noa_platform.models import build_domain_architecture
    from noa_platform.plugins import get_registry

    registry = get_registry()
    built = set()
    for name in registry.domains:  # each domain's default architecture, and the U-AFNO
        domain = registry.domain(name)
        for config in (None, {"name": "u-afno"}):
            model = build_domain_architecture(domain, config, registry=registry)
            built.add(domain.architecture_config(config)["name"])
            complex_params = [n for n, p in model.named_parameters() if p.is_complex()]
            assert not complex_params, (name, config, complex_params)
    assert built == set(registry.architectures)


def test_nproc_runs_the_same_command_under_torchrun(monkeypatch):
    from click.testing import CliRunner

    from noa_platform.cli import main
    from noa_platform.cli import train as train_cli

    calls = []
    monkeypatch.setattr(train_cli.subprocess, "call", lambda cmd: calls.append(cmd) or 3)
    monkeypatch.delenv("RANK", raising=False)
    result = CliRunner().invoke(main, ["train", "reaction-diffusion", "--nproc", "2",
                                       "--epochs", "3", "--lambda-commit", "0.1", "--quiet",
                                       "--device", "cpu", "--run-dir", "runs/x"])
    assert result.exit_code == 3  # torchrun's exit status
    (cmd,) = calls
    assert cmd[:9] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node=2", "-m", "noa_platform", "train",
                       "reaction-diffusion"]
    args = cmd[9:]
    assert "--nproc" not in args and "--quiet" in args and "--no-register" not in args
    following = dict(itertools.pairwise(args))  # each option -> the word after it
    assert (following["--epochs"], following["--lambda-commit"], following["--device"],
            following["--run-dir"]) == ("3", "0.1", "cpu", "runs/x")
    # The processes torchrun starts parse the same options back.
    params = main.commands["train"].make_context("train", ["reaction-diffusion", *args]).params
    assert params["epochs"] == 3 and params["lambda_commit"] == 0.1 and params["quiet"]
    assert params["nproc"] is None
