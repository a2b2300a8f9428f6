"""Dataset generation, layout, replay and resume, on the exact toy domain."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from noa_platform.config import GenerationConfig
from noa_platform.data import generate as gen_module
from noa_platform.data.generate import generate, replay
from noa_platform.data.sampling import sample_seeds, sobol_unit
from noa_platform.data.store import DatasetFile
from noa_platform.errors import DataError, SolverError
from noa_platform.testing.toy_domain import ToyDomain


def config(**kw) -> GenerationConfig:
    base = dict(n_samples=13, n_frames=3, resolution=16, batch_size=4, features=False)
    return GenerationConfig(**{**base, **kw})


def read_all(path):
    with h5py.File(path, "r") as h5:
        out = {}
        h5.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset)
                      else None)
        return out, h5.attrs["fingerprint"]


def test_layout_and_info(tmp_path):
    d = ToyDomain()
    path = generate(d, config(), tmp_path / "toy.h5", progress=False, log=lambda m: None)
    with DatasetFile(path) as ds:
        info = ds.info()
        assert ds.shape == (13, 4, 2, 16, 16)
        assert ds.param_names == ("rate", "offset", "boost")
        unit, values = ds.params("unit"), ds.params("value")
        np.testing.assert_allclose(d.parameter_space.from_unit(unit), values)
        d.parameter_space.validate(values)
        assert sorted(np.concatenate([ds.split(s) for s in ("train", "val", "test")])) == \
            list(range(13))
    assert info["complete"] and info["completed"] == 13
    assert info["domain"] == "toy" and info["splits"] == {"train": 10, "val": 1, "test": 2}
    assert set(info["ic_families"]) <= {"noise", "waves"}
    assert not (tmp_path / "toy.h5.partial").exists()


def test_generation_is_independent_of_batch_size(tmp_path):
    d = ToyDomain()
    a = generate(d, config(batch_size=4), tmp_path / "a.h5", progress=False, log=lambda m: None)
    b = generate(d, config(batch_size=5), tmp_path / "b.h5", progress=False, log=lambda m: None)
    da, fa = read_all(a)
    db, fb = read_all(b)
    np.testing.assert_array_equal(da["trajectories"], db["trajectories"])
    assert fa == fb


def test_replay_is_bit_exact(tmp_path):
    d = ToyDomain()
    path = generate(d, config(), tmp_path / "toy.h5", progress=False, log=lambda m: None)
    with DatasetFile(path) as ds:
        stored = ds.trajectories()
        np.testing.assert_array_equal(replay(d, ds, [5]).numpy(), stored[[5]])
        np.testing.assert_array_equal(replay(d, ds, [1, 5, 12]).numpy(), stored[[1, 5, 12]])


def test_interrupted_generation_resumes_to_the_same_file(tmp_path, monkeypatch):
    d = ToyDomain()
    ref = generate(d, config(), tmp_path / "ref.h5", progress=False, log=lambda m: None)

    calls = {"n": 0}
    original = gen_module.Plan.simulate

    def dying(self, indices, device="cpu"):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if killed during the third batch
        return original(self, indices, device)

    monkeypatch.setattr(gen_module.Plan, "simulate", dying)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        generate(d, config(), out, progress=False, log=lambda m: None)
    assert not out.exists()
    assert len(list((tmp_path / "out.h5.partial").glob("batch-*.npz"))) == 2
    monkeypatch.setattr(gen_module.Plan, "simulate", original)
    messages = []
    generate(d, config(), out, progress=False, log=messages.append)
    assert messages == [f"resuming {out}: 8 of 13 samples already done"]
    (ref_data, ref_fp), (out_data, out_fp) = read_all(ref), read_all(out)
    assert ref_fp == out_fp
    for key in ref_data:
        np.testing.assert_array_equal(ref_data[key], out_data[key], err_msg=key)


def test_rerun_with_other_settings_is_refused(tmp_path):
    d = ToyDomain()
    out = generate(d, config(), tmp_path / "toy.h5", progress=False, log=lambda m: None)
    msgs = []
    generate(d, config(), out, progress=False, log=msgs.append)
    assert msgs == [f"{out} is already complete"]
    with pytest.raises(DataError, match=r"other settings \(config.seed: 0 then, 1 now\)"):
        generate(d, config(seed=1), out, progress=False, log=lambda m: None)


def test_bad_files_are_refused_in_one_line(tmp_path):
    d = ToyDomain()
    good = generate(d, config(), tmp_path / "toy.h5", progress=False, log=lambda m: None)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(DataError, match="truncated.h5: not a readable HDF5 file"):
        DatasetFile(truncated)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(DataError, match="foreign.h5: not a noa dataset"):
        DatasetFile(foreign)
    with pytest.raises(DataError, match="missing.h5: no such dataset file"):
        DatasetFile(tmp_path / "missing.h5")


def test_unknown_family_and_solver_errors(tmp_path):
    with pytest.raises(DataError, match="has no family blobs"):
        generate(ToyDomain(), config(ic_families={"blobs": 1.0}), tmp_path / "x.h5",
                 progress=False, log=lambda m: None)
    d = ToyDomain()
    with pytest.raises(SolverError, match="not finite"):
        d.solver.rollout(torch.full((1, 2, 4, 4), float("nan")), torch.tensor([[1.0, 0, 0]]), 2,
                         grid=d.grid, frame_dt=0.1)


def test_seeds_and_theta_depend_on_index_only():
    assert np.array_equal(sample_seeds(7, 10)[:4], sample_seeds(7, 4))
    assert np.array_equal(sobol_unit(3, 16, 7)[:5], sobol_unit(3, 5, 7))
    assert not np.array_equal(sample_seeds(7, 4), sample_seeds(8, 4))


def test_burn_in_drops_frames_and_replays(tmp_path):
    """burn_in_frames = b stores the trajectory from frame b on; replay does the same."""
    d = ToyDomain()
    plain = generate(d, config(n_frames=5), tmp_path / "a.h5", progress=False, log=lambda m: None)
    burnt = generate(d, config(n_frames=3, burn_in_frames=2), tmp_path / "b.h5", progress=False,
                     log=lambda m: None)
    with DatasetFile(plain) as a, DatasetFile(burnt) as b:
        np.testing.assert_array_equal(b.trajectories(), a.trajectories()[:, 2:])
        assert torch.equal(replay(d, b, [0, 4]), torch.from_numpy(b.trajectories([0, 4])))


def test_parameter_ranges_restrict_the_box(tmp_path):
    d = ToyDomain()
    path = generate(d, config(n_samples=32, parameter_ranges={"rate": (1.0, 2.0)}),
                    tmp_path / "r.h5", progress=False, log=lambda m: None)
    with DatasetFile(path) as ds:
        rate, unit = ds.params("value")[:, 0], ds.params("unit")[:, 0]
    assert rate.min() >= 1.0 and rate.max() <= 2.0 and rate.max() - rate.min() > 0.8
    # Unit coordinates stay those of the full box (rate is log-uniform on [0.1, 10]).
    np.testing.assert_allclose(d.parameter_space["rate"].from_unit(unit), rate)
    for bad, fragment in [({"nope": (0, 1)}, "unknown parameter 'nope'"),
                          ({"boost": (0, 1)}, "only real"),
                          ({"rate": (0.01, 2.0)}, "not inside its range")]:
        with pytest.raises(DataError, match=fragment):
            generate(d, config(parameter_ranges=bad), tmp_path / "x.h5", progress=False,
                     log=lambda m: None)


def test_behaviour_mix_classifies_uniform_stationary_moving():
    from noa_platform.data.behaviour import behaviour_mix, classify

    g = torch.Generator().manual_seed(0)
    field = torch.randn(2, 8, 8, generator=g).double().numpy()
    uniform = np.stack([np.full_like(field, 0.3)] * 2)
    still = np.stack([field, field + 1e-6])
    moving = np.stack([field, np.roll(field, 1, axis=-1)])
    classes = classify(np.stack([uniform, still, moving]), np.array([1.0, 1.0]))
    assert classes.tolist() == [0, 1, 2]
    params = [{"name": "law", "kind": "categorical", "choices": ["a", "b"]},
              {"name": "x", "kind": "linear"}]
    mix = behaviour_mix(classes, np.array([[0, 0.1], [0, 0.2], [1, 0.3]]), params)
    assert mix["all"] == {"samples": 3, "uniform": pytest.approx(1 / 3),
                          "stationary": pytest.approx(1 / 3), "moving": pytest.approx(1 / 3)}
    assert mix["law"]["b"] == {"samples": 1, "uniform": 0.0, "stationary": 0.0, "moving": 1.0}


def test_features_carry_the_frame_interval(tmp_path):
    d = ToyDomain()
    path = generate(d, config(features=True), tmp_path / "f.h5", progress=False,
                    log=lambda m: None)
    with h5py.File(path, "r") as h5:
        for family in h5["features"]:
            assert h5[f"features/{family}"].attrs["frame_dt"] == d.frame_dt
    with DatasetFile(path) as ds:
        assert ds.info()["behaviour"]["all"]["samples"] == 13
