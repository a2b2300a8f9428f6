"""Reaction-diffusion datasets end to end: replay from stored values, SIGKILL-safe generation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from noa_reaction_diffusion.domain import ReactionDiffusion

from noa_platform.config import GenerationConfig
from noa_platform.data.generate import generate, replay
from noa_platform.data.store import DatasetFile

SMALL = dict(n_samples=10, n_frames=3, resolution=16, batch_size=4, features=False,
             noise_amplitude=1e-3)


def test_every_stored_sample_replays_bit_for_bit(tmp_path):
    d = ReactionDiffusion()
    path = generate(d, GenerationConfig(**SMALL), tmp_path / "rd.h5", progress=False,
                    log=lambda m: None)
    with DatasetFile(path) as ds:
        stored = ds.trajectories()
        families = set(ds.families())
        for i in range(len(ds)):  # alone
            np.testing.assert_array_equal(replay(d, ds, [i]).numpy(), stored[[i]])
        # and inside a batch of another size and composition
        np.testing.assert_array_equal(replay(d, ds, [0, 3, 4, 9]).numpy(), stored[[0, 3, 4, 9]])
    assert len(families) >= 2  # several initial-condition families exercised


@pytest.mark.slow
def test_generation_killed_with_sigkill_resumes_to_the_identical_file(tmp_path):
    env = dict(os.environ)
    config = tmp_path / "small.toml"
    config.write_text("[generation]\nbatch_size = 3\n")
    args = ["--n", "24", "--seed", "1", "--no-features", "--quiet", "--config", str(config)]

    def command(out):
        return [sys.executable, "-m", "noa_platform", "generate", "reaction-diffusion",
                "--out", str(out), *args]

    ref = tmp_path / "ref.h5"
    subprocess.run(command(ref), env=env, check=True, capture_output=True)
    out = tmp_path / "out.h5"
    work = tmp_path / "out.h5.partial"
    for batches_before_kill in (1, 3):
        proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if work.exists() and len(list(work.glob("batch-*.npz"))) >= batches_before_kill:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "generation finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists()  # nothing half-written under the final name
    done = subprocess.run(command(out), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    with h5py.File(ref, "r") as a, h5py.File(out, "r") as b:
        assert a.attrs["fingerprint"] == b.attrs["fingerprint"]
        for key in ("trajectories", "params/value", "params/unit", "seeds", "ic_family",
                    "completed", "splits/test"):
            np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
