"""Architectures, feature families and tokenizers are chosen by name from the plugin registry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from noa_platform.api import FeatureExtractorSpec
from noa_platform.cli import main
from noa_platform.config import domain_config, resolve_config
from noa_platform.data.features import add_features
from noa_platform.data.generate import generate
from noa_platform.data.store import DatasetFile
from noa_platform.errors import ConfigError, PluginError
from noa_platform.features.selection import FeatureSet, feature_set
from noa_platform.models import build_architecture
from noa_platform.plugins import discover, get_registry
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.training.checkpoint import load_checkpoint
from noa_platform.training.pipeline import Pipeline

SMALL_DATA = {"n_samples": 24, "n_frames": 4, "resolution": 16, "batch_size": 8}


@pytest.fixture
def components(fixture_plugins):
    """A registry with the core's built-ins and the ``f-components`` fixture plugin."""
    registry = discover(env={"NOA_PLUGINS": "f-components"})
    assert registry.owners[("architectures", "toy-pointwise")] == "f-components"
    return registry


def test_plugin_architecture_is_chosen_by_name_and_trains(components, tmp_path):
    cfg = resolve_config(overrides={
        "generation": SMALL_DATA,
        "tokenizer": {"steps": 20},
        "mno": {"architecture": {"name": "toy-pointwise", "width": 3}},
        "training": {"epochs": 1, "batch_size": 4, "bptt_window": 2, "warmup_steps": 1},
    })
    run = tmp_path / "run"
    pipeline = Pipeline(ToyDomain(), cfg, run, device="cpu", progress=False,
                        log=lambda m: None, registry=components)
    out = pipeline.run(stage="mno")
    # --stage mno stops after the MNO: checkpoints, no post-training validation report.
    assert out == run / "checkpoints" / "final.pt" and out.exists()
    assert not (run / "report.json").exists()
    state = load_checkpoint(out)
    assert state["step"] > 0
    # The plugin's network, with the config's width, is what was trained.
    assert state["model"]["architecture.inp.weight"].shape == (3, 2, 3, 3)
    assert not any(k.startswith("architecture.lift") for k in state["model"])


def test_architecture_default_comes_from_the_domain(components):
    toy = ToyDomain()
    toy.default_architecture = {"name": "toy-pointwise", "width": 5}
    cfg = domain_config(toy, "standard")
    model = build_architecture(toy.architecture_config(cfg.mno.architecture), channels=2,
                               n_params=3, registry=components)
    assert type(model).__name__ == "PointwiseNet" and model.latent_channels == 5
    # A layer naming another architecture drops the default's keys instead of merging them.
    cfg = domain_config(toy, "standard", overrides={"mno": {"architecture": {"name": "u-afno"}}})
    assert cfg.mno.architecture == {"name": "u-afno"}


def test_plugin_feature_family_is_computed_at_generation(components, tmp_path):
    chosen = feature_set(["initial", "extremes"], components)
    assert chosen.names["extremes"] == ("extremes.max", "extremes.min")
    path = tmp_path / "toy.h5"
    generate(ToyDomain(), resolve_config(overrides={"generation": SMALL_DATA}).generation, path,
             progress=False, log=lambda m: None, features=chosen)
    with DatasetFile(path) as ds:
        assert set(ds.feature_families()) == {"initial", "extremes"}
        values, names = ds.features("extremes")
        traj = ds.trajectories(slice(None))
    assert names == ("extremes.max", "extremes.min")
    flat = traj.reshape(len(traj), -1)
    np.testing.assert_allclose(values, np.stack([flat.max(1), flat.min(1)], 1), rtol=1e-6)

    # Adding a family later computes that family only and keeps the others.
    assert add_features(path, progress=False, log=lambda m: None,
                        features=feature_set(["initial", "extremes", "summary"], components))
    with DatasetFile(path) as ds:
        assert set(ds.feature_families()) == {"initial", "extremes", "summary"}
        np.testing.assert_array_equal(ds.features("extremes")[0], values)


def test_features_of_another_definition_version_are_recomputed(components, tmp_path):
    # Same column names, other values: a dataset that stored version 1 of a family must not
    # feed a tokenizer those columns once the definition is version 2.
    import dataclasses

    import h5py

    old = feature_set(["initial", "extremes"], components)
    path = tmp_path / "toy.h5"
    generate(ToyDomain(), resolve_config(overrides={"generation": SMALL_DATA}).generation, path,
             progress=False, log=lambda m: None, features=old)
    with DatasetFile(path) as ds:
        assert ds.feature_version("extremes") == "1"
        initial_version = ds.feature_version("initial")  # the core's current definition
    with h5py.File(path, "r+") as h5:  # stale values under the current names
        h5["features/extremes"][...] = 0.0
    assert not add_features(path, progress=False, log=lambda m: None, features=old)
    specs = tuple(dataclasses.replace(s, version="2") if s.family == "extremes" else s
                  for s in old.specs)
    new = FeatureSet(specs, old.owners, old.shared)
    assert add_features(path, progress=False, log=lambda m: None, features=new)
    with DatasetFile(path) as ds:
        assert ds.feature_version("extremes") == "2"
        assert ds.feature_version("initial") == initial_version  # untouched
        values = ds.features("extremes")[0]
        flat = ds.trajectories(slice(None)).reshape(len(ds), -1)
    np.testing.assert_allclose(values, np.stack([flat.max(1), flat.min(1)], 1), rtol=1e-6)


def test_feature_family_output_is_checked():
    spec = FeatureExtractorSpec("bad", lambda traj: torch.zeros(len(traj), 3), ("a", "b"))
    with pytest.raises(PluginError, match=r"'bad' \(plugin 'p'\) returned shape \(2, 3\), "
                                          r"expected \[B, D\] = \(2, 2\)"):
        FeatureSet((spec,), ("p",))(torch.zeros(2, 3, 1, 4, 4))


@pytest.mark.parametrize("kind, name, fragment", [
    ("feature", "nope", "features.families: unknown feature family 'nope'; known: extremes, "
                        "initial, summary, temporal"),
    ("tokenizer", "nope", "tokenizer.name: unknown tokenizer 'nope'; known: vqvae"),
    ("architecture", "nope", "mno.architecture.name: unknown architecture 'nope'; known: "
                             "toy-pointwise, u-afno"),
])
def test_unknown_names_are_one_error_listing_the_known_ones(components, tmp_path, kind, name,
                                                            fragment):
    section = {"feature": {"features": {"families": ["initial", name]}},
               "tokenizer": {"tokenizer": {"name": name}},
               "architecture": {"mno": {"architecture": {"name": name}}}}[kind]
    cfg = resolve_config(overrides=section)
    with pytest.raises(PluginError) as err:
        Pipeline(ToyDomain(), cfg, tmp_path, device="cpu", log=lambda m: None,
                 registry=components)
    assert str(err.value) == fragment
    assert not (tmp_path / "dataset.h5").exists()  # refused before any work


def test_unknown_tokenizer_from_the_command_line(fixture_plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("NOA_PLUGINS", "a-good")  # no failed fixtures to mention in the error
    config = tmp_path / "run.toml"
    config.write_text('[tokenizer]\nname = "nope"\n')
    get_registry.cache_clear()
    try:
        res = CliRunner().invoke(main, [
            "train", "good-toy", "--config", str(config), "--run-dir", str(tmp_path / "r")])
    finally:
        get_registry.cache_clear()
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: tokenizer.name: unknown tokenizer 'nope'; known: vqvae"]


def test_tokenizer_section_layers_and_checks():
    # The vqvae's own keys are checked at load time, naming the key.
    with pytest.raises(ConfigError, match="command line: tokenizer.codebok_size: Extra inputs"):
        resolve_config(overrides={"tokenizer": {"codebok_size": 8}})
    # Another family's settings are left to its factory, and a layer naming it replaces the
    # earlier layers' vqvae settings instead of merging with them.
    cfg = resolve_config(preset={"tokenizer": {"steps": 60}},
                         overrides={"tokenizer": {"name": "other", "depth": 2}})
    assert cfg.tokenizer.name == "other" and cfg.tokenizer.settings() == {"depth": 2}
    cfg = resolve_config(preset={"tokenizer": {"steps": 60}}, overrides={"tokenizer": {"lr": 0.1}})
    assert cfg.tokenizer.settings() == {"steps": 60, "lr": 0.1}
    with pytest.raises(ConfigError,
                       match="command line: features.families: initial listed more than once"):
        resolve_config(overrides={"features": {"families": ["initial", "initial"]}})


def test_cli_and_tokenizer_imports_stay_light():
    """The CLI and the run config import no torch; the fitted tokenizer never imports its fit."""
    code = ("import sys, noa_platform.cli, noa_platform.config;"
            "import noa_platform.tokenizer.spec;"
            "heavy = ('torch', 'noa_platform.tokenizer.vqvae');"
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys, noa_platform.tokenizer.vqvae;"
            "print('noa_platform.tokenizer.training' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
