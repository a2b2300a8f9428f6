"""Sharded generation: shards merged equal an unsharded run; merge refuses what cannot be one."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.cli import main
from noa_platform.config import GenerationConfig
from noa_platform.data import generate as gen_module
from noa_platform.data.features import add_features
from noa_platform.data.generate import generate
from noa_platform.data.merge import merge_shards
from noa_platform.data.shards import Shard
from noa_platform.data.store import DatasetFile
from noa_platform.errors import DataError
from noa_platform.plugins import get_registry
from noa_platform.testing.toy_domain import ToyDomain

# 13 samples in batches of 4: batches 0..3, 4..7, 8..11, 12. Splits: train 0..9, val 10,
# test 11..12, so shard boundaries cut through the train split.
N_SAMPLES, BATCH = 13, 4


@pytest.fixture
def fresh_registry():
    """The registry re-read, so the fixture plugins' domains (good-toy) are found."""
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


def config(**kw) -> GenerationConfig:
    base = {"n_samples": N_SAMPLES, "n_frames": 3, "resolution": 16, "batch_size": BATCH,
            "features": False}
    return GenerationConfig(**{**base, **kw})


def quiet(**kw):
    return {"progress": False, "log": lambda m: None, **kw}


def read_all(path):
    """Every dataset and every root attribute but the creation time."""
    with h5py.File(path, "r") as h5:
        out = {}
        h5.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset)
                      else None)
        attrs = {k: v for k, v in h5.attrs.items() if k != "created"}
        return out, attrs


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unsharded run with features and its shards for N = 2 and 3."""
    tmp = tmp_path_factory.mktemp("runs")
    d = ToyDomain()
    cfg = config(features=True)
    out = {"whole": generate(d, cfg, tmp / "whole.h5", **quiet())}
    for of in (2, 3):
        out[of] = [generate(d, cfg, tmp / f"s{k}of{of}.h5", **quiet(shard=Shard(k, of)))
                   for k in range(1, of + 1)]
    return out


@pytest.mark.parametrize("of", [2, 3])
def test_merged_shards_equal_the_unsharded_run(runs, tmp_path, of):
    # Any order of the arguments.
    merged = merge_shards(runs[of][::-1], tmp_path / "merged.h5", log=lambda m: None)
    (want, want_attrs), (got, got_attrs) = read_all(runs["whole"]), read_all(merged)
    assert sorted(got) == sorted(want)
    assert {"trajectories", "features/initial", "splits/train"} <= set(want)
    for key in want:  # trajectories, θ, seeds, families, splits, features: bit for bit
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert got_attrs == want_attrs  # fingerprint, config, domain, grid, ...
    with DatasetFile(merged) as m, DatasetFile(runs["whole"]) as w:
        assert m.fingerprint == w.fingerprint and m.shard is None
        assert m.info()["complete"]


def test_a_shard_is_a_dataset_of_its_own_samples(runs):
    whole, _ = read_all(runs["whole"])
    rows = []
    for path in runs[3]:
        with DatasetFile(path) as ds:
            index = ds.sample_index()
            rows.append(index)
            np.testing.assert_array_equal(ds.trajectories(), whole["trajectories"][index])
            np.testing.assert_array_equal(ds.seeds(), whole["seeds"][index])
            for split in ("train", "val", "test"):  # row numbers; same split as unsharded
                np.testing.assert_array_equal(
                    index[ds.split(split)],
                    np.intersect1d(whole[f"splits/{split}"], index))
    assert [r.tolist() for r in rows] == [[0, 1, 2, 3], [4, 5, 6, 7], list(range(8, 13))]


def test_data_info_says_shard(runs):
    res = cli("data", "info", str(runs[3][1]), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["shard"] == {"k": 2, "of": 3, "run_samples": 13, "first": 4, "last": 7}
    assert info["samples"] == 4 and info["complete"]
    text = cli("data", "info", str(runs[3][1])).output
    assert "shard:        2/3 of a 13-sample run, samples 4..7" in text
    assert json.loads(cli("data", "info", str(runs["whole"]), "--json").output)["shard"] is None


def test_merge_refusals_are_one_line_naming_file_and_sample(runs, tmp_path):
    s1, s2, s3 = (str(p) for p in runs[3])
    out = str(tmp_path / "m.h5")
    line = one_line_error(cli("data", "merge", s1, s3, "--out", out))
    assert line == (f"error: {out}: sample 4 is in none of the shards given; shard 2/3 "
                    "(samples 4..7) is missing")
    copy = tmp_path / "copy-of-1.h5"
    shutil.copyfile(s1, copy)
    line = one_line_error(cli("data", "merge", s1, s2, s3, str(copy), "--out", out))
    assert line == f"error: {copy}: sample 0 is also in {s1} (shard 1/3 given twice)"
    line = one_line_error(cli("data", "merge", s1, s2, s1, "--out", out))
    assert line == f"error: {s1}: given twice (also as {s1})"
    # A shard of the 2-shard split of the same run: another number of shards.
    line = one_line_error(cli("data", "merge", s1, str(runs[2][1]), "--out", out))
    assert line == (f"error: {runs[2][1]}: a shard of another run than {s1} "
                    f"(shards: 3 in {s1}, 2 in {runs[2][1]})")
    whole = str(runs["whole"])
    line = one_line_error(cli("data", "merge", s1, whole, "--out", out))
    assert line.startswith(f"error: {whole}: not a shard but a whole dataset")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    line = one_line_error(cli("data", "merge", s1, str(garbage), "--out", out))
    assert line.startswith(f"error: {garbage}: not a readable HDF5 file")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.zeros(3)
    line = one_line_error(cli("data", "merge", str(foreign), s1, "--out", out))
    assert line.startswith(f"error: {foreign}: not a noa dataset")
    assert not (tmp_path / "m.h5").exists()
    line = one_line_error(cli("data", "merge", s1, s2, s3, "--out", s1))
    assert line == f"error: {s1} exists; choose another --out or delete it"


def test_shards_of_another_seed_or_domain_are_refused(tmp_path):
    ours = generate(ToyDomain(), config(), tmp_path / "a.h5", **quiet(shard=Shard(1, 2)))
    seed = generate(ToyDomain(), config(seed=1), tmp_path / "b.h5", **quiet(shard=Shard(2, 2)))
    other = generate(ToyDomain("other-toy"), config(), tmp_path / "c.h5",
                     **quiet(shard=Shard(2, 2)))
    out = str(tmp_path / "m.h5")
    line = one_line_error(cli("data", "merge", str(ours), str(seed), "--out", out))
    assert line == (f"error: {seed}: a shard of another run than {ours} "
                    f"(config.seed: 0 in {ours}, 1 in {seed})")
    line = one_line_error(cli("data", "merge", str(ours), str(other), "--out", out))
    assert line == (f"error: {other}: a shard of another run than {ours} "
                    f"(domain: 'toy' in {ours}, 'other-toy' in {other})")


def test_an_altered_shard_is_refused(runs, tmp_path):
    bad = tmp_path / "bad.h5"
    shutil.copyfile(runs[2][1], bad)
    with h5py.File(bad, "r+") as h5:
        h5["seeds"][2] = 12345
    with pytest.raises(DataError, match=rf"{bad}: sample 10 has seed 12345, not the \d+ that "
                                        r"dataset seed 0 gives it"):
        merge_shards([runs[2][0], bad], tmp_path / "m.h5", log=lambda m: None)


def test_interrupted_shard_resumes_like_an_unsharded_run(runs, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = gen_module.Plan.simulate

    def dying(self, indices, device="cpu"):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if killed during the shard's second batch
        return original(self, indices, device)

    monkeypatch.setattr(gen_module.Plan, "simulate", dying)
    out = tmp_path / "s3of3.h5"
    with pytest.raises(KeyboardInterrupt):
        generate(ToyDomain(), config(features=True), out, **quiet(shard=Shard(3, 3)))
    assert not out.exists()
    assert [p.name for p in (tmp_path / "s3of3.h5.partial").glob("batch-*.npz")] == \
        ["batch-00000008-00000011.npz"]
    info = cli("data", "info", str(out), "--json")
    assert json.loads(info.output)["shard"] == "3/3"
    assert "toy shard 3/3 being generated: 4 of 5 samples done" in \
        cli("data", "info", str(out)).output
    monkeypatch.setattr(gen_module.Plan, "simulate", original)
    messages: list[str] = []
    generate(ToyDomain(), config(features=True), out, progress=False, log=messages.append,
             shard=Shard(3, 3))
    assert messages == [f"resuming {out}: 4 of 5 samples already done"]
    (want, want_attrs), (got, got_attrs) = read_all(runs[3][2]), read_all(out)
    assert got_attrs == want_attrs
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # Rerun on the finished shard: nothing to do; as another shard: refused.
    messages.clear()
    generate(ToyDomain(), config(features=True), out, progress=False, log=messages.append,
             shard=Shard(3, 3))
    assert messages == [f"{out} is already complete"]
    with pytest.raises(DataError, match=r"other settings \(shard.k: 3 then, 2 now\)"):
        generate(ToyDomain(), config(features=True), out, **quiet(shard=Shard(2, 3)))


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b", "1/0", "2", "-1/2", ""])
def test_bad_shard_syntax_is_a_usage_error(tmp_path, value):
    res = cli("generate", "toy", "--out", str(tmp_path / "x.h5"), "--shard", value)
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--shard'" in res.output
    assert ("k counts from 1" in res.output) or ("is not k/N" in res.output)


def test_more_shards_than_batches_is_refused(fixture_plugins, fresh_registry, tmp_path):
    res = cli("generate", "good-toy", "--n", "8", "--out", str(tmp_path / "x.h5"),
              "--no-features", "--quiet", "--shard", "3/9")
    line = one_line_error(res)
    assert "--shard 3/9: the run has 8 samples in" in line and "N can be at most" in line


def test_shards_from_the_command_line_and_features_after_merging(fixture_plugins,
                                                                 fresh_registry, tmp_path):
    """Shards without features (40 samples in batches of 16: 0..15 | 16..39) merge, and
    `noa features` on the merged file equals it on an unsharded file. A family that only one
    shard stores is left out of the merge."""
    common = ["good-toy", "--n", "40", "--seed", "3", "--no-features", "--quiet"]
    whole = tmp_path / "whole.h5"
    assert cli("generate", *common, "--out", str(whole)).exit_code == 0
    shards = [tmp_path / f"s{k}.h5" for k in (1, 2)]
    for k, path in enumerate(shards, 1):
        res = cli("generate", *common, "--out", str(path), "--shard", f"{k}/2")
        assert res.exit_code == 0, res.output
    add_features(shards[0], progress=False, log=lambda m: None)
    merged = tmp_path / "merged.h5"
    res = cli("data", "merge", *map(str, shards), "--out", str(merged))
    assert res.exit_code == 0, res.output
    assert "features 'initial' left out" in res.output
    for path in (whole, merged):
        assert cli("features", str(path), "--quiet").exit_code == 0
    (want, want_attrs), (got, got_attrs) = read_all(whole), read_all(merged)
    assert got_attrs == want_attrs and sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 400), batch=st.integers(1, 64), data=st.data())
def test_shards_partition_the_samples_into_whole_batches(n, batch, data):
    n_batches = -(-n // batch)
    of = data.draw(st.integers(1, n_batches))
    parts = [Shard(k, of).indices(n, batch) for k in range(1, of + 1)]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(n))
    sizes = [len(p) for p in parts]
    assert min(sizes) >= 1
    assert all(p[0] % batch == 0 for p in parts)  # each starts a batch of the run
    # Whole batches, as evenly as can be: batch counts differ by at most one.
    counts = [-(-len(p) // batch) for p in parts]
    assert max(counts) - min(counts) <= 1 and sum(counts) == n_batches
    with pytest.raises(DataError, match="N can be at most"):
        Shard(1, n_batches + 1).indices(n, batch)
