"""Inputs checked before long work; bad datasets, configs, checkpoints and tokenizers refused.

Every refusal is one ``error:`` line naming the file (and the key or samples) with exit 1.
"Before long work" is asserted by making the expensive stages (dataset generation, feature
computation, the tokenizer fit, training, merging) raise if they are entered, never by time.
Listed in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from test_shards import one_line_error, quiet
from test_tokenizer import synthetic_features
from test_training import TINY

import noa_platform.data.features as features_module
import noa_platform.data.generate as generate_module
import noa_platform.data.merge as merge_module
import noa_platform.training.pipeline as pipeline_module
from noa_platform.config import GenerationConfig, domain_config
from noa_platform.data.generate import generate
from noa_platform.data.shards import Shard
from noa_platform.data.store import DatasetFile
from noa_platform.errors import NoaError
from noa_platform.plugins import get_registry
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.tokenizer import Tokenizer, TokenizerConfig, fit_tokenizer
from noa_platform.training.checkpoint import save_checkpoint

#: The fixture plugin's domain, as `noa train good-toy` sees it.
DOMAIN = "good-toy"
#: Tiny runs: the same sizes tests/test_training.py trains with.
TINY_TOML = (
    "[generation]\nn_samples = 24\nn_frames = 6\nresolution = 16\nbatch_size = 8\n"
    "[tokenizer]\nsteps = 10\n"
    "[mno.architecture]\n" + "".join(f"{k} = {v}\n" for k, v in
                                     TINY["mno"]["architecture"].items())
    + "[training]\nepochs = 1\nbatch_size = 4\n"
)


class Evil:
    """Unpickled, it would create the file ``marker``: what a crafted checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))



CRAFTED = ("not a readable checkpoint (it holds Python objects that only running code could "
           "rebuild; refused, nothing in it was run)")

def crafted_pickle(path: Path, marker: Path) -> Path:
    """A checkpoint-looking file whose unpickling runs code (a torch.save zip)."""
    torch.save({"format": "noa-mno-checkpoint", "format_version": 1, "model": Evil(marker)},
               path)
    return path


@pytest.fixture
def no_long_work(monkeypatch):
    """Every expensive stage raises if entered: a refusal must come before all of them."""
    def entered(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} started before the input was refused")
        return fail

    monkeypatch.setattr(pipeline_module, "generate", entered("dataset generation"))
    monkeypatch.setattr(pipeline_module, "add_features", entered("feature computation"))
    monkeypatch.setattr(pipeline_module.Pipeline, "_train_tokenizer", entered("tokenizer fit"))
    monkeypatch.setattr(pipeline_module.Pipeline, "train_mno", entered("MNO training"))
    monkeypatch.setattr(features_module, "add_features", entered("feature computation"))
    monkeypatch.setattr(merge_module, "merge_shards", entered("merging"))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A good good-toy dataset, a shard pair, and one bad file of each kind."""
    tmp = tmp_path_factory.mktemp("datasets")
    cfg = GenerationConfig(n_samples=24, n_frames=6, resolution=16, batch_size=8,
                           features=False)
    d = ToyDomain(DOMAIN)
    good = generate(d, cfg, tmp / "good.h5", **quiet())
    shards = [generate(d, cfg, tmp / f"s{k}.h5", **quiet(shard=Shard(k, 2))) for k in (1, 2)]
    out = {"good": good, "shard2": shards[1]}

    out["truncated"] = tmp / "truncated.h5"
    out["truncated"].write_bytes(good.read_bytes()[:4000])
    out["empty"] = tmp / "empty.h5"
    out["empty"].write_bytes(b"")
    out["foreign"] = tmp / "foreign.h5"
    with h5py.File(out["foreign"], "w") as h5:
        h5["x"] = np.zeros(3)
    out["schema"] = tmp / "schema.h5"
    shutil.copyfile(good, out["schema"])
    with h5py.File(out["schema"], "r+") as h5:
        h5.attrs["schema_version"] = 2
    # NaN in rows 1 and 3 of a whole dataset and of shard 2 (whose rows are later samples).
    for name, source in (("nan", good), ("nan_shard", shards[1])):
        out[name] = tmp / f"{name}.h5"
        shutil.copyfile(source, out[name])
        with h5py.File(out[name], "r+") as h5:
            h5["trajectories"][3, 2, 0, 0, 0] = np.nan
            h5["trajectories"][1, -1, 1, 5, 5] = np.inf
    out["other_domain"] = generate(ToyDomain("toy"), cfg, tmp / "toy.h5", **quiet())
    return out


#: Each bad file and what its one line says about it.
BAD = {
    "truncated": "not a readable HDF5 file (truncated or foreign)",
    "empty": "not a readable HDF5 file (truncated or foreign)",
    "foreign": "not a noa dataset (no schema_version/domain attribute)",
    "schema": "schema version 2 is not supported (this platform reads 1)",
    "nan": "samples 1, 3 (2 of 24) hold NaN or infinite values",
}


def command_for(which: str, path: Path, datasets, tmp_path: Path) -> list:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return {
        "train": ["train", DOMAIN, "--config", config, "--dataset", path,
                  "--run-dir", tmp_path / "run", "--no-register", "--quiet"],
        "features": ["features", path, "--quiet"],
        "info": ["data", "info", path],
        "merge": ["data", "merge", path, datasets["shard2"], "--out", tmp_path / "merged.h5"],
    }[which]


@pytest.mark.parametrize("command", ["train", "features", "info", "merge"])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_dataset_is_refused_by_every_command_that_reads_it(cli, no_long_work, datasets,
                                                               tmp_path, kind, command):
    path = datasets["nan_shard" if kind == "nan" and command == "merge" else kind]
    line = one_line_error(cli(*command_for(command, path, datasets, tmp_path)))
    if path == datasets["nan_shard"]:  # rows 1 and 3 of shard 2, named as samples of the run
        with DatasetFile(path) as ds:
            index, rows = ds.sample_index(), len(ds)
        assert index[0] > 0
        assert line == (f"error: {path}: samples {index[1]}, {index[3]} (2 of {rows}) hold NaN "
                        "or infinite values")
    else:
        assert line == f"error: {path}: {BAD[kind]}" or (
            kind in ("truncated", "empty")
            and line.startswith(f"error: {path}: {BAD[kind]}: "))
    assert not (tmp_path / "run").exists() and not (tmp_path / "merged.h5").exists()


def test_dataset_of_another_domain_a_shard_or_unfinished_is_refused_before_any_work(cli, no_long_work, datasets,
                                                              tmp_path):
    path = datasets["other_domain"]
    line = one_line_error(cli(*command_for("train", path, datasets, tmp_path)))
    assert line == f"error: {path}: a 'toy' dataset, not 'good-toy'"
    # A shard is not a dataset to train on (its splits are its own rows), nor is a file
    # whose samples were not all written.
    line = one_line_error(cli(*command_for("train", datasets["shard2"], datasets, tmp_path)))
    assert line == (f"error: {datasets['shard2']}: shard 2/2 of a run, not a whole dataset; "
                    "join the shards with `noa data merge` first")
    unfinished = tmp_path / "unfinished.h5"
    shutil.copyfile(datasets["good"], unfinished)
    with h5py.File(unfinished, "r+") as h5:
        h5["completed"][5:7] = False
    line = one_line_error(cli(*command_for("train", unfinished, datasets, tmp_path)))
    assert line == f"error: {unfinished}: 2 of 24 samples were never written (first: 5)"
    # (`noa data merge` of shards of two domains: tests/test_shards.py,
    # test_shards_of_another_seed_or_domain_are_refused.)


def test_nan_samples_are_found_wherever_they_are(tmp_path, datasets):
    """More than ten bad samples: the first ten and how many more."""
    path = tmp_path / "many.h5"
    shutil.copyfile(datasets["good"], path)
    with h5py.File(path, "r+") as h5:
        h5["trajectories"][2:14, 0, 0, 0, 0] = np.nan
        h5["params/value"][20, 0] = np.nan  # θ too
        h5.create_dataset("features/initial", data=np.zeros((24, 2), dtype=np.float32))
        h5["features/initial"][22, 1] = np.inf  # and stored features
        h5["features/initial"].attrs["names"] = json.dumps(["a", "b"])
    with DatasetFile(path) as ds, pytest.raises(NoaError) as err:
        ds.check_finite()
    assert str(err.value) == (f"{path}: samples 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 4 more "
                              "(14 of 24) hold NaN or infinite values")


@pytest.mark.parametrize("attr, value, reason", [
    ("schema_version", "one", "schema version 'one' is not supported"),
    ("config", "{not json", "attribute 'config' is not valid JSON"),
    ("fingerprint", None, "attribute 'fingerprint' is missing"),
])
def test_damaged_root_attributes_are_one_line(cli, datasets, tmp_path, attr, value, reason):
    path = tmp_path / "damaged.h5"
    shutil.copyfile(datasets["good"], path)
    with h5py.File(path, "r+") as h5:
        if value is None:
            del h5.attrs[attr]
        else:
            h5.attrs[attr] = value
    line = one_line_error(cli("data", "info", path))
    assert line.startswith(f"error: {path}: {reason}")


# ---------------------------------------------------------------- noa train: before long work

@pytest.fixture
def train_args(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return ["train", DOMAIN, "--config", config, "--run-dir", tmp_path / "new",
            "--no-register", "--quiet", "--device", "cpu"]


def current_config(tmp_path) -> dict:
    """The config `noa train good-toy --config tiny.toml` runs with, as a checkpoint holds it."""
    return domain_config(get_registry().domain(DOMAIN), "quick",
                         tmp_path / "tiny.toml").model_dump(mode="json")


def test_junk_or_missing_resume_is_refused_before_the_dataset_and_tokenizer(
        cli, no_long_work, train_args, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is no checkpoint")
    line = one_line_error(cli(*train_args, "--resume", junk))
    assert line.startswith(f"error: {junk}: not a readable checkpoint (not a PyTorch file, "
                           "or a truncated one; ")
    line = one_line_error(cli(*train_args, "--resume", tmp_path / "nope.pt"))
    assert line == f"error: {tmp_path / 'nope.pt'}: no such checkpoint"
    assert not (tmp_path / "new").exists()


def resume_state(config: dict, dataset_fingerprint: str) -> dict:
    """A checkpoint's keys (what resuming reads), with stand-in values but for the two that
    are compared before any work."""
    state = {key: 0 for key in pipeline_module.RESUME_KEYS}
    return {**state, "config": json.dumps(config, sort_keys=True),
            "dataset_fingerprint": dataset_fingerprint}


def test_resume_of_another_config_or_dataset_is_refused_before_the_tokenizer(
        cli, no_long_work, train_args, datasets, tmp_path):
    cfg = current_config(tmp_path)
    other = json.loads(json.dumps(cfg))
    other["training"]["lr"] = 0.5
    ckpt = save_checkpoint(tmp_path / "other.pt", resume_state(other, "x"))
    line = one_line_error(cli(*train_args, "--resume", ckpt))
    assert line == (f"error: {ckpt}: the checkpoint was trained with another config "
                    "(training.lr: 0.5 in the checkpoint, 0.001 now)")
    # Same config, other dataset: refused once the given dataset is read, before its features.
    save_checkpoint(ckpt, resume_state(cfg, "0123456789abcdef"))
    line = one_line_error(cli(*train_args, "--resume", ckpt, "--dataset", datasets["good"]))
    assert line.startswith(f"error: {ckpt}: the checkpoint was trained on another dataset "
                           "(fingerprint 0123456789ab, this one is ")


def test_incomplete_or_odd_noa_checkpoint_is_refused_before_work(cli, no_long_work,
                                                                 train_args, tmp_path):
    """A file in noa's checkpoint format that lacks what resuming reads, or whose config is
    not the JSON noa writes (each was a KeyError/TypeError traceback, some after the fit)."""
    cfg = current_config(tmp_path)
    ckpt = tmp_path / "odd.pt"
    state = resume_state(cfg, "x")
    del state["optimizer"]
    save_checkpoint(ckpt, state)
    line = one_line_error(cli(*train_args, "--resume", ckpt))
    assert line == f"error: {ckpt}: not a complete noa MNO checkpoint (no 'optimizer')"
    save_checkpoint(ckpt, {**resume_state(cfg, "x"), "config": 5})
    line = one_line_error(cli(*train_args, "--resume", ckpt))
    assert line == (f"error: {ckpt}: not a noa MNO checkpoint (its config or dataset "
                    "fingerprint is not what noa writes)")


def test_run_folder_checkpoints_are_inputs_too(cli, no_long_work, train_args, tmp_path):
    """What --run-dir holds is read before work: a final MNO of other settings, a junk
    last.pt the run would resume from."""
    other = current_config(tmp_path)
    other["training"]["epochs"] = 7
    checkpoints = tmp_path / "new" / "checkpoints"
    save_checkpoint(checkpoints / "final.pt", {
        "config": json.dumps(other, sort_keys=True), "dataset_fingerprint": "x"})
    line = one_line_error(cli(*train_args))
    assert line == (f"error: {tmp_path / 'new'} holds an MNO trained with other settings "
                    "(training.epochs: 7 then, 1 now); use another --run-dir")
    (checkpoints / "final.pt").unlink()
    (checkpoints / "last.pt").write_bytes(b"\x00" * 10)
    line = one_line_error(cli(*train_args))
    assert line.startswith(f"error: {checkpoints / 'last.pt'}: not a readable checkpoint")
    assert not (tmp_path / "new" / "dataset.h5").exists()


def test_crafted_checkpoint_is_refused_and_its_code_does_not_run(
        cli, no_long_work, train_args, tmp_path):
    marker = tmp_path / "pwned"
    evil = crafted_pickle(tmp_path / "evil.pt", marker)
    line = one_line_error(cli(*train_args, "--resume", evil))
    assert line == f"error: {evil}: {CRAFTED}"
    # A bare pickle (not torch's zip) as well, and through the transfer's loader of a
    # registered MNO.
    bare = tmp_path / "bare.pt"
    import pickle

    bare.write_bytes(pickle.dumps(Evil(marker)))
    line = one_line_error(cli(*train_args, "--resume", bare))
    assert line == f"error: {bare}: {CRAFTED}"
    from noa_platform.transfer.mno import SourceMNO

    with pytest.raises(NoaError, match="not a readable checkpoint"):
        SourceMNO.from_checkpoint(evil)
    assert not marker.exists()


@pytest.mark.parametrize("toml, expected", [
    ("[mno.architecture]\nbase_chanels = 4\n",
     "{file}: mno.architecture: unknown u-afno config key(s) 'base_chanels'; known keys: "),
    ('[mno.architecture]\nname = "nope"\n', "mno.architecture.name: unknown architecture 'nope'"),
    ("[generation]\nparameter_ranges = {rate = [0.0, 100.0]}\n",
     "{file}: generation.parameter_ranges.rate: [0, 100] is not inside its range [0.1, 10]"),
    ("[generation]\nparameter_ranges = {boost = [0.0, 1.0]}\n",
     "{file}: generation.parameter_ranges.boost: only real (linear or log) parameters"),
    ("[generation]\nic_families = {blobs = 1.0}\n",
     "{file}: generation.ic_families: domain 'good-toy' has no family blobs; known: noise, waves"
     ),
    ('[features]\nfamilies = ["initial", "nope"]\n', "unknown feature family 'nope'"),
])
def test_settings_only_the_domain_or_a_plugin_can_judge_fail_before_work(
        cli, no_long_work, train_args, tmp_path, toml, expected):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    line = one_line_error(cli(*train_args, "--config", config))
    assert expected.format(file=config) in line
    assert not (tmp_path / "new").exists()


def test_unknown_names_are_refused_before_work(cli, no_long_work, datasets, tmp_path):
    res = cli("train", "nope", "--run-dir", tmp_path / "r", "--no-register")
    assert one_line_error(res).startswith("error: unknown domain 'nope'; known: ")
    line = one_line_error(cli("features", datasets["good"], "--family", "nope"))
    assert "'nope'" in line
    line = one_line_error(cli("generate", DOMAIN, "--out", tmp_path / "x.h5", "--preset",
                              "huge"))
    assert "has no preset 'huge'" in line
    assert not (tmp_path / "r").exists() and not (tmp_path / "x.h5").exists()


def test_generate_refuses_a_device_it_cannot_use_before_work(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = one_line_error(cli("generate", DOMAIN, "--out", tmp_path / "x.h5", "--n", "2",
                              "--device", "cuda"))
    assert line == "error: --device cuda: no CUDA device is available"
    assert not list(tmp_path.glob("x.h5*"))
    assert cli("generate", DOMAIN, "--out", tmp_path / "x.h5", "--device", "tpu").exit_code == 2


def test_registry_inputs_are_one_line(cli, tmp_path):
    """Registry ids and folders: align, transfer and report name what is missing."""
    empty = tmp_path / "reg"
    empty.mkdir()
    line = one_line_error(cli("report", "--registry", empty, "--out", tmp_path / "rep"))
    assert "no registry" in line
    line = one_line_error(cli("transfer", "--source", DOMAIN, "--target", DOMAIN,
                              "--registry", empty))
    assert "no registry" in line
    line = one_line_error(cli("align", "tok-nope", tmp_path / "nofolder", "--registry", empty))
    assert line.startswith(f"error: registry {empty}: no registry there (no index.sqlite)")
    assert not (tmp_path / "rep").exists()


# ---------------------------------------------------------------- read-only (registered) data

def test_read_only_dataset_trains_from_a_copy_and_stays_untouched(cli, datasets, tmp_path,
                                                                  monkeypatch):
    """A registered dataset is read-only: `noa train --dataset` adds the features it lacks
    to a copy in the run folder; `noa features` refuses to rewrite it, saying what to do."""
    from noa_platform.registry import open_registry

    with open_registry(tmp_path / "reg") as reg:  # generated without features
        rid = reg.add("dataset", domain=DOMAIN, source=datasets["good"], config={},
                      metrics={})
        ro = reg.path(rid)
    assert not os.stat(ro).st_mode & 0o222  # what the registry makes of it
    before = ro.read_bytes()
    line = one_line_error(cli("features", ro, "--quiet"))
    assert line == (f"error: {ro}: the file is read-only (a registered dataset is) and lacks "
                    "features initial, summary, temporal, which are stored in the dataset; "
                    "copy it and add them to the copy")
    # The fit itself is not what is tested.
    monkeypatch.setattr(pipeline_module.Pipeline, "_train_tokenizer", lambda self, ds: None)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    res = cli("train", DOMAIN, "--config", config, "--dataset", ro, "--run-dir",
              tmp_path / "run", "--stage", "tokenizer", "--no-register", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"{ro} is read-only and lacks features" in res.output
    assert ro.read_bytes() == before
    # The same command again continues on the copy, copying nothing.
    again = cli("train", DOMAIN, "--config", config, "--dataset", ro, "--run-dir",
                tmp_path / "run", "--stage", "tokenizer", "--no-register", "--quiet")
    assert again.exit_code == 0 and "read-only" not in again.output, again.output
    with DatasetFile(tmp_path / "run" / "dataset.h5") as copy, DatasetFile(ro) as orig:
        assert copy.fingerprint == orig.fingerprint
        assert copy.feature_families() == ["initial", "summary", "temporal"]
    with open_registry(tmp_path / "reg") as reg:
        assert reg.path(rid) == ro  # its hash still checks


# ---------------------------------------------------------------- tokenizer folders

@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    features, names = synthetic_features(64)
    tok = fit_tokenizer(features, names, TokenizerConfig(steps=10, hidden=16, latent_dim=4,
                                                         batch_size=32, max_categories=2,
                                                         residual_levels=1),
                        seed=0, progress=False)
    return tok.save(tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.mark.parametrize("damage", ["json", "meta_types", "pickle_weights", "header"])
def test_crafted_or_malformed_tokenizer_folder_is_refused(cli, tokenizer_dir, tmp_path,
                                                          damage):
    bad = tmp_path / "bad" / "tokenizer"
    shutil.copytree(tokenizer_dir, bad)
    marker = tmp_path / "pwned"
    if damage == "json":
        (bad / "tokenizer.json").write_text('{"kind": "vqvae", ')
    elif damage == "meta_types":
        meta = json.loads((bad / "tokenizer.json").read_text())
        meta["codebook_size"] = "eight"
        meta["families"] = [1, 2]
        (bad / "tokenizer.json").write_text(json.dumps(meta))
    elif damage == "pickle_weights":
        crafted_pickle(bad / "weights.safetensors", marker)
    else:  # a safetensors header claiming more bytes than the file holds
        (bad / "weights.safetensors").write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(NoaError):
        Tokenizer.load(bad)
    line = one_line_error(cli("align", bad, tokenizer_dir, "--no-register",
                              "--out", tmp_path / "out"))
    assert str(bad) in line
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_align_refuses_a_nan_dataset_naming_it_before_aligning(cli, tokenizer_dir, datasets,
                                                               tmp_path, monkeypatch):
    from noa_platform.alignment import compare

    monkeypatch.setattr(compare, "align", lambda *a, **k: pytest.fail("aligned a NaN dataset"))
    path = datasets["nan"]
    line = one_line_error(cli("align", tokenizer_dir, tokenizer_dir, "--dataset", path,
                              "--method", "cooccurrence", "--no-register",
                              "--out", tmp_path / "out"))
    assert line == f"error: {path}: {BAD['nan']}"


# ---------------------------------------------------------------- unfinished work folders

def test_damaged_generation_manifest_is_one_line(cli, tmp_path):
    out = tmp_path / "x.h5"
    work = tmp_path / "x.h5.partial"
    work.mkdir()
    for text in ("{not json", '{"domain": "good-toy"}'):
        (work / "manifest.json").write_text(text)
        line = one_line_error(cli("data", "info", out))
        assert line == (f"error: {work / 'manifest.json'}: not the manifest of an unfinished "
                        f"generation; delete {work} and rerun")
    (work / "manifest.json").write_text("[1, 2]")
    line = one_line_error(cli("generate", DOMAIN, "--out", out, "--n", "2", "--quiet"))
    assert line.endswith(f"not the manifest of an unfinished generation; delete {work} and rerun")


def test_crafted_batch_file_of_an_unfinished_generation_is_refused(tmp_path, monkeypatch):
    """A batch file holding a pickled object (what would run code with allow_pickle=True)."""
    cfg = GenerationConfig(n_samples=16, n_frames=3, resolution=16, batch_size=8,
                           features=False)
    out, d = tmp_path / "x.h5", ToyDomain(DOMAIN)
    simulate = generate_module.Plan.simulate
    with monkeypatch.context() as m:  # killed after the first batch
        m.setattr(generate_module.Plan, "simulate", lambda self, idx, device="cpu": (
            simulate(self, idx, device) if idx[0] == 0 else pytest.fail("stop")))
        with pytest.raises(pytest.fail.Exception):
            generate(d, cfg, out, **quiet())
    batch = next((tmp_path / "x.h5.partial").glob("batch-*.npz"))
    np.savez(batch, indices=np.array([Evil(tmp_path / "pwned")], dtype=object),
             trajectories=np.zeros(1))
    with pytest.raises(NoaError) as err:
        generate(d, cfg, out, **quiet())
    assert str(err.value) == (f"{batch}: a damaged batch file (Object arrays cannot be loaded "
                              f"when allow_pickle=False); delete {batch.parent} and rerun")
    assert not (tmp_path / "pwned").exists() and not out.exists()


def test_transfer_reads_its_checkpoints_and_dataset_before_any_work(datasets, tmp_path,
                                                                    monkeypatch):
    """A crafted source MNO, or a target dataset holding NaN, is refused before the tokenizer
    comparison and the fine-tuning; the crafted code does not run."""
    from noa_platform.transfer import experiment

    monkeypatch.setattr(experiment, "_load_tokenizer",
                        lambda path: pytest.fail("the tokenizer transfer started"))
    marker = tmp_path / "pwned"
    evil = crafted_pickle(tmp_path / "evil.pt", marker)
    d = ToyDomain(DOMAIN)

    def inputs(mno: Path, dataset: Path) -> experiment.TransferInputs:
        return experiment.TransferInputs(d, d, source_tokenizer=tmp_path / "tok",
                                         target_tokenizer=tmp_path / "tok", source_mno=mno,
                                         target_mno=mno, target_dataset=dataset)

    with pytest.raises(NoaError) as err:
        experiment.run_transfer(inputs(evil, datasets["good"]), tmp_path / "out", samples=[2],
                                seeds=1, steps=1, log=lambda m: None)
    assert str(err.value) == f"{evil}: {CRAFTED}"
    with pytest.raises(NoaError) as err:
        experiment.run_transfer(inputs(evil, datasets["nan"]), tmp_path / "out", samples=[2],
                                seeds=1, steps=1, log=lambda m: None)
    assert str(err.value) == f"{datasets['nan']}: {BAD['nan']}"
    assert not marker.exists() and not (tmp_path / "out").exists()
