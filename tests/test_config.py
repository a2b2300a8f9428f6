"""Config loading: strict keys, one line per problem naming the file and the key path."""

from __future__ import annotations

import pytest

from noa_platform.config import load_config, resolve_config
from noa_platform.errors import ConfigError


def test_valid_file_overrides_defaults(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[generation]\nn_samples = 8\nresolution = 16\n")
    cfg = load_config(f)
    assert cfg.generation.n_samples == 8 and cfg.generation.n_frames == 32


def test_misspelled_key_names_file_and_key(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[generation]\nn_sample = 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(err.value) == f"{f}: generation.n_sample: Extra inputs are not permitted"


def test_one_line_per_problem(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[generation]\nn_samples = -1\ndtype = 'float16'\n[trainig]\nx = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{f}: ") for line in lines)
    assert any("generation.n_samples" in line for line in lines)
    assert any("generation.dtype" in line for line in lines)
    assert any(": trainig:" in line for line in lines)


def test_bad_toml_and_missing_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[generation\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(f)
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


def test_layers_in_order_and_errors_name_their_layer(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[generation]\nn_frames = 7\n")
    cfg = resolve_config({"generation": {"n_frames": 4, "resolution": 16}}, "quick", f,
                         {"generation": {"seed": 3}})
    g = cfg.generation
    assert (g.n_frames, g.resolution, g.seed) == (7, 16, 3)
    with pytest.raises(ConfigError, match="preset 'quick': generation.resolutio"):
        resolve_config({"generation": {"resolutio": 16}}, "quick")
    with pytest.raises(ConfigError, match="merged config: generation.splits: Value error|"
                                          "splits: train"):
        resolve_config({"generation": {"splits": {"train": 0.5}}}, "p")


def test_run_difference_ignores_what_a_run_keeps_on_disk():
    from noa_platform.config import run_difference

    old = {"training": {"lr": 1e-3, "keep_checkpoints": 2, "save_every": 100}, "seed": 0}
    new = {"training": {"lr": 1e-3, "keep_checkpoints": 5, "save_every": 7}, "seed": 0}
    assert run_difference(old, new) is None
    # A config written before keep_checkpoints existed is the same run.
    assert run_difference({"training": {"lr": 1e-3}, "seed": 0}, new) is None
    assert run_difference(old, {**new, "seed": 1}) == "seed: 0 then, 1 now"
    assert run_difference(old, {"training": {**new["training"], "lr": 0.5}, "seed": 0},
                          labels=("in the checkpoint", "now")) == \
        "training.lr: 0.001 in the checkpoint, 0.5 now"
    # A config written before ema_decay existed ran without an average: the same run as
    # ema_decay = 0, another run than any average.
    assert run_difference(old, {**new, "training": {**new["training"], "ema_decay": 0.0}}) \
        is None
    assert run_difference(old, {**new, "training": {**new["training"], "ema_decay": 0.99}}) \
        == "training.ema_decay: 0.0 then, 0.99 now"
