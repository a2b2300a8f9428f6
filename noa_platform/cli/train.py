"""``noa train``: dataset, tokenizer, MNO and validation of one domain in one command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from noa_platform.cli.app import main


@main.command()
@click.argument("domain")
@click.option("--preset", default="quick", show_default=True, help="Domain preset to start from.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config overriding the preset ([generation], [features], [tokenizer], "
                   "[mno], [training]).")
@click.option("--dataset", type=click.Path(dir_okay=False, path_type=Path),
              help="CNO dataset to train on; generated there when missing "
                   "(default: RUN_DIR/dataset.h5).")
@click.option("--stage", type=click.Choice(["tokenizer", "mno", "all"]), default="all",
              show_default=True,
              help="Stop after the tokenizer, after the MNO (before validation), or run "
                   "everything.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path),
              help="Continue the MNO from this checkpoint (default: RUN_DIR/checkpoints/last.pt "
                   "when it exists).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything the run writes (default: runs/DOMAIN-PRESET).")
@click.option("--epochs", type=click.IntRange(min=1), help="Override training.epochs.")
@click.option("--seed", type=click.IntRange(min=0), help="Override training.seed (the MNO's "
              "initialization, data order and window draws; the dataset keeps its own seed).")
@click.option("--bptt-window", type=click.IntRange(min=1), help="Override training.bptt_window.")
@click.option("--lambda-commit", type=click.FloatRange(min=0), help="Weight of L_commit.")
@click.option("--lambda-latent", type=click.FloatRange(min=0), help="Weight of L_latent.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--registry", "registry_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Registry to record the results in (default: $NOA_REGISTRY, else "
                   "./registry).")
@click.option("--no-register", is_flag=True, help="Do not record the results in a registry.")
@click.option("--report-split", type=click.Choice(["test", "val"]), default="test",
              show_default=True,
              help="Split the post-training report reads: val while choosing settings, so the "
                   "test split is read once, for the final table.")
@click.option("--nproc", type=click.IntRange(min=1),
              help="Train data-parallel with N processes: runs this command under torchrun "
                   "(gloo on CPU, NCCL and one GPU per process with --device cuda).")
def train(domain: str, preset: str, config_file: Path | None, dataset: Path | None, stage: str,
          resume: Path | None, device: str, run_dir: Path | None, epochs: int | None,
          seed: int | None, bptt_window: int | None, lambda_commit: float | None,
          lambda_latent: float | None, quiet: bool, registry_dir: Path | None,
          no_register: bool, report_split: str, nproc: int | None) -> None:
    """Train DOMAIN: CNO data, features, tokenizer, MNO, post-training validation.

    Each stage reuses what a previous run with the same settings left in RUN_DIR, so the
    same command run again after an interruption continues where it stopped.
    """
    ctx = click.get_current_context()
    from noa_platform.config import SettingError, domain_config, setting_source
    from noa_platform.errors import ConfigError
    from noa_platform.file_errors import doing
    from noa_platform.plugins import get_registry

    # Checked before torchrun starts: a bad domain or config is then one line, not N ranks'
    # errors under torchrun's own traceback.
    d = get_registry().domain(domain)
    flags = {"epochs": epochs, "seed": seed, "bptt_window": bptt_window,
             "lambda_commit": lambda_commit, "lambda_latent": lambda_latent}
    overrides = {k: v for k, v in flags.items() if v is not None}
    cfg = domain_config(d, preset, config_file, {"training": overrides} if overrides else None)
    if nproc is not None and "RANK" not in os.environ:  # not yet one of torchrun's processes
        ctx.exit(subprocess.call(torchrun_command(ctx, nproc)))
    from noa_platform.training.pipeline import Pipeline

    run_dir = run_dir or Path("runs") / f"{domain}-{preset}"
    try:
        pipeline = Pipeline(d, cfg, run_dir, dataset=dataset, device=device,
                            progress=not quiet, log=lambda m: click.echo(m, err=True),
                            report_split=report_split)
    except SettingError as exc:  # name the file (or preset) that set the refused key
        where = setting_source(exc.key, d, preset, config_file,
                               {"training": overrides} if overrides else None)
        raise ConfigError(f"{where}: {exc}") from None
    with doing("training in", run_dir):
        report = pipeline.run(stage=stage, resume=resume)
    # Under torchrun every rank runs this command; one record of the run is enough.
    if not no_register and int(os.environ.get("RANK", "0")) == 0:
        from noa_platform.registry import open_registry, registry_path
        from noa_platform.registry.training_run import register_run

        with doing("recording the run in registry", registry_path(registry_dir)), \
                open_registry(registry_dir) as reg:
            register_run(reg, domain, run_dir, pipeline.dataset_path, cfg, stage,
                         log=lambda m: click.echo(m, err=True))
    if pipeline.ranks.is_main:  # under torchrun, one line for the whole job
        click.echo(f"report: {report}")


def torchrun_command(ctx: click.Context, nproc: int) -> list[str]:
    """``torchrun`` on one node starting ``nproc`` copies of this ``noa train`` command, every
    option as given except ``--nproc``."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if isinstance(param, click.Argument):
            args.append(str(value))
        elif param.name == "nproc" or value is None or value is False:
            continue
        elif isinstance(param, click.Option) and param.is_flag:
            args.append(param.opts[0])
        else:
            args += [param.opts[0], str(value)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "noa_platform", "train", *args]

