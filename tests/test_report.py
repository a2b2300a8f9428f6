"""`noa report`: every number in report.md comes from a registry row, pictures are written, and
missing kinds are said in one line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from noa_platform.cli import main
from noa_platform.registry import open_registry


def score(value, mean, std, better):
    return {"value": value, "better": better, "null_mean": mean, "null_std": std, "null_n": 20}


def alignment_metrics(cost, ami):
    return {
        "prototypes": {"assignment_cost": score(cost, 1.0, 0.05, "lower")},
        "geometry": {"gw_discrepancy": score(0.2, 0.1, 0.01, "lower")},
        "cooccurrence": {"ami": score(ami, 0.02, 0.004, "higher")},
    }


def populate(reg, tmp_path, *, transfer: bool):
    def artifact(name, payload):
        path = tmp_path / name
        path.write_text(json.dumps(payload))
        return path

    ids = {}
    for domain, vr in (("alpha", (0.31, 0.35)), ("beta", (0.52,))):
        tok = reg.add("tokenizer", domain=domain, source=artifact(f"tok-{domain}", {"d": domain}),
                      config={}, metrics={"val": {"reconstruction_mse": 0.0421,
                                                  "min_utilization": 0.875, "n_codebooks": 33}})
        for i, v in enumerate(vr):
            reg.add("evaluation", domain=domain, source=artifact(f"ev-{domain}{i}", {"i": i}),
                    config={}, metrics={"vrmse_step1": v, "vrmse_final": 2 * v,
                                        "verdict": "pass"}, parents=[tok])
        ids[domain] = tok
    # A report on the val split (`noa train --report-split val`) is for choosing settings
    # and stays out of the final table.
    reg.add("evaluation", domain="alpha", source=artifact("ev-alpha-val", {}), config={},
            metrics={"vrmse_step1": 0.9, "verdict": "poor", "split": "val"}, parents=[ids["alpha"]])
    ids["ab"] = reg.add("alignment", domain="alpha->beta", source=artifact("al1", {}), config={},
                        metrics=alignment_metrics(0.777, 0.456),
                        parents=[ids["alpha"], ids["beta"]])
    ids["aa"] = reg.add("alignment", domain="alpha->alpha", source=artifact("al2", {}),
                        config={}, metrics=alignment_metrics(0.123, 0.789),
                        parents=[ids["alpha"]])
    if transfer:
        summary = {str(k): {"finetune": {"mean": m, "std": 0.01, "min": m, "max": m},
                            "scratch": {"mean": m + 0.25, "std": 0.02, "min": m, "max": m}}
                   for k, m in ((8, 0.61), (32, 0.44))}
        ids["t"] = reg.add("transfer", domain="alpha->beta", source=artifact("tr", {}),
                           config={}, metrics={"mno": {"summary": summary},
                                               "tokenizer": {"readable": True,
                                                             "reconstruction_ratio": 1.93}})
    return ids


def test_report_reads_every_number_from_the_registry(tmp_path):
    reg_dir = tmp_path / "reg"
    with open_registry(reg_dir) as reg:
        ids = populate(reg, tmp_path, transfer=True)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["report", "--out", str(out), "--registry", str(reg_dir)])
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    # Per-domain: alpha's two test evaluations as mean ± sample std (0.33 ± 0.028; its val
    # report left out), beta's one.
    assert "0.33 ± 0.028 (n 2)" in text and "| 0.52 |" in text
    assert ids["alpha"] in text and "0.0421" in text
    # Alignment: the registered values with their nulls and ids; B->A filled from A->B.
    assert "0.777 (null 1 ± 0.05; " + ids["ab"] in text
    assert "0.789 (null 0.02 ± 0.004; " + ids["aa"] in text
    beta_row = next(line for line in text.splitlines() if line.startswith("| beta |")
                    and "null" in line)
    assert ids["ab"] in beta_row
    # Transfer: the curve's numbers and the tokenizer ratio.
    assert "| 8 | 0.61 ± 0.01 | 0.86 ± 0.02 |" in text and "1.93" in text
    for png in ("alignment_matrix.png", "transfer_curves.png"):
        assert (out / png).stat().st_size > 0 and f"]({png})" in text


def test_report_without_alignments_or_transfers_says_so(tmp_path):
    reg_dir = tmp_path / "reg"
    with open_registry(reg_dir) as reg:
        (tmp_path / "tok").write_text("{}")
        reg.add("tokenizer", domain="alpha", source=tmp_path / "tok", config={}, metrics={})
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["report", "--out", str(out), "--registry", str(reg_dir)])
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    assert "No alignment registered" in text and "No transfer registered" in text
    assert not (out / "alignment_matrix.png").exists()


def test_report_without_a_registry_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r"), "--registry",
                                    str(tmp_path / "none")])
    assert res.exit_code == 1
    assert "no registry there" in res.output and len(res.output.strip().splitlines()) == 1
