"""Config files (``--config FILE.toml``): every bad key or value is one line per problem naming
the file, the dotted key and the reason; random documents built from the real keys never
give a traceback. Listed in docs/reliability.md."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from test_shards import one_line_error

import noa_platform.data.generate as generate_module
import noa_platform.training.pipeline as pipeline_module
from noa_platform.config import RunConfig
from noa_platform.errors import NoaError
from noa_platform.models.architectures import U_AFNO_KEYS
from noa_platform.tokenizer import TokenizerConfig

DOMAIN = "good-toy"


def model_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every dotted key of a config model, nested models expanded."""
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += model_keys(ann, (*prefix, name))
        else:
            keys.append((*prefix, name))
    return keys


#: The real keys: the run config's, the built-in tokenizer's and the u-afno's settings
#: (the two tables whose keys their owner checks).
KEYS = (model_keys(RunConfig)
        + [("tokenizer", k) for k in TokenizerConfig.model_fields]
        + [("mno", "architecture", k) for k in U_AFNO_KEYS])

#: Small numbers only for the architecture: a valid huge one builds a huge network.
SMALL = st.one_of(st.integers(-2, 6), st.sampled_from([0.0, 0.5, -1.0, math.nan, math.inf]))
SCALARS = st.one_of(
    st.integers(-3, 64), st.sampled_from([10**8, 10**12, -(10**12), 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(alphabet="ab_-é 1", max_size=6))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                   st.dictionaries(st.sampled_from(["rate", "noise", "x", "train"]), SCALARS,
                                   max_size=2))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"


@st.composite
def documents(draw) -> str:
    """A TOML document setting 1–4 keys: real ones (or a misspelling) to random values."""
    tables: dict[tuple[str, ...], dict[str, str]] = {}
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 9)) == 0:  # a misspelt key
            key = (*key[:-1], key[-1] + draw(st.sampled_from(["s", "_", "x"])))
        value = draw(SMALL if key[:2] == ("mno", "architecture") else VALUES)
        tables.setdefault(key[:-1], {})[key[-1]] = toml_value(value)
    lines = []
    for table, items in tables.items():
        if table:
            lines.append(f"[{'.'.join(table)}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def stop_before_work(monkeypatch):
    """A config that passes every check reaches the work, which stops here at once: the first
    simulation of `noa generate` (so generation's own checks still run), the run of `noa
    train` (its checks are in Pipeline())."""
    def reached(*args, **kwargs):
        raise NoaError("reached the work")

    monkeypatch.setattr(generate_module.Plan, "simulate", reached)
    monkeypatch.setattr(pipeline_module.Pipeline, "run", reached)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=documents(), command=st.sampled_from(["generate", "train"]))
def test_random_config_documents_never_give_a_traceback(cli, stop_before_work, tmp_path, doc,
                                                        command):
    config = tmp_path / "run.toml"
    config.write_text(doc)
    out = tmp_path / f"{uuid.uuid4().hex}.h5"  # no earlier example's unfinished generation
    args = {"generate": ["generate", DOMAIN, "--out", out, "--config", config, "--quiet"],
            "train": ["train", DOMAIN, "--config", config, "--run-dir", tmp_path / "run",
                      "--no-register", "--quiet"]}[command]
    res = cli(*args)
    assert isinstance(res.exception, SystemExit), (doc, res.output)  # no uncaught exception
    assert res.exit_code == 1, (doc, res.output)
    lines = res.output.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), (doc, res.output)
    if lines != ["error: reached the work"]:
        assert all(str(config) in line or "mno.architecture.name" in line
                   or "tokenizer.name" in line or "feature famil" in line
                   for line in lines), (doc, res.output)


@pytest.mark.parametrize("toml, line", [
    ("[generation]\nn_samples = 4\nn_sampels = 4\n",
     "generation.n_sampels: Extra inputs are not permitted"),
    ('[training]\nepochs = "ten"\n',
     "training.epochs: Input should be a valid integer, unable to parse string as an integer"),
    ("[training]\nlr = -1.0\n", "training.lr: Input should be greater than 0"),
    ("[generation.splits]\ntrain = 0.5\n", "generation.splits: train + val + test must equal 1"),
    ("[tokenizer]\nsteps = 1.5\n",
     "tokenizer.steps: Input should be a valid integer, got a number with a fractional part"),
    ("[mno]\nincrement_cutoff = 2.0\n",
     "mno.increment_cutoff: Input should be less than or equal to 1"),
    ("[generation]\nparameter_ranges = {rate = [5.0, 1.0]}\n",
     "generation.parameter_ranges.rate: need low < high, got [5.0, 1.0]"),
    ("[generation]\nparameter_ranges = {offset = [-3.0, 0.0]}\n",
     "generation.parameter_ranges.offset: [-3, 0] is not inside its range [-1, 1]"),
])
def test_bad_value_is_one_line_with_file_key_and_reason(cli, stop_before_work, tmp_path, toml,
                                                        line):
    config = tmp_path / "run.toml"
    config.write_text(toml)
    res = cli("generate", DOMAIN, "--out", tmp_path / "x.h5", "--config", config)
    assert one_line_error(res) == f"error: {config}: {line}"
    assert not Path(tmp_path / "x.h5").exists()
