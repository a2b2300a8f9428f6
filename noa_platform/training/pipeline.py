"""``noa train DOMAIN``: the CNO-trained pipeline in one call.

1. **dataset** — the CNO dataset (generated when missing, resumable; the ``[features]``
   families added when missing);
2. **tokenizer** — the ``[tokenizer] name`` family (default the VQ-VAE) fitted on the CNO
   features of the training split, saved with its report (JSON + PNG);
3. **mno** — the ``[mno.architecture] name`` architecture (default the domain's) trained on
   CNO trajectories with truncated BPTT, optionally aligned with the frozen tokenizer;
   ``--stage mno`` stops here;
4. **validation** — MNO rollouts against the CNO on the test split (or, with
   ``report_split="val"``, the val split), written to the report.

Architecture, feature families and tokenizer are looked up by name in the plugin registry.

Every stage leaves its result in the run folder and is skipped when a result made from the
same inputs is already there, so running the same command again after an interruption
continues instead of starting over.

Under ``torchrun`` (:mod:`noa_platform.training.distributed`) rank 0 prepares the dataset and
fits the tokenizer while the other processes wait, then they load what it wrote; all of them
train the MNO data-parallel; rank 0 alone writes files and runs the post-training validation.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from noa_platform.api import Domain
from noa_platform.atomic import atomic_path, atomic_write_json, remove_stale_temporaries
from noa_platform.config import RunConfig, SettingError, run_difference
from noa_platform.data.features import add_features, missing_families
from noa_platform.data.generate import generate
from noa_platform.data.store import DatasetFile, read_only
from noa_platform.errors import NoaError
from noa_platform.evaluation.post_training import check_report_split, validate_run
from noa_platform.features.selection import feature_set
from noa_platform.models import build_domain_architecture, count_parameters
from noa_platform.models.operator import NeuralOperator
from noa_platform.plugins import PluginRegistry, get_registry
from noa_platform.registry.objects import sha256_of
from noa_platform.training.checkpoint import load_checkpoint, resume_mismatch, save_checkpoint
from noa_platform.training.data import SplitData
from noa_platform.training.distributed import join
from noa_platform.training.trainer import Trainer

STAGES = ("tokenizer", "mno", "all")
#: What :meth:`Trainer.resume` reads from a checkpoint: checked before any work.
RESUME_KEYS = ("model", "optimizer", "scheduler", "rng_torch", "step", "epoch", "batch",
               "best_val", "bad_epochs", "nonfinite", "stopped", "val_history", "config",
               "dataset_fingerprint", "tokenizer_fingerprint")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NoaError("--device cuda: no CUDA device is available")
    return torch.device(name)


class Pipeline:
    """One run folder: ``config.json``, ``dataset.h5`` (unless given), ``tokenizer/``,
    ``checkpoints/``, ``metrics.jsonl``, ``report.json`` and the pictures."""

    def __init__(self, domain: Domain, config: RunConfig, run_dir: str | os.PathLike, *,
                 dataset: str | os.PathLike | None = None, device: str = "auto",
                 progress: bool = True, log: Callable[[str], None] = print,
                 registry: PluginRegistry | None = None, report_split: str = "test"):
        self.domain, self.config = domain, config
        # The split post-training validation reads (``val`` while choosing settings), checked
        # now rather than after the training.
        check_report_split(report_split)
        self.report_split = report_split
        # Every name the config chooses is looked up now, so a typo fails before any work.
        self.registry = get_registry() if registry is None else registry
        self.feature_set = feature_set(config.features.families, self.registry)
        # The settings too: the tokenizer family and the architecture are built now (cheap,
        # untrained), so a bad key fails here rather than after the dataset and the fit.
        self.untrained_tokenizer = _built("tokenizer", lambda: self.registry.lookup(
            "tokenizers", config.tokenizer.name, where="tokenizer.name").factory(
            **config.tokenizer.settings()))
        _built("mno.architecture", lambda: build_domain_architecture(
            domain, config.mno.architecture, registry=self.registry))
        self.run_dir = Path(run_dir)
        self.dataset_path = Path(dataset) if dataset else self.run_dir / "dataset.h5"
        self.ranks, self.device = join(resolve_device(device))
        self.progress, self._echo = progress and self.ranks.is_main, log
        self.tokenizer_dir = self.run_dir / "tokenizer"
        self.final_path = self.run_dir / "checkpoints" / "final.pt"
        #: (read-only dataset, families it lacks) when the run works on a copy of it.
        self._copy_of: tuple[Path, list[str]] | None = None

    def log(self, message: str) -> None:
        """Print a message and keep it, time-stamped, in ``RUN_DIR/train.log`` (rank 0)."""
        if not self.ranks.is_main:
            return
        self._echo(message)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        with (self.run_dir / "train.log").open("a") as fh:
            fh.write(f"{stamp} {message}\n")

    # ------------------------------------------------------------------ stages

    def prepare_dataset(self) -> DatasetFile:
        """The dataset, generated or completed by rank 0 while the other processes wait."""
        if self.ranks.is_main:
            self._prepare_dataset()
        self.ranks.barrier()
        return DatasetFile(self.dataset_path)

    def _prepare_dataset(self) -> None:
        if self._copy_of is not None:
            source, missing = self._copy_of
            self.log(f"{source} is read-only and lacks features {', '.join(missing)}: adding "
                     f"them to a copy, {self.dataset_path}")
            with atomic_path(self.dataset_path) as tmp:
                shutil.copyfile(source, tmp)
            self._copy_of = None
        if not self.dataset_path.exists():
            self.log(f"dataset {self.dataset_path} missing: generating it")
            generate(self.domain, self.config.generation, self.dataset_path,
                     device=str(self.device), progress=self.progress, log=self.log,
                     features=self.feature_set)
            # Not checked again: generated here, it is this domain's, whole, and finite
            # (generation refuses non-finite solver output); one that existed was checked by
            # check_inputs.
        add_features(self.dataset_path, progress=self.progress, log=self.log,
                     features=self.feature_set)

    def check_dataset(self) -> None:
        """Refuse a dataset file that is not this domain's, a shard, incomplete or holding
        non-finite samples."""
        with DatasetFile(self.dataset_path) as ds:
            if ds.domain != self.domain.name:
                raise NoaError(f"{self.dataset_path}: a {ds.domain!r} dataset, not "
                               f"{self.domain.name!r}")
            ds.check_trainable()
            ds.check_finite()

    def _use_a_copy_if_read_only(self, fingerprint: str) -> None:
        """Features are stored in the dataset, and a read-only one (a registered dataset) must
        not change: when it lacks families, the run uses a copy in the run folder (made by
        rank 0 in :meth:`_prepare_dataset`), decided here by every process alike."""
        if not read_only(self.dataset_path):
            return
        missing = missing_families(self.dataset_path, self.feature_set)
        if not missing:
            return
        copy = self.run_dir / "dataset.h5"
        what = f"{self.dataset_path} is read-only and lacks features {', '.join(missing)}"
        if copy.exists():
            if copy.resolve() == self.dataset_path.resolve():
                raise NoaError(f"{what}; make it writable or train on a copy")
            with DatasetFile(copy) as ds:
                if ds.fingerprint != fingerprint:
                    raise NoaError(f"{what}; its copy would go to {copy}, which holds another "
                                   "dataset: use another --run-dir")
        else:
            self._copy_of = (self.dataset_path, missing)
        self.dataset_path = copy

    def check_inputs(self, stage: str, resume: str | os.PathLike | None) -> None:
        """What can be refused before any long work: the dataset if it exists, and the
        checkpoint the MNO stage would resume from or find up to date, against this config
        and dataset. (Its tokenizer can only be compared once the tokenizer is fitted.)"""
        dataset_fingerprint = None
        if self.dataset_path.exists():
            self.check_dataset()
            with DatasetFile(self.dataset_path) as ds:
                dataset_fingerprint = ds.fingerprint
            self._use_a_copy_if_read_only(dataset_fingerprint)
        if stage == "tokenizer":
            return
        checkpoints = self.run_dir / "checkpoints"
        path = Path(resume) if resume is not None else next(
            (p for p in (self.final_path, checkpoints / "last.pt") if p.exists()), None)
        if path is None:
            return
        ckpt = load_checkpoint(path)
        final = resume is None and path == self.final_path
        for key in ("config", "dataset_fingerprint") if final else RESUME_KEYS:
            if key not in ckpt:
                raise NoaError(f"{path}: not a complete noa MNO checkpoint (no {key!r})")
        config = _read_json_text(ckpt["config"])
        if not isinstance(config, dict) or not isinstance(ckpt["dataset_fingerprint"], str):
            raise NoaError(f"{path}: not a noa MNO checkpoint (its config or dataset "
                           "fingerprint is not what noa writes)")
        if final:
            diff = run_difference(config, self.config.model_dump(mode="json"))
            if diff or (dataset_fingerprint and ckpt["dataset_fingerprint"] != dataset_fingerprint):
                raise NoaError(f"{self.run_dir} holds an MNO trained with other settings "
                               f"({diff or 'another dataset'}); use another --run-dir")
            return
        why = resume_mismatch(config, self.config.model_dump(mode="json"),
                              ckpt["dataset_fingerprint"], dataset_fingerprint)
        if why:
            raise NoaError(f"{path}: {why}")

    def _features(self, ds: DatasetFile, split: str | None) -> tuple[
            dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        """Stored features of one split (``None``: every sample)."""
        idx = ds.split(split) if split else slice(None)
        feats, names = {}, {}
        for family in self.config.features.families:
            arr, names[family] = ds.features(family)
            feats[family] = torch.from_numpy(arr[idx])
        return feats, names

    def train_tokenizer(self, ds: DatasetFile) -> Any:
        """The tokenizer: fitted by rank 0 (a small single-threaded CPU fit), then loaded by
        the other processes from what it saved, so every process holds the same codebooks."""
        if self.ranks.is_main:
            tokenizer = self._train_tokenizer(ds)
        self.ranks.barrier()
        if not self.ranks.is_main:
            tokenizer = self._train_tokenizer(ds)
        return tokenizer

    def _train_tokenizer(self, ds: DatasetFile) -> Any:
        from noa_platform.tokenizer import plot_report, report

        untrained = self.untrained_tokenizer
        # The feature definitions belong to the stamp: the same trajectories read by another
        # version of a family give other columns, and a tokenizer fitted on the old ones would
        # be loaded as up to date.
        stamp = {"dataset": ds.fingerprint,
                 "features": list(self.config.features.families),
                 "feature_versions": {f: ds.feature_version(f)
                                      for f in self.config.features.families},
                 "tokenizer": self.config.tokenizer.model_dump(mode="json")}
        stamp_path = self.tokenizer_dir / "provenance.json"
        if _read_json(stamp_path) == stamp:
            self.log(f"tokenizer in {self.tokenizer_dir} is up to date")
            return untrained.load(self.tokenizer_dir)
        if not self.ranks.is_main:
            raise NoaError(f"{self.tokenizer_dir}: rank {self.ranks.rank} found no tokenizer "
                           "fitted on this dataset after rank 0 fitted it; is RUN_DIR on a "
                           "file system every process sees?")
        # The old stamp goes before the old files are overwritten: killed midway, the folder
        # must not hold a stamp vouching for a mix of old and new files.
        stamp_path.unlink(missing_ok=True)
        train, names = self._features(ds, "train")
        val, _ = self._features(ds, "val")
        self.log(f"training the tokenizer on {len(ds.split('train'))} CNO feature vectors")
        tok = untrained.fit(train, names, val_features=val, progress=self.progress)
        tok.save(self.tokenizer_dir)
        everything, _ = self._features(ds, None)
        rep = {"dataset": report(tok, everything), "train": report(tok, train),
               "val": report(tok, val), "fit": tok.fit_summary}
        atomic_write_json(self.tokenizer_dir / "report.json", rep)
        plot_report(rep["dataset"], self.tokenizer_dir / "report.png")
        atomic_write_json(stamp_path, stamp)
        a, v = rep["dataset"], rep["val"]
        self.log(f"tokenizer: {tok.n_codebooks} codebooks of {tok.codebook_sizes[0]} codes; over "
                 f"the dataset min utilization {a['min_utilization']:.2f}, min perplexity/size "
                 f"{a['min_perplexity_ratio']:.2f}; validation reconstruction "
                 f"{v['reconstruction_mse']:.4f} (normalized MSE)")
        return tok

    def build_operator(self, train: SplitData) -> NeuralOperator:
        torch.manual_seed(self.config.training.seed)
        arch = build_domain_architecture(self.domain, self.config.mno.architecture,
                                         registry=self.registry)
        return NeuralOperator(arch, *train.statistics(),
                              increment_cutoff=self.config.mno.increment_cutoff)

    def train_mno(self, ds: DatasetFile, tokenizer: Any, resume: str | os.PathLike | None
                  ) -> NeuralOperator:
        cfg = self.config.training
        train = SplitData.load(ds, "train", self.domain.conditioning)
        val = SplitData.load(ds, "val", self.domain.conditioning)
        operator = self.build_operator(train)
        feature_fn = None
        tok_fp = ""
        if cfg.lambda_commit > 0 or cfg.lambda_latent > 0:
            feature_fn = self.feature_set
            tok_fp = sha256_of(self.tokenizer_dir / "weights.safetensors")
            tokenizer = tokenizer.to(self.device)
        trainer = Trainer(operator, self.config, train, val, self.run_dir,
                          dataset_fingerprint=ds.fingerprint,
                          tokenizer=tokenizer if feature_fn else None,
                          tokenizer_fingerprint=tok_fp, feature_fn=feature_fn,
                          device=self.device, progress=self.progress, log=self.log,
                          ranks=self.ranks)
        n_params = count_parameters(operator)
        self.projector = trainer.projector
        if self.final_path.exists() and resume is None:
            final = load_checkpoint(self.final_path)
            diff = run_difference(json.loads(final["config"]), trainer.config_json)
            if diff is None and final["dataset_fingerprint"] == ds.fingerprint:
                self.log(f"MNO in {self.final_path} is up to date")
                best = load_checkpoint(self.run_dir / "checkpoints" / "best.pt")
                operator.load_state_dict(best["model"])
                if self.projector is not None:
                    self.projector.load_state_dict(best["projector"])
                return operator
            raise NoaError(f"{self.run_dir} holds an MNO trained with other settings "
                           f"({diff or 'another dataset'}); use another --run-dir")
        last = self.run_dir / "checkpoints" / "last.pt"
        if resume is None and last.exists():
            resume = last
            self.log(f"found {last}: resuming from it")
        if resume is not None:
            trainer.resume(resume)
        self.log(f"training the MNO: {n_params:,} parameters, {len(train)} trajectories of "
                 f"{train.n_frames} steps, windows of {cfg.bptt_window} from any frame, "
                 f"{trainer.total_steps} optimizer steps, device {self.device}")
        state = trainer.fit()
        if self.ranks.is_main:
            # mno.json first: final.pt marks the stage as done (a rerun skips it), so a kill
            # between the two writes must not leave a finished stage without its mno.json.
            atomic_write_json(self.run_dir / "mno.json", {
                "parameters": n_params, "steps": state.step, "epochs": state.epoch,
                "best_val_vrmse": state.best_val, "nonfinite_updates": state.nonfinite,
                "stopped": state.stopped, "projector": trainer.projector is not None,
            })
            save_checkpoint(self.final_path, trainer.checkpoint_state())
        self.ranks.barrier()  # best.pt is complete on disk
        # Validate the best epoch's weights rather than the last.
        best = load_checkpoint(self.run_dir / "checkpoints" / "best.pt")
        operator.load_state_dict(best["model"])
        if self.projector is not None:
            self.projector.load_state_dict(best["projector"])
        self.log(f"MNO trained: {state.step} steps, best val VRMSE {state.best_val:.4g}"
                 + (f" ({state.stopped})" if state.stopped else ""))
        return operator

    # ------------------------------------------------------------------ the whole run

    def run(self, stage: str = "all", resume: str | os.PathLike | None = None) -> Path:
        """Run up to ``stage``; returns the path of its result. Under torchrun every process
        returns once rank 0 has finished, so none exits while another still works."""
        if stage not in STAGES:
            raise NoaError(f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
        result = self._run(stage, resume)
        self.ranks.barrier()
        return result

    def _run(self, stage: str, resume: str | os.PathLike | None) -> Path:
        self.check_inputs(stage, resume)
        if self.ranks.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # What writes that a kill interrupted left (pictures, tokenizer files).
            remove_stale_temporaries(self.run_dir, "*.json", "*.png", "*.h5")
            remove_stale_temporaries(self.tokenizer_dir, "*")
            atomic_write_json(self.run_dir / "config.json",
                              {"domain": self.domain.name, **self.config.model_dump(mode="json")})
        self.projector = None
        with self.prepare_dataset() as ds:
            tokenizer = self.train_tokenizer(ds)
            if stage == "tokenizer":
                return self.tokenizer_dir / "report.json"
            operator = self.train_mno(ds, tokenizer, resume)
            if stage == "mno":
                return self.final_path
            if not self.ranks.is_main:
                return self.run_dir / "report.json"

            return validate_run(self.domain, operator, tokenizer, ds, self.run_dir,
                                self.config, projector=self.projector, device=self.device,
                                log=self.log, split=self.report_split)


def _built(key: str, build: Callable[[], Any]) -> Any:
    """``build()``, its refusal of a setting reported under the config ``key`` it came from."""
    try:
        return build()
    except (ValueError, TypeError) as exc:  # a factory's refusal of its keyword arguments
        text = str(exc).strip().splitlines()
        raise SettingError(key, text[0] if text else type(exc).__name__) from None


def _read_json_text(text: Any) -> Any:
    """``text`` parsed as JSON, or ``None`` when it is not a JSON string."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable (a stamp that is
    not valid JSON is just out of date)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
