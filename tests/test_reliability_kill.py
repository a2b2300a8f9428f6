"""SIGKILL at random moments and at phase boundaries: the same command, run again, completes
with nothing lost or duplicated and the same result as an uninterrupted run.

Every command runs as a real subprocess, one thread, so that reruns are bitwise comparable. A
kill comes either at a random point drawn from a seeded RNG (after a random number of finished
batches plus a random delay, or after a random optimizer step or alignment method), or exactly
at a phase boundary: ``KILL_AT`` wraps one function of the platform so that the process
SIGKILLs itself before or after its n-th call, then runs the ``noa`` command. Registration alone is tried in ``tests/test_registry.py``
(``test_sigkill_at_each_step_of_a_registration_leaves_no_half_row`` and the tests after it);
here it is killed as the last stage of ``noa train``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from noa_platform.config import GenerationConfig
from noa_platform.data.generate import generate
from noa_platform.data.store import DatasetFile
from noa_platform.registry import open_registry
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

TINY_TOML = textwrap.dedent("""
    [generation]
    n_samples = 16
    n_frames = 4
    resolution = 16
    batch_size = 4
    [tokenizer]
    steps = 20
    [mno.architecture]
    base_channels = 4
    levels = 2
    modes = 4
    afno_blocks = 1
    num_blocks = 2
    cond_dim = 4
    [training]
    epochs = 2
    batch_size = 4
    bptt_window = 2
    save_every = 2
    lambda_commit = 0.1
    warmup_steps = 2
    early_stop_patience = 10
    pushforward_steps = 1
    input_noise = 0.5
    validation_samples = 2
""")

KILL_AT = textwrap.dedent("""
    import importlib, os, signal, sys
    target, when, nth, match = sys.argv[1:5]
    module, attr = target.split(":")
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    fn, calls = getattr(owner, name), [0]

    def wrapped(*args, **kwargs):
        hit = match in " ".join(map(str, args))
        if hit:
            calls[0] += 1
        if hit and when == "before" and calls[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        out = fn(*args, **kwargs)
        if hit and when == "after" and calls[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(owner, name, wrapped)
    from noa_platform.cli import main
    main(sys.argv[6:], prog_name="noa")
""")


def child_env(fixture_plugins: Path) -> dict[str, str]:
    """One thread, so that a rerun does bit for bit the same arithmetic; the toy plugin."""
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(fixture_plugins),
                                           os.environ.get("PYTHONPATH", "")])}


def noa(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "noa_platform", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def started(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``noa ARGS`` in the background: the uninterrupted reference runs beside the killed runs
    (one thread each), which halves the test's wall time on two cores."""
    return subprocess.Popen([sys.executable, "-m", "noa_platform", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def kill_at(args: list[str], env: dict[str, str], target: str, when: str = "after",
            nth: int = 1, match: str = "") -> None:
    """Run ``noa ARGS`` until it SIGKILLs itself ``when`` the ``nth`` call of ``target``
    (``module:function``) whose arguments mention ``match``."""
    done = subprocess.run([sys.executable, "-c", KILL_AT, target, when, str(nth), match, "--",
                           *args], env=env, check=False, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -signal.SIGKILL, (
        f"{target} {when} call {nth} never came: exit {done.returncode}\n{done.stderr}")


def kill_when(args: list[str], env: dict[str, str], ready, delay: float) -> None:
    """Run ``noa ARGS``; once ``ready()`` holds (polled), wait ``delay`` seconds, SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-m", "noa_platform", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        pytest.fail(f"noa {' '.join(args)} ended (exit {proc.returncode}) before its kill: "
                    f"{proc.stderr.read()}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def batches_done(work: Path, at_least: int):
    """A condition: ``work`` holds at least that many finished batch files."""
    return lambda: work.exists() and len(list(work.glob("batch-*.npz"))) >= at_least


def random_points(seed: int, n_batches: int, n: int = 2) -> list[tuple[int, float]]:
    """``n`` random kill points in a batched job: after a random count of finished batches
    (increasing, so that each kill falls in work the previous run left), plus a random part of
    a batch's time."""
    rng = random.Random(seed)
    counts = sorted(rng.sample(range(1, n_batches - 1), n))
    return [(c, rng.uniform(0.0, 0.02)) for c in counts]


def leftovers(folder: Path) -> list[str]:
    """Work folders and temporaries a finished command must not leave behind."""
    return sorted(p.name for p in folder.rglob("*")
                  if p.name.endswith(".partial") or ".tmp-" in p.name)


def h5_contents(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, and its attributes but the creation time."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
        out.update({f"@{k}": v for k, v in h5.attrs.items() if k != "created"})
    return out


def assert_same_h5(a: Path, b: Path) -> None:
    ca, cb = h5_contents(a), h5_contents(b)
    assert ca.keys() == cb.keys()
    for key in ca:
        np.testing.assert_array_equal(ca[key], cb[key], err_msg=key)


def test_generate_killed_at_random_moments_and_around_the_assembly(tmp_path, fixture_plugins):
    env = child_env(fixture_plugins)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("n_samples = 16", "n_samples = 48"))

    def args(out: Path) -> list[str]:
        return ["generate", "good-toy", "--out", str(out), "--config", str(config), "--quiet"]

    ref = tmp_path / "ref" / "data.h5"
    reference = started(args(ref), env)
    out = tmp_path / "run" / "data.h5"
    for count, delay in random_points(1, 12):
        kill_when(args(out), env, batches_done(out.parent / "data.h5.partial", count), delay)
        assert not out.exists()  # nothing under the final name before it is complete
    # The whole file written under its temporary name, about to be renamed.
    kill_at(args(out), env, "os:replace", "before", match="data.h5.tmp-")
    assert [p.name for p in out.parent.glob("data.h5.tmp-*")]
    # The file in place, its work folder not yet removed.
    kill_at(args(out), env, "noa_platform.data.generate:_assemble")
    assert (out.parent / "data.h5.partial").exists()
    noa(args(out), env)
    finished(reference)
    assert_same_h5(ref, out)
    assert leftovers(out.parent) == []


def test_features_killed_at_random_moments_and_around_the_file_replacement(
        tmp_path, fixture_plugins):
    env = child_env(fixture_plugins)
    bare = generate(ToyDomain("good-toy"), GenerationConfig(
        n_samples=160, n_frames=4, resolution=16, batch_size=32, features=False),
        tmp_path / "bare.h5", progress=False, log=lambda m: None)
    ref, out = tmp_path / "ref" / "d.h5", tmp_path / "run" / "d.h5"
    for p in (ref, out):
        p.parent.mkdir()
        shutil.copyfile(bare, p)
    reference = started(["features", str(ref), "--quiet"], env)
    for count, delay in random_points(2, 5):
        kill_when(["features", str(out), "--quiet"], env,
                  batches_done(out.parent / "d.h5.features.partial", count), delay)
    # The rewritten file complete under its temporary name, about to replace the dataset.
    kill_at(["features", str(out), "--quiet"], env, "os:replace", "before", match="d.h5.tmp-")
    assert list(out.parent.glob("d.h5.tmp-*"))
    # The dataset replaced, the work folder not yet removed.
    kill_at(["features", str(out), "--quiet"], env, "shutil:rmtree", "before",
            match=".features.partial")
    noa(["features", str(out), "--quiet"], env)
    finished(reference)
    assert_same_h5(ref, out)
    assert leftovers(out.parent) == []


def registered(folder: Path) -> dict[tuple[str, str], tuple[dict, list[str]]]:
    """(kind, domain) -> (metrics, its parents' kinds) of every row; one registered twice
    fails."""
    with open_registry(folder) as reg:
        rows = reg.list()
        kinds = {e.id: e.kind for e in rows}
        out = {(e.kind, e.domain): (e.metrics, sorted(kinds[p] for p in e.parents))
               for e in rows}
    assert len(out) == len(rows), f"an artifact registered twice: {[e.kind for e in rows]}"
    return out


def test_train_killed_in_every_stage_completes_as_uninterrupted(tmp_path, fixture_plugins):
    env = child_env(fixture_plugins)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)

    def args(run: Path) -> list[str]:
        return ["train", "good-toy", "--config", str(config), "--run-dir", str(run),
                "--device", "cpu", "--registry", str(run.parent / f"{run.name}-registry"),
                "--quiet"]

    ref, run = tmp_path / "ref", tmp_path / "run"
    reference = started(args(ref), env)
    pipeline = "noa_platform.training.pipeline"
    (count, delay), = random_points(3, 4, n=1)
    kills = [
        # dataset: at a random point of the generation
        lambda: kill_when(args(run), env, batches_done(run / "dataset.h5.partial", count),
                          delay),
        # tokenizer: its weights written, its picture about to be renamed into place, its
        # provenance stamp not yet
        lambda: kill_at(args(run), env, "os:replace", "before", match="tokenizer/report.png"),
        # MNO: mid-training, after a random number of optimizer steps
        lambda: kill_at(args(run), env, "noa_platform.training.trainer:Trainer._train_batch",
                        "after", nth=random.Random(4).randint(2, 6)),
        # MNO: final.pt written, the rest of the stage (mno.json) not yet
        lambda: kill_at(args(run), env, f"{pipeline}:save_checkpoint", "after"),
        # validation: a picture about to be renamed into place, report.json not yet written
        lambda: kill_at(args(run), env, "os:replace", "before", match="rollout_frames.png"),
        # registration: dataset and tokenizer registered, the MNO and evaluation not yet
        lambda: kill_at(args(run), env, "noa_platform.registry.registry:Registry.add", "after",
                        nth=2),
    ]
    for kill in kills:
        kill()
    noa(args(run), env)
    finished(reference)

    assert_same_h5(ref / "dataset.h5", run / "dataset.h5")
    assert ((ref / "tokenizer" / "weights.safetensors").read_bytes()
            == (run / "tokenizer" / "weights.safetensors").read_bytes())
    for name in ("final.pt", "best.pt"):
        a, b = (load_checkpoint(r / "checkpoints" / name)["model"] for r in (ref, run))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert json.loads((ref / "mno.json").read_text()) == json.loads((run / "mno.json").read_text())
    rep_a, rep_b = (json.loads((r / "report.json").read_text()) for r in (ref, run))
    assert rep_a["summary"] == rep_b["summary"]
    # Every artifact once, with the uninterrupted run's metrics and parents. (Ids differ: the
    # dataset file stores its creation time, so two runs' datasets never share a digest.)
    reg_run = registered(run.parent / "run-registry")
    assert reg_run == registered(ref.parent / "ref-registry")
    assert sorted(k for k, _ in reg_run) == ["dataset", "evaluation", "mno", "tokenizer"]
    assert leftovers(run) == []


def test_align_killed_mid_computation_and_registration_completes_as_uninterrupted(
        tmp_path, fixture_plugins):
    pytest.importorskip("ot")
    pytest.importorskip("sklearn")
    from noa_platform.tokenizer import TokenizerConfig, fit_tokenizer

    data = generate(ToyDomain(), GenerationConfig(n_samples=32, n_frames=3, resolution=16,
                                                  batch_size=16),
                    tmp_path / "toy.h5", progress=False, log=lambda m: None)
    with DatasetFile(data) as ds:
        names = {f: ds.features(f)[1] for f in ds.feature_families()}
        feats = {f: torch.from_numpy(ds.features(f)[0]) for f in names}
    base = tmp_path / "base-registry"
    with open_registry(base) as reg:
        ds_id = reg.add("dataset", domain="toy", source=data, config={}, metrics={})
        for seed, domain in ((0, "toy"), (1, "toy-b")):
            tok = fit_tokenizer(feats, names, TokenizerConfig(
                steps=20, hidden=16, latent_dim=3, batch_size=32, max_categories=2,
                residual_levels=2, seed=seed), progress=False)
            tok.save(tmp_path / f"tok{seed}")
            reg.add("tokenizer", domain=domain, source=tmp_path / f"tok{seed}", config={},
                    metrics={}, parents=[ds_id])
    env = child_env(fixture_plugins)

    def args(name: str) -> list[str]:
        reg = tmp_path / f"{name}-registry"
        if not reg.exists():
            shutil.copytree(base, reg)
        return ["align", "toy", "toy-b", "--null", "3", "--out", str(tmp_path / name),
                "--registry", str(reg)]

    reference = started(args("ref"), env)
    # during the computation: after a random one of the three methods' nulls
    kill_at(args("run"), env, "noa_platform.alignment.compare:null_distribution",
            nth=random.Random(5).randint(1, 3))
    # registration: one of the two files stored, no row yet
    kill_at(args("run"), env, "noa_platform.registry.objects:ObjectStore.put")
    noa(args("run"), env)
    finished(reference)

    def result(name: str) -> dict:
        record = json.loads((tmp_path / name / "alignment.json").read_text())
        for side in record["tokenizers"].values():
            side.pop("directory")  # inside each run's own registry
        return record

    assert result("run") == result("ref")
    assert ((tmp_path / "run" / "alignment.png").read_bytes()
            == (tmp_path / "ref" / "alignment.png").read_bytes())
    assert registered(tmp_path / "run-registry") == registered(tmp_path / "ref-registry")
    with open_registry(tmp_path / "run-registry") as reg:
        assert len(reg.list(kind="alignment")) == 1
    assert leftovers(tmp_path / "run") == []


def test_tokenizer_refit_killed_midway_is_not_taken_for_the_old_fit(tmp_path, monkeypatch):
    """Killed while a tokenizer of other settings overwrites the folder (new weights, old
    tokenizer.json), the old provenance stamp must not vouch for the mix when the old settings
    come back. In process: a kill and this exception leave the same files."""
    from test_training import TINY

    from noa_platform.config import resolve_config
    from noa_platform.tokenizer import vqvae
    from noa_platform.training.pipeline import Pipeline

    def fit(steps: int) -> None:
        cfg = resolve_config(overrides={**TINY, "tokenizer": {"steps": steps}})
        Pipeline(ToyDomain(), cfg, tmp_path / "run", dataset=tmp_path / "data.h5",
                 device="cpu", progress=False, log=lambda m: None).run(stage="tokenizer")

    weights = tmp_path / "run" / "tokenizer" / "weights.safetensors"
    fit(20)
    first = weights.read_bytes()
    original = vqvae.atomic_write_json

    def dying(path, *args, **kwargs):
        if Path(path).name == "tokenizer.json":
            raise KeyboardInterrupt
        return original(path, *args, **kwargs)

    monkeypatch.setattr(vqvae, "atomic_write_json", dying)
    with pytest.raises(KeyboardInterrupt):
        fit(10)
    monkeypatch.setattr(vqvae, "atomic_write_json", original)
    assert weights.read_bytes() != first  # the mix: new weights, old tokenizer.json
    fit(20)
    assert weights.read_bytes() == first
