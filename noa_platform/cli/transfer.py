"""``noa transfer``: what one domain's tokenizer and MNO carry over to another domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from noa_platform.cli.app import echo_json, main
from noa_platform.cli.registry import registry_option

#: The files a transfer writes (noa_platform.transfer.experiment names them too; repeated here
#: so that importing this module stays torch-free).
RESULT_FILE, PLOT_FILE = "transfer.json", "transfer.png"

# Everything heavier than click is imported inside the command, so `noa --help` stays fast.


class SampleCounts(click.ParamType):
    """``8,32,128``: positive integers separated by commas."""

    name = "K,K,..."

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            counts = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
        if not counts or min(counts) < 1:
            self.fail(f"{value!r}: give positive sample counts, e.g. 8,32,128", param, ctx)
        return sorted(set(counts))


@main.command()
@click.option("--source", "source", required=True, help="Source domain A.")
@click.option("--target", "target", required=True, help="Target domain B.")
@click.option("--samples", type=SampleCounts(), default="8,32,128", show_default=True,
              help="Numbers k of target training samples the MNOs are trained on.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per k (each draws its own k samples, initialisation and batches).")
@click.option("--steps", type=click.IntRange(min=1), default=24, show_default=True,
              help="Optimizer steps of every fine-tune and every scratch run.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu",
              show_default=True)
@registry_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for transfer.json and transfer.png (default: "
                   "runs/transfer-SOURCE-TARGET).")
@click.option("--no-register", is_flag=True, help="Do not record the result in the registry.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def transfer(source: str, target: str, samples: list[int], seeds: int, steps: int, device: str,
             registry_dir: Path | None, out_dir: Path | None, no_register: bool,
             as_json: bool) -> None:
    """Transfer from domain SOURCE to domain TARGET (their latest registered artifacts).

    Tokenizer: SOURCE's tokenizer reading TARGET's test features, against TARGET's own.
    MNO: SOURCE's MNO fine-tuned on k TARGET samples against the same architecture trained
    from scratch on the same samples for the same steps; TARGET test VRMSE against k.
    """
    from noa_platform.plugins import get_registry
    from noa_platform.registry import open_registry

    plugins = get_registry()
    domains = {"source": plugins.domain(source), "target": plugins.domain(target)}
    with open_registry(registry_dir, create=False) as reg:
        result, out = _run(reg, plugins, domains, samples, seeds, steps, device, out_dir,
                           no_register)
    if as_json:
        echo_json(result)
    else:
        click.echo(_table(result))
        click.echo(f"result: {out / RESULT_FILE}, curve: {out / PLOT_FILE}")


def _run(reg: Any, plugins: Any, domains: dict[str, Any], samples: list[int], seeds: int,
         steps: int, device: str, out_dir: Path | None, no_register: bool
         ) -> tuple[dict[str, Any], Path]:
    from noa_platform.data.store import DatasetFile
    from noa_platform.file_errors import doing
    from noa_platform.training.pipeline import resolve_device
    from noa_platform.transfer import sources
    from noa_platform.transfer.experiment import TransferInputs, run_transfer

    source, target = domains["source"].name, domains["target"].name
    found = {
        "source_tokenizer": sources.latest(reg, "tokenizer", source),
        "source_mno": sources.latest(reg, "mno", source),
        "target_tokenizer": sources.latest(reg, "tokenizer", target),
        "target_mno": sources.latest(reg, "mno", target),
        "target_dataset": sources.latest(reg, "dataset", target),
    }
    inputs = TransferInputs(
        domains["source"], domains["target"],
        source_tokenizer=sources.tokenizer_folder(found["source_tokenizer"]),
        target_tokenizer=sources.tokenizer_folder(found["target_tokenizer"]),
        source_mno=sources.checkpoint_file(found["source_mno"]),
        target_mno=sources.checkpoint_file(found["target_mno"]),
        target_dataset=sources.dataset_file(found["target_dataset"]))
    out = out_dir or Path("runs") / f"transfer-{source}-{target}"
    with doing("measuring the transfer into", out):
        result = run_transfer(inputs, out, samples=samples, seeds=seeds, steps=steps,
                              device=resolve_device(device), plugins=plugins, log=_echo,
                              artifacts={kind: f.id for kind, f in found.items()})
    if not no_register:
        with DatasetFile(inputs.target_dataset) as ds:
            fingerprint = ds.fingerprint
        rid = sources.register_result(
            reg, source, target, {RESULT_FILE: out / RESULT_FILE, PLOT_FILE: out / PLOT_FILE},
            result, {"source": source, "target": target, "samples": samples, "seeds": seeds,
                     "steps": steps, "artifacts": result["artifacts"]},
            parents=[f.id for f in found.values()], dataset_fingerprint=fingerprint)
        result["id"] = rid
        _echo(f"registered in {reg.root}: transfer {rid}")
    return result, out


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _table(result: dict[str, Any]) -> str:
    """The tokenizer comparison and the VRMSE-against-k table as plain text."""
    a, b = result["source"], result["target"]
    tok, mno = result["tokenizer"], result["mno"]
    lines = [f"tokenizer transfer {a} -> {b} ({tok['n_samples']} {b} test samples):"]
    if not tok["readable"]:
        lines.append(f"  {a}'s tokenizer cannot read {b}'s features: {tok['reason']}")
    else:
        for who, name in (("source", f"{a}'s"), ("target", f"{b}'s own")):
            t = tok[who]
            lines.append(f"  {name:>24} tokenizer: reconstruction {t['reconstruction_mse']:.3g} "
                         f"(median {t['reconstruction_median']:.3g}) in {b}'s column variances; "
                         f"utilization min {t['min_utilization']:.2f} mean "
                         f"{t['mean_utilization']:.2f}; perplexity/size "
                         f"{t['mean_perplexity_ratio']:.2f}")
    lines.append(f"MNO transfer {a} -> {b}: test VRMSE ({mno['metric']}; persistence "
                 f"{mno['persistence']:.4f}, {b}'s own MNO {mno['target_mno']:.4f}), "
                 f"mean ± std over {len(mno['seeds'])} seed(s)")
    lines.append(f"  {'k':>5} {'steps':>6} {'fine-tuned':>18} {'from scratch':>18}")
    for k in mno["samples"]:
        s = mno["summary"][str(k)]
        cells = [f"{s[kind]['mean']:.4f} ± {s[kind]['std']:.4f}" for kind in ("finetune", "scratch")]
        lines.append(f"  {k:>5} {mno['steps'][str(k)]:>6} {cells[0]:>18} {cells[1]:>18}")
    return "\n".join(lines)
