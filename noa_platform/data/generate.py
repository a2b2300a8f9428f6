"""Dataset generation that survives being killed at any moment.

Work happens in ``<out>.partial/``: a ``manifest.json`` (domain, version, config) and one
``batch-<first>-<last>.npz`` per finished batch, each written to a temporary name and renamed,
so a batch file either exists whole or not at all. Running the same command again reads the
manifest, skips the samples whose batch files exist and computes the rest. Because every
sample is a pure function of its (θ, seed, family) and the solver does not couple samples in a
batch, the resumed dataset is identical to one generated without interruption. When all
batches exist, the HDF5 file is assembled under a temporary name and renamed to ``<out>``;
the partial folder is removed last. Nothing is ever left half-written under the final name.

With a :class:`~noa_platform.data.shards.Shard` the same happens for that shard's samples only
(whole batches of the run, see :mod:`noa_platform.data.shards`), and the file written is a
shard, which :mod:`noa_platform.data.merge` joins with the others.
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from noa_platform import __version__
from noa_platform.api import Domain, ParameterSpace
from noa_platform.atomic import (
    atomic_path,
    atomic_savez,
    atomic_write_json,
    remove_stale_temporaries,
)
from noa_platform.config import GenerationConfig, first_difference
from noa_platform.data.partial import batch_path, done_mask, read_batch
from noa_platform.data.sampling import choose_families, sample_seeds, sobol_unit, split_indices
from noa_platform.data.shards import Shard, local_splits
from noa_platform.data.simulate import simulate
from noa_platform.data.store import DatasetFile, write_dataset
from noa_platform.data.work_lock import sole_writer
from noa_platform.errors import DataError, ParameterError, SolverError

if TYPE_CHECKING:
    from noa_platform.features.selection import FeatureSet


class Plan:
    """Everything decided before any sample is computed: θ, seeds, families, splits.

    All of it is the whole run's; ``indices`` are the samples this file holds (all of them,
    or a shard's).
    """

    def __init__(self, domain: Domain, config: GenerationConfig, shard: Shard | None = None):
        self.domain = domain
        self.config = config
        self.shard = shard
        unknown = set(config.ic_families) - set(domain.initial_conditions)
        if unknown:
            raise DataError(
                f"generation.ic_families: domain {domain.name!r} has no family "
                f"{', '.join(sorted(unknown))}; known: {', '.join(domain.initial_conditions)}"
            )
        n = config.n_samples
        space = domain.parameter_space
        self.unit = restrict_unit(space, sobol_unit(space.dim, n, config.seed),
                                  config.parameter_ranges)
        self.values = space.from_unit(self.unit)
        self.seeds = sample_seeds(config.seed, n)
        self.families = choose_families(self.seeds, list(domain.initial_conditions),
                                        config.ic_families or None)
        self.splits = split_indices(n, config.splits.model_dump())
        self.grid = domain.grid_for(config.resolution)
        self.indices = (shard.indices(n, config.batch_size) if shard is not None
                         else np.arange(n, dtype=np.int64))
        self.shape = (len(self.indices), config.n_frames + 1, len(domain.channels),
                      *self.grid.shape)

    def manifest(self) -> dict[str, Any]:
        out = {"domain": self.domain.name, "domain_version": self.domain.version,
               "config": self.config.model_dump(mode="json")}
        if self.shard is not None:
            out["shard"] = self.shard.describe()
        return out

    def simulate(self, indices: np.ndarray, device: str = "cpu") -> torch.Tensor:
        traj = simulate_as_configured(self.domain, self.config, self.values[indices],
                                      self.seeds[indices], [self.families[i] for i in indices],
                                      device=device)
        self.check_solver_output(indices, traj)
        return traj

    def check_solver_output(self, indices: np.ndarray, traj: torch.Tensor) -> None:
        """Stop a solver that breaks its contract (wrong shape, NaN or Inf) before its output
        is stored, naming the samples: stored, it would fail far from the cause (features, a
        refused dataset) or not at all."""
        name = self.domain.name
        kit = f"; `noa plugins check {name}` runs the conformance kit on its solver"
        expected = (len(indices), *self.shape[1:])
        if not isinstance(traj, torch.Tensor) or tuple(traj.shape) != expected:
            got = list(traj.shape) if isinstance(traj, torch.Tensor) else type(traj).__name__
            raise SolverError(f"domain {name!r}: the solver returned {got} for samples "
                              f"{indices[0]}..{indices[-1]}, expected {list(expected)} "
                              f"[samples, frames + 1, channels, *grid]{kit}")
        finite = torch.isfinite(traj.flatten(1)).all(1).cpu().numpy()
        if not finite.all():
            bad = indices[~finite]
            theta = self.domain.parameter_space.decode(self.values[bad[0]])
            shown = ", ".join(str(int(i)) for i in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise SolverError(f"domain {name!r}: the solver returned NaN or infinite values "
                              f"for samples {shown} (sample {bad[0]}: θ {theta}){kit}")


def simulate_as_configured(domain: Domain, config: GenerationConfig, values: np.ndarray,
                           seeds: np.ndarray, families: list[str], *, device: str = "cpu",
                           dtype: torch.dtype | None = None) -> torch.Tensor:
    """Samples simulated with a dataset's generation settings (generation and replay).

    With ``burn_in_frames = b`` the solver runs ``b`` frames more and the first ``b`` are
    dropped: frame 0 of the stored trajectory is the developed state at time ``b·frame_dt``.
    """
    b = config.burn_in_frames
    traj = simulate(domain, values, seeds, families, n_frames=b + config.n_frames,
                    resolution=config.resolution, dtype=dtype or getattr(torch, config.dtype),
                    device=device, noise_amplitude=config.noise_amplitude)
    return traj[:, b:].contiguous() if b else traj


def restrict_unit(space: ParameterSpace, unit: np.ndarray,
                  ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Map unit-cube points into the sub-box ``ranges`` (physical bounds per parameter).

    The map is affine in each unit coordinate, so a log-scale parameter stays log-uniform and
    Sobol points keep their low discrepancy inside the sub-box. Stored ``params/unit`` are
    coordinates in the domain's full box.
    """
    unit = np.array(unit, dtype=np.float64)
    for name, (lo, hi) in ranges.items():
        try:
            p = space[name]
        except ParameterError:
            raise DataError(f"generation.parameter_ranges: unknown parameter {name!r}; known: "
                            f"{', '.join(space.names)}") from None
        if p.kind not in ("linear", "log"):
            raise DataError(f"generation.parameter_ranges.{name}: only real (linear or log) "
                            f"parameters can be restricted, {name!r} is {p.kind}")
        if not (np.all(p.contains([lo, hi])) and lo < hi):
            raise DataError(f"generation.parameter_ranges.{name} = [{lo:g}, {hi:g}] is not inside "
                            f"its range {p.range_text()}")
        u_lo, u_hi = (float(x) for x in np.clip(p.to_unit(np.array([lo, hi])), 0.0, 1.0))
        j = space.names.index(name)
        unit[:, j] = u_lo + unit[:, j] * (u_hi - u_lo)
    return unit


def generate(
    domain: Domain,
    config: GenerationConfig,
    out: str | os.PathLike,
    *,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    features: FeatureSet | None = None,
    shard: Shard | None = None,
) -> Path:
    """Generate (or finish generating) the dataset ``out``; returns its path.

    ``features`` are the families stored with the trajectories when ``config.features`` is
    on (default: the core's three, :func:`~noa_platform.features.selection.feature_set`).
    With ``shard``, only that shard of the run is generated, into a shard file.
    """
    out = Path(out)
    plan = Plan(domain, config, shard)
    manifest = plan.manifest()
    work = out.with_name(out.name + ".partial")
    remove_stale_temporaries(out.parent, glob.escape(out.name))  # a killed assembly's copy
    if out.exists():
        with DatasetFile(out) as existing:
            old = {"domain": existing.domain,
                   "domain_version": str(existing.h5.attrs["domain_version"]),
                   "config": existing.config}
            if existing.shard is not None:
                old["shard"] = existing.shard.describe()
        diff = first_difference(old, manifest)
        if diff:
            raise DataError(f"{out} exists and was generated with other settings ({diff}); "
                            "choose another --out or delete it")
        if work.exists():  # killed after the file was renamed into place, before the cleanup
            shutil.rmtree(work)
        log(f"{out} is already complete")
        return out

    work.mkdir(parents=True, exist_ok=True)
    with sole_writer(work, f"generating {out}"):
        _run(plan, manifest, work, out, domain, config, device, progress, log, features, shard)
    return out


def _run(plan: Plan, manifest: dict[str, Any], work: Path, out: Path, domain: Domain,
         config: GenerationConfig, device: str, progress: bool, log: Callable[[str], None],
         features: FeatureSet | None, shard: Shard | None) -> None:
    """Generation proper, in ``work`` (held by this process): the missing batches, then the
    assembled file, then no ``work``."""
    manifest_path = work / "manifest.json"
    if manifest_path.exists():
        diff = first_difference(read_manifest(manifest_path), manifest)
        if diff:
            raise DataError(f"{work} holds an unfinished generation with other settings "
                            f"({diff}); rerun with those settings or delete it")
    else:
        atomic_write_json(manifest_path, manifest)

    feature_fn: FeatureSet | None = None
    if config.features:
        from noa_platform.features.selection import feature_set

        feature_fn = features if features is not None else feature_set()
    names = feature_fn.names if feature_fn is not None else {}
    done = done_mask(work, config.n_samples)[plan.indices]
    todo = plan.indices[~done]
    if done.any():
        log(f"resuming {out}: {int(done.sum())} of {len(plan.indices)} samples already done")

    label = f"generate {domain.name}" + (f" shard {shard}" if shard is not None else "")
    bar = tqdm(total=len(plan.indices), initial=int(done.sum()), desc=label,
               unit="sample", disable=not progress)
    for run in aligned_batches(todo, config.batch_size):
        traj = plan.simulate(run, device=device)
        arrays = {"indices": run, "trajectories": traj.float().cpu().numpy()}
        if feature_fn is not None:
            with torch.no_grad():
                for family, value in feature_fn(traj.float()).items():
                    arrays[f"features.{family}"] = value.cpu().numpy()
        atomic_savez(batch_path(work, run), **arrays)
        bar.update(len(run))
    bar.close()

    versions = feature_fn.versions if feature_fn is not None else {}
    _assemble(plan, work, out, names, versions)
    shutil.rmtree(work)


def aligned_batches(todo: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Sorted indices cut at multiples of ``batch_size``: every batch computed is (part of)
    the run's batch ``i // batch_size``, however the run was interrupted or sharded, so what
    depends on a batch's composition (features, in the last bits) does not change."""
    todo = np.asarray(todo, dtype=np.int64)
    cuts = np.flatnonzero((np.diff(todo) != 1) | (np.diff(todo // batch_size) != 0)) + 1
    return [b for b in np.split(todo, cuts) if len(b)]


def _batches(work: Path, indices: np.ndarray
             ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """The batch files of the samples ``indices`` (sorted), as rows of the file written."""
    for f in sorted(work.glob("batch-*.npz")):
        z = read_batch(f)
        if "indices" not in z or "trajectories" not in z:
            raise DataError(f"{f}: a damaged batch file (no indices or trajectories); delete "
                            f"{work} and rerun")
        rows = np.searchsorted(indices, z["indices"])
        if not np.array_equal(indices[np.minimum(rows, len(indices) - 1)], z["indices"]):
            raise DataError(f"{f}: holds samples outside this file's "
                            f"{indices[0]}..{indices[-1]}; delete {work} and rerun")
        feats = {k.split(".", 1)[1]: v for k, v in z.items() if k.startswith("features.")}
        yield rows, z["trajectories"], feats


def _assemble(plan: Plan, work: Path, out: Path, feature_names: dict[str, tuple[str, ...]],
              feature_versions: dict[str, str]) -> None:
    with atomic_path(out) as tmp:
        _write(plan, work, tmp, feature_names, feature_versions)


def _write(plan: Plan, work: Path, tmp: Path, feature_names: dict[str, tuple[str, ...]],
           feature_versions: dict[str, str]) -> None:
    d = plan.domain
    idx = plan.indices
    shard_attrs = ({"shard": json.dumps(plan.shard.describe())} if plan.shard is not None
                   else {})
    write_dataset(
        tmp,
        attrs={
            **shard_attrs,
            "domain": d.name,
            "domain_version": d.version,
            "platform_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": json.dumps(plan.config.model_dump(mode="json"), sort_keys=True),
            "channels": json.dumps(list(d.channel_names)),
            "channel_specs": json.dumps([c.describe() for c in d.channels]),
            "parameter_reads": json.dumps(d.parameter_space.reads),
            "parameter_space": json.dumps(d.parameter_space.describe()),
            "grid": json.dumps(plan.grid.describe()),
            "frame_dt": float(d.frame_dt),
        },
        param_names=d.parameter_space.names,
        unit=plan.unit[idx],
        values=plan.values[idx],
        seeds=plan.seeds[idx],
        families=[plan.families[i] for i in idx],
        splits=local_splits(plan.splits, idx) if plan.shard is not None else plan.splits,
        batches=_batches(work, idx),
        shape=plan.shape,
        feature_names=feature_names,
        feature_versions=feature_versions,
        compression_level=plan.config.compression_level,
        sample_index=idx if plan.shard is not None else None,
    )


def replay(domain: Domain, dataset: DatasetFile, indices: Any, *, dtype: torch.dtype | None = None,
           device: str = "cpu") -> torch.Tensor:
    """Recompute stored samples from their (θ, seed, family) alone: ``[n, T+1, C, H, W]``."""
    cfg = GenerationConfig.model_validate(dataset.config)
    idx = np.atleast_1d(np.asarray(indices))
    if np.any(np.diff(idx) <= 0):
        raise DataError("replay indices must be sorted and distinct")
    families = dataset.families()
    return simulate_as_configured(domain, cfg, dataset.params("value")[idx],
                                  dataset.seeds()[idx], [families[i] for i in idx],
                                  device=device, dtype=dtype)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an unfinished generation; a damaged one is a one-line error."""
    try:
        manifest = json.loads(path.read_text())
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: not the manifest of an unfinished generation; delete "
                        f"{path.parent} and rerun")
    return manifest


def partial_progress(out: str | os.PathLike) -> dict[str, Any] | None:
    """How far an unfinished generation of ``out`` got, or ``None`` if there is none."""
    work = Path(out).with_name(Path(out).name + ".partial")
    manifest_path = work / "manifest.json"
    if not manifest_path.exists():
        return None
    manifest = read_manifest(manifest_path)
    try:
        cfg = manifest["config"]
        n = int(cfg["n_samples"])
        batch_size, domain = int(cfg["batch_size"]), str(manifest["domain"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{manifest_path}: not the manifest of an unfinished generation; "
                        f"delete {work} and rerun") from None
    shard = (Shard.from_description(manifest["shard"], str(manifest_path))
             if "shard" in manifest else None)
    indices = shard.indices(n, batch_size) if shard is not None else np.arange(n)
    done = int(done_mask(work, n)[indices].sum())
    return {"file": str(out), "partial": str(work), "domain": domain,
            "shard": str(shard) if shard is not None else None,
            "samples": len(indices), "completed": done, "complete": False}
