"""noa transfer: the layer re-initialisation rule, fine-tune and scratch on the same samples
and steps, the tokenizer's readability rule and error units, the result's shape, CLI errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from noa_platform.cli import main
from noa_platform.config import resolve_config
from noa_platform.data.store import DatasetFile
from noa_platform.models import build_architecture
from noa_platform.registry import open_registry
from noa_platform.registry.training_run import register_run
from noa_platform.testing.toy_domain import TINY_U_AFNO, ToyDomain
from noa_platform.training import trainer as trainer_module
from noa_platform.training.pipeline import Pipeline
from noa_platform.transfer.layers import transfer_layers
from noa_platform.transfer.mno import step_plan
from noa_platform.transfer.tokenizer import (
    column_errors,
    readable_columns,
    split_features,
    tokenizer_transfer,
)

TINY = {
    "generation": {"n_samples": 24, "n_frames": 4, "resolution": 16, "batch_size": 8},
    "tokenizer": {"steps": 40},
    "mno": {"architecture": TINY_U_AFNO},
    "training": {"epochs": 1, "batch_size": 4, "bptt_window": 2, "warmup_steps": 1},
}


def u_afno(channels: int, n_params: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_architecture({"name": "u-afno", **TINY_U_AFNO}, channels=channels,
                              n_params=n_params)


# --------------------------------------------------------------------------- layer rule

# What depends on the channel count C and the θ length P in a U-AFNO, read off its data flow
# (noa_platform/models/uafno.py): the lift convolution takes C input channels, the head
# returns C, the θ embedding's first linear layer takes P inputs. Nothing else is sized by
# either.
CHANNEL_LAYERS = {"lift", "head"}
THETA_LAYERS = {"theta_embed.net.0"}


@pytest.mark.parametrize(("channels", "n_params", "expected"), [
    (2, 3, set()),
    (3, 3, CHANNEL_LAYERS),
    (2, 5, THETA_LAYERS),
    (1, 4, CHANNEL_LAYERS | THETA_LAYERS),
])
def test_only_layers_sized_by_channels_or_theta_are_reinitialised(channels, n_params, expected):
    source = u_afno(2, 3, seed=11)
    target = u_afno(channels, n_params, seed=5)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    result = transfer_layers(source.state_dict(), target)
    assert set(result.reinitialised) == expected
    src = source.state_dict()
    for key, value in target.state_dict().items():
        layer = key.rpartition(".")[0]
        if layer in expected:  # the whole layer, bias included, keeps its fresh init
            assert torch.equal(value, fresh[key]), key
        else:  # every other tensor is the source's, exactly
            assert torch.equal(value, src[key]), key
    assert set(result.kept) | set(result.reinitialised) == {
        k.rpartition(".")[0] for k in fresh}


def test_step_plan_gives_exactly_the_budget_when_whole_passes_allow():
    for k in (1, 3, 8, 32, 128, 100):
        for steps in (1, 7, 40, 64):
            plan = step_plan(k, steps, max_batch=16)
            assert plan.batch_size <= 16
            windows = plan.steps * plan.batch_size
            if plan.steps == steps:  # each sample contributes the same number of windows
                assert windows == k * plan.windows_per_sample
            else:  # rounded up to the next whole pass over the k samples
                assert plan.steps > steps and windows >= k * plan.windows_per_sample
    # 40 steps of batch 16 over 8, 32 or 128 samples: always exact, always batch 16.
    for k in (8, 32, 128):
        assert step_plan(k, 40, 16).steps == 40 and step_plan(k, 40, 16).batch_size == 16


# --------------------------------------------------------------------------- tokenizer rule


class FakeDataset:
    def __init__(self, families: dict[str, tuple[str, ...]], version: str = "2"):
        self.families, self.version = families, version

    def split(self, name):
        return np.arange(3)

    def feature_families(self):
        return list(self.families)

    def features(self, family):
        return np.zeros((3, len(self.families[family])), np.float32), self.families[family]

    def feature_version(self, family):
        return self.version


class FakeTokenizer:
    def __init__(self):
        self.names = {"summary": ("a", "b"), "initial": ("x",)}


def test_tokenizer_readability_rule_names_what_is_missing():
    tok = FakeTokenizer()
    ok = FakeDataset({"summary": ("b", "extra", "a"), "initial": ("x",)})
    assert readable_columns(tok, ok) == ""  # other order and extra columns are fine
    assert "no feature family 'initial'" in readable_columns(
        tok, FakeDataset({"summary": ("a", "b")}))
    assert "lacks column(s) 'b'" in readable_columns(
        tok, FakeDataset({"summary": ("a",), "initial": ("x",)}))
    assert "definition version '2'" in readable_columns(
        tok, ok, {"feature_versions": {"summary": "1"}})


def test_an_unreadable_source_tokenizer_is_a_statement_not_a_substitute():
    source, target = FakeTokenizer(), FakeTokenizer()
    target.names = {"summary": ("a",)}
    result = tokenizer_transfer(source, target, FakeDataset({"summary": ("a",)}))
    assert result == {"split": "test", "n_samples": 3, "readable": False,
                      "reason": "source tokenizer: the target's feature family 'summary' "
                                "lacks column(s) 'b' that the tokenizer reads"}


# --------------------------------------------------------------------------- toy runs


def toy_run(root: Path, name: str, channels: int) -> Path:
    run = root / name
    Pipeline(ToyDomain(name, channels=channels), resolve_config(overrides=TINY), run,
             device="cpu", progress=False, log=lambda m: None).run(stage="mno")
    return run


@pytest.fixture(scope="module")
def toy_registry(tmp_path_factory):
    """Two toy domains trained to the MNO stage and registered: 'toy-a' with 2 channels,
    'toy-b' with 3 (same θ)."""
    root = tmp_path_factory.mktemp("transfer")
    reg_dir = root / "registry"
    with open_registry(reg_dir) as reg:
        for name, channels in (("toy-a", 2), ("toy-b", 3)):
            run = toy_run(root, name, channels)
            register_run(reg, name, run, run / "dataset.h5",
                         json.loads((run / "config.json").read_text()), "mno")
    return reg_dir


class ToyPlugins:
    """The process's plugin registry with the two toy domains added."""

    def __init__(self, real):
        self.real = real
        self.toys = {n: ToyDomain(n, channels=c) for n, c in (("toy-a", 2), ("toy-b", 3))}

    def domain(self, name):
        return self.toys[name] if name in self.toys else self.real.domain(name)

    def __getattr__(self, attr):
        return getattr(self.real, attr)


@pytest.fixture
def toy_plugins(monkeypatch):
    """``noa`` commands see the toy domains besides the installed ones."""
    from noa_platform.plugins import get_registry

    plugins = ToyPlugins(get_registry())
    monkeypatch.setattr("noa_platform.plugins.get_registry", lambda: plugins)
    return plugins


@pytest.mark.slow  # the module's toy runs: ~20 s under load on 2 cores, once per module
def test_tokenizer_errors_are_in_target_column_variances(toy_registry):
    from noa_platform.tokenizer import Tokenizer

    with open_registry(toy_registry) as reg:
        tok_dir = reg.path(reg.latest("tokenizer", "toy-b").id)
        data = reg.path(reg.latest("dataset", "toy-b").id)
    tok = Tokenizer.load(tok_dir)
    with DatasetFile(data) as ds:
        feats = split_features(tok, ds, "test")
        errors = column_errors(tok, feats)
        same = tokenizer_transfer(tok, tok, ds)
    # Independently: decode the tokens, take the stored static columns, divide.
    decoded = tok.decode(tok.tokenize(feats), normalized=False)["summary"].double().numpy()
    raw = feats["summary"].double().numpy()
    for j, col in enumerate(tok.names["summary"]):
        mse, var = errors[f"summary/{col}"]
        assert mse == pytest.approx(((decoded[:, j] - raw[:, j]) ** 2).mean(), rel=1e-9)
        assert var == pytest.approx(raw[:, j].var(), rel=1e-9, abs=1e-300)
    # A tokenizer against itself: readable, every column shared, ratio exactly 1.
    assert same["readable"] and same["reconstruction_ratio"] == 1.0
    assert same["shared_columns"] == sum(len(c) for c in tok.names.values())


@pytest.mark.slow
def test_finetune_and_scratch_see_the_same_samples_and_steps(toy_registry, toy_plugins,
                                                             tmp_path, monkeypatch):
    seen: dict[int, dict] = {}
    original = trainer_module.Trainer._train_batch

    def spy(self, positions):
        rec = seen.setdefault(id(self), {"samples": tuple(self.train.indices.tolist()),
                                         "batches": [], "trainer": self})
        rec["batches"].append(tuple(int(p) for p in positions))
        return original(self, positions)

    monkeypatch.setattr(trainer_module.Trainer, "_train_batch", spy)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "transfer", "--source", "toy-a", "--target", "toy-b", "--samples", "2,5",
        "--seeds", "2", "--steps", "3", "--registry", str(toy_registry), "--out", str(out),
        "--json"])
    assert result.exit_code == 0, result.output
    runs = list(seen.values())
    assert len(runs) == 2 * 2 * 2  # (k, seed) pairs x (fine-tune, scratch)
    for finetune, scratch in zip(runs[0::2], runs[1::2]):
        k = len(finetune["samples"])
        # 3 steps of batch <= 4 cover 2 samples equally; 5 samples need a 4th step (rounded
        # up to whole passes, tests/step_plan) -- in both runs alike.
        assert len(finetune["batches"]) == len(scratch["batches"]) == {2: 3, 5: 4}[k]
        assert finetune["samples"] == scratch["samples"]
        assert finetune["batches"] == scratch["batches"]  # the same windows' samples, in order
    assert sorted(len(r["samples"]) for r in runs[0::2]) == [2, 2, 5, 5]
    # Seeds draw different sample sets.
    assert runs[0]["samples"] != runs[2]["samples"]

    # The result's shape (docs/transfer.md) in the file, on stdout and in the registry.
    printed = json.loads(result.stdout)
    stored = json.loads((out / "transfer.json").read_text())
    assert (out / "transfer.png").stat().st_size > 0
    mno = stored["mno"]
    assert mno["samples"] == [2, 5] and mno["seeds"] == [0, 1]
    for kind in ("finetune", "scratch", "finetune_final", "scratch_final"):
        assert set(mno[kind]) == {"2", "5"}
        assert all(len(v) == 2 and all(np.isfinite(v)) for v in mno[kind].values())
    assert mno["steps"] == {"2": 3, "5": 4}
    assert set(mno["layers"]["reinitialised"]) == CHANNEL_LAYERS  # 2 -> 3 channels
    assert stored["tokenizer"]["readable"] is True
    with open_registry(toy_registry) as reg:
        entry = reg.get(printed["id"])
        assert entry.kind == "transfer" and entry.domain == "toy-a->toy-b"
        assert entry.metrics["mno"]["finetune"] == mno["finetune"]
        assert set(entry.parents) == set(printed["artifacts"].values())
        assert len(entry.parents) == 5


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), [
    (["--source", "toy-a", "--target", "waves"],
     "no tokenizer registered for domain 'waves': run `noa train waves"),
    (["--source", "toy-a", "--target", "toy-b", "--samples", "8,40"],
     "--samples 40: toy-b's training split has only"),
])
def test_cli_errors_are_one_line(toy_registry, toy_plugins, args, message):
    assert_one_line_error(args + ["--registry", str(toy_registry)], message)


def assert_one_line_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["transfer", *args, "--no-register"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.output


def test_cli_error_names_the_missing_artifact(tmp_path):
    open_registry(tmp_path / "reg").close()
    assert_one_line_error(
        ["--source", "reaction-diffusion", "--target", "waves", "--registry",
         str(tmp_path / "reg")],
        "no tokenizer registered for domain 'reaction-diffusion': run `noa train "
        "reaction-diffusion")


def test_cli_error_without_a_registry(tmp_path):
    result = CliRunner().invoke(main, ["transfer", "--source", "reaction-diffusion",
                                       "--target", "waves", "--registry",
                                       str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: registry ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_an_output_folder_refusing_writes_is_one_line_and_nothing_is_registered(
        toy_registry, toy_plugins, tmp_path, monkeypatch, code):
    from test_reliability_os import Refuse

    out = tmp_path / "out"
    out.mkdir()
    with open_registry(toy_registry) as reg:
        before = {e.id for e in reg.list(kind="transfer")}
    Refuse(out, code, monkeypatch)
    result = CliRunner().invoke(main, [
        "transfer", "--source", "toy-a", "--target", "toy-b", "--samples", "2", "--seeds", "1",
        "--steps", "1", "--registry", str(toy_registry), "--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(out) in lines[-1], lines
    assert os.strerror(code) in lines[-1] and "Traceback" not in result.output
    assert not any(out.iterdir())  # no result, no temporary
    with open_registry(toy_registry) as reg:
        assert {e.id for e in reg.list(kind="transfer")} == before
