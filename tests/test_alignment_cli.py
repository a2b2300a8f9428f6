"""`noa align` end to end on a registry: two toy-domain tokenizers, outputs, registration (with
the fingerprint of the data the alignment depended on) and one-line errors. Without the `align`
extra: tests/test_alignment_extra.py."""

from __future__ import annotations

import hashlib
import json
import re

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


def fingerprint_of(path) -> str:
    with DatasetFile(path) as ds:
        return ds.fingerprint


def registered(reg_dir, output: str):
    """The registry entry whose id the command printed (``registered: ID``)."""
    (rid,) = re.findall(r"(?m)^registered: (\S+)$", output)
    with open_registry(reg_dir) as reg:
        return reg.get(rid)


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
    entry = registered(reg_dir, res.output)
    assert entry.kind == "alignment" and entry.domain == "toy->toy-b"
    assert set(entry.parents) == {tok_a, tok_b, ds_id}
    assert entry.metrics["prototypes"]["assignment_cost"]["value"] == pytest.approx(
        record["methods"]["prototypes"]["scores"]["assignment_cost"]["value"])
    # Both tokenizers were fitted on, and co-occurrence read, the one toy dataset: the row
    # carries that dataset's own fingerprint, read here from the file.
    with open_registry(reg_dir) as reg:
        toy = fingerprint_of(reg.path(ds_id))
        assert (reg.path(entry.id) / "alignment.json").is_file()
    assert entry.dataset_fingerprint == toy
    assert entry.config["dataset_fingerprints"] == [toy]
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


def test_alignment_fingerprint_covers_the_tokenizers_data_and_what_cooccurrence_read(
        registry, tmp_path):
    """Co-occurrence reading another dataset: the row's fingerprint is the sha256 of the sorted
    fingerprints of that dataset and of the tokenizers' own. Prototypes and geometry read no
    trajectories (--dataset is unused): the tokenizers' dataset alone. A tokenizer without a
    parent dataset: its row's fingerprint."""
    reg_dir, _, _, root = registry
    other = generate(ToyDomain(), GenerationConfig(n_samples=16, n_frames=3, resolution=16,
                                                   batch_size=16, seed=7),
                     tmp_path / "other.h5", progress=False, log=lambda m: None)
    toy, theirs = fingerprint_of(root / "toy.h5"), fingerprint_of(other)
    assert toy != theirs
    both = hashlib.sha256("\n".join(sorted([toy, theirs])).encode()).hexdigest()
    for method, fingerprints, expected in (("cooccurrence", sorted([toy, theirs]), both),
                                           ("prototypes", [toy], toy),
                                           ("geometry", [toy], toy)):
        res = run("align", "toy", "toy-b", "--method", method, "--dataset", other, "--null", 2,
                  "--out", tmp_path / method, "--registry", reg_dir)
        assert res.exit_code == 0, res.output
        entry = registered(reg_dir, res.output)
        assert entry.config["methods"] == [method]
        assert entry.config["dataset_fingerprints"] == fingerprints, method
        assert entry.dataset_fingerprint == expected, method
    # A tokenizer registered without a parent dataset contributes the fingerprint its row
    # carries (here: as if fitted on the other dataset).
    with open_registry(reg_dir) as reg:
        reg.add("tokenizer", domain="toy-c", source=root / "tok1", config={}, metrics={},
                dataset_fingerprint=theirs)
    res = run("align", "toy", "toy-c", "--method", "geometry", "--null", 2,
              "--out", tmp_path / "c", "--registry", reg_dir)
    assert res.exit_code == 0, res.output
    entry = registered(reg_dir, res.output)
    assert entry.config["dataset_fingerprints"] == sorted([toy, theirs])
    assert entry.dataset_fingerprint == both
