"""`noa align` end to end on a registry: two toy-domain tokenizers, outputs, registration and
one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("ot")
pytest.importorskip("sklearn")

from noa_platform.cli import main
from noa_platform.config import GenerationConfig
from noa_platform.data.generate import generate
from noa_platform.data.store import DatasetFile
from noa_platform.registry import open_registry
from noa_platform.testing.toy_domain import ToyDomain
from noa_platform.tokenizer import TokenizerConfig, fit_tokenizer

SMALL = dict(steps=60, hidden=16, latent_dim=3, batch_size=32, max_categories=2,
             residual_levels=2)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry with a toy dataset and two tokenizers fitted on it with different seeds,
    registered as domains 'toy' and 'toy-b'."""
    import torch

    root = tmp_path_factory.mktemp("align")
    data = generate(ToyDomain(), GenerationConfig(n_samples=64, n_frames=3, resolution=16,
                                                  batch_size=32),
                    root / "toy.h5", progress=False, log=lambda m: None)
    with DatasetFile(data) as ds:
        feats, names = {}, {}
        for f in ds.feature_families():
            arr, names[f] = ds.features(f)
            feats[f] = torch.from_numpy(arr)
    reg_dir = root / "registry"
    with open_registry(reg_dir) as reg:
        ds_id = reg.add("dataset", domain="toy", source=data, config={}, metrics={})
        ids = []
        for seed, domain in ((0, "toy"), (1, "toy-b")):
            tok = fit_tokenizer(feats, names, TokenizerConfig(**SMALL, seed=seed), progress=False)
            tok.save(root / f"tok{seed}")
            ids.append(reg.add("tokenizer", domain=domain, source=root / f"tok{seed}",
                               config={}, metrics={}, parents=[ds_id]))
    return reg_dir, ids, ds_id, root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_align_domains_writes_registers_and_prints(registry, tmp_path):
    reg_dir, (tok_a, tok_b), ds_id, _ = registry
    out = tmp_path / "out"
    res = run("align", "toy", "toy-b", "--null", 3, "--out", out, "--registry", reg_dir)
    assert res.exit_code == 0, res.output
    assert (out / "alignment.png").stat().st_size > 0
    record = json.loads((out / "alignment.json").read_text())
    assert set(record["methods"]) == {"prototypes", "geometry", "cooccurrence"}
    for method in record["methods"].values():
        for score in method["scores"].values():
            assert {"value", "better", "null_mean", "null_std", "null_n"} <= set(score)
            assert score["null_n"] == 3
        assert method["pairs"]
    assert record["methods"]["cooccurrence"]["info"]["trajectories"] == 64
    with open_registry(reg_dir) as reg:
        (entry,) = reg.list(kind="alignment")
        assert entry.domain == "toy->toy-b"
        assert set(entry.parents) == {tok_a, tok_b, ds_id}
        assert entry.metrics["prototypes"]["assignment_cost"]["value"] == pytest.approx(
            record["methods"]["prototypes"]["scores"]["assignment_cost"]["value"])
        assert (reg.path(entry.id) / "alignment.json").is_file()
    assert f"registered: {entry.id}" in res.output
    assert "assignment_cost" in res.output and "null" in res.output.lower()


def test_align_ids_folders_and_json(registry, tmp_path):
    reg_dir, (tok_a, _), _, root = registry
    res = run("align", tok_a[:8], root / "tok1", "--method", "prototypes", "--null", 2,
              "--json", "--out", tmp_path / "o", "--registry", reg_dir)
    assert res.exit_code == 0, res.output
    record = json.loads(res.output)
    assert list(record["methods"]) == ["prototypes"]
    # A tokenizer folder has no registry id: nothing to name as parent, nothing registered.
    assert record["registry_id"] is None and record["tokenizers"]["a"]["id"] == tok_a


@pytest.mark.parametrize("args, message", [
    (("align", "nowhere", "toy"), "'nowhere' is neither a domain with a registered tokenizer"),
    (("align", "toy", "toy", "--levels", "5"), "--levels: "),
    (("align", "toy", "toy", "--method", "cooccurrence", "--levels", "2"), "--levels: "),
])
def test_align_errors_are_one_line(registry, tmp_path, args, message):
    reg_dir = registry[0]
    res = run(*args, "--registry", reg_dir, "--out", tmp_path / "o", "--null", 2)
    assert res.exit_code == 1
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_align_without_the_extra_names_it(registry, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ot" else real(name, *a))
    res = run("align", "toy", "toy-b", "--registry", registry[0])
    assert res.exit_code == 1
    assert res.output.strip() == ("error: noa align needs pot: "
                                  "pip install 'noa-platform[align]'")
