"""The post-training report computed on the VALIDATION split (the core's validate_run with the
dataset's 'test' split mapped to 'val'), for choosing settings without reading the test split.
usage: val_report.py RUN_DIR DATASET OUT_DIR"""
import json
import sys
from pathlib import Path

from noa_platform.config import RunConfig
from noa_platform.data.store import DatasetFile
from noa_platform.evaluation.post_training import validate_run
from noa_platform.plugins import get_registry
from noa_platform.training.checkpoint import load_checkpoint
from noa_platform.training.data import SplitData
from noa_platform.training.pipeline import Pipeline

run, dspath, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
cfgd = json.loads((run / "config.json").read_text())
dom = get_registry().domain(cfgd.pop("domain"))
cfg = RunConfig.model_validate(cfgd)
pipe = Pipeline(dom, cfg, out, dataset=dspath, device="cpu", progress=False, log=lambda m: None)

class ValAsTest:
    def __init__(self, ds): self._ds = ds
    def split(self, name): return self._ds.split("val" if name == "test" else name)
    def __getattr__(self, k): return getattr(self._ds, k)

with DatasetFile(dspath) as ds:
    tok = pipe.registry.lookup("tokenizers", cfg.tokenizer.name, where="t").factory(
        **cfg.tokenizer.settings()).load(run / "tokenizer")
    tr = SplitData.load(ds, "train", dom.conditioning)
    op = pipe.build_operator(tr)
    op.load_state_dict(load_checkpoint(run / "checkpoints" / "best.pt")["model"])
    out.mkdir(parents=True, exist_ok=True)
    p = validate_run(dom, op, tok, ValAsTest(ds), out, cfg, log=lambda m: None)
r = json.loads(Path(p).read_text())
v = r["curves"]["vrmse"]
T = r["horizon"]
print(run.name, "VAL", {s: round(v["mno"][s], 4) for s in (1, 8, 16, T)}, "max", round(max(v["mno"][1:]), 4),
      "| pers", {s: round(v["persistence"][s], 4) for s in (1, 8, 16, T)},
      "| tok_recon", round(r["summary"]["tokenizer_recon_mno_over_cno"], 2),
      "lat_cos", round(r["summary"]["latent_cosine"], 3), "tokdyn", round(r["summary"]["token_agreement_dynamic"], 3),
      "corr_t", round(r["summary"]["correlation_time_fraction"], 3), "overall", r["verdicts"]["overall"]["verdict"])
