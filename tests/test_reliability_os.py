"""OS errors while a command reads or writes files: one line, nothing partial, nothing lost.

Faults are made real where a test can make them, and simulated where it cannot:

* a missing folder: the output's parent is a regular file (real ``ENOTDIR``);
* permission denied, read-only file system, no space when creating a file: creating or
  opening for writing anything under the output folder fails with ``EACCES`` / ``EROFS`` /
  ``ENOSPC`` (simulated in ``open``, ``os.open`` and ``os.mkdir``: the tests may run as root,
  whom permissions do not stop, and cannot mount file systems);
* no space midway through a write: the final file's temporary name is a link to ``/dev/full``,
  so the kernel refuses the write itself, after it started, whichever library writes.

Each case checks what the user gets: exit 1, stderr one ``error:`` line naming the path, no
traceback, no file under the final name or the previous file's bytes unchanged.
"""

from __future__ import annotations

import builtins
import errno
import functools
import io
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from noa_platform.atomic import atomic_path
from noa_platform.cli import main
from noa_platform.config import resolve_config
from noa_platform.data.generate import generate
from noa_platform.data.shards import Shard
from noa_platform.data.store import DatasetFile
from noa_platform.file_errors import FileError, doing, error_line
from noa_platform.plugins import get_registry
from noa_platform.registry import open_registry
from noa_platform.testing.toy_domain import TINY_U_AFNO, ToyDomain
from noa_platform.tokenizer import TokenizerConfig, fit_tokenizer

TINY_TOML = """\
[generation]
n_samples = 4
n_frames = 6
resolution = 16
batch_size = 2
[tokenizer]
steps = 4
[mno.architecture]
""" + "".join(f"{k} = {v}\n" for k, v in TINY_U_AFNO.items())

# 12 samples: the tokenizer needs 8 training trajectories.
GENERATION = {"n_samples": 12, "n_frames": 6, "resolution": 16, "batch_size": 4}


@pytest.fixture(autouse=True)
def toy_domain(fixture_plugins):
    """``good-toy`` (a :class:`ToyDomain`) installed for the commands run in-process."""
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Tiny good-toy inputs, made once: a whole dataset without features, the two shards of
    one with features, and a tokenizer folder fitted on those features."""
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for name, features, shard in (("plain", False, None), ("featured", True, None),
                                  ("shard1", True, Shard(1, 2)), ("shard2", True, Shard(2, 2))):
        cfg = resolve_config(overrides={"generation": {**GENERATION, "features": features}})
        out[name] = generate(ToyDomain("good-toy"), cfg.generation, root / f"{name}.h5",
                             progress=False, log=lambda m: None, shard=shard)
    with DatasetFile(out["featured"]) as ds:
        families = {f: ds.features(f) for f in ds.feature_families()}
    tokenizer = fit_tokenizer({f: torch.from_numpy(a) for f, (a, _) in families.items()},
                              {f: names for f, (_, names) in families.items()},
                              TokenizerConfig(steps=4, hidden=8, latent_dim=2, batch_size=8,
                                              max_categories=2, residual_levels=1),
                              progress=False)
    out["tokenizer"] = tokenizer.save(root / "tokenizer")
    return out


# ------------------------------------------------------------------------------ commands


@dataclass
class Case:
    """A command writing under ``out`` (a folder): its arguments and the file it writes.

    ``previous`` says whether a good file is already at the final name before the command
    (it must then be left byte for byte)."""

    args: list[str]
    final: Path
    doing: str
    previous: bool = False


def _generate(tmp: Path, out: Path, datasets: dict[str, Path]) -> Case:
    config = tmp / "tiny.toml"
    config.write_text(TINY_TOML)
    return Case(["generate", "good-toy", "--config", str(config), "--out", str(out / "x.h5"),
                 "--quiet"], out / "x.h5", "writing dataset")


def _merge(tmp: Path, out: Path, datasets: dict[str, Path]) -> Case:
    return Case(["data", "merge", str(datasets["shard1"]), str(datasets["shard2"]),
                 "--out", str(out / "merged.h5")], out / "merged.h5", "writing dataset")


def _features(tmp: Path, out: Path, datasets: dict[str, Path]) -> Case:
    """The dataset gets its features in place: the one there before must survive."""
    target = out / "plain.h5"
    if out.is_dir():
        shutil.copyfile(datasets["plain"], target)
    return Case(["features", str(target), "--family", "initial", "--quiet"], target,
                "adding features to", previous=out.is_dir())


def _train(tmp: Path, out: Path, datasets: dict[str, Path], stage: str = "tokenizer") -> Case:
    config = tmp / "tiny.toml"
    config.write_text(TINY_TOML + "[training]\nepochs = 1\nbatch_size = 4\nbptt_window = 2\n")
    data = tmp / "data.h5"  # a copy: training adds the features to it
    shutil.copyfile(datasets["plain"], data)
    run = out / "run"
    final = (run / "tokenizer" / "weights.safetensors" if stage == "tokenizer"
             else run / "checkpoints" / "last.pt")
    return Case(["train", "good-toy", "--config", str(config), "--dataset",
                 str(data), "--run-dir", str(run), "--stage", stage,
                 "--device", "cpu", "--no-register", "--quiet"], final, "training in")


def _report(tmp: Path, out: Path, datasets: dict[str, Path]) -> Case:
    registry = tmp / "registry"
    open_registry(registry).close()
    folder = out / "report"
    if out.is_dir():
        folder.mkdir()
        (folder / "report.md").write_text("# the report of yesterday\n")
    return Case(["report", "--out", str(folder), "--registry", str(registry)],
                folder / "report.md", "writing the report in", previous=out.is_dir())


def _align(tmp: Path, out: Path, datasets: dict[str, Path]) -> Case:
    """A tokenizer folder against itself, not registered: only the alignment is written."""
    pytest.importorskip("ot")  # the align extra
    pytest.importorskip("sklearn")
    folder = out / "alignment"
    if out.is_dir():
        folder.mkdir()
        (folder / "alignment.json").write_text('{"the alignment of": "yesterday"}\n')
    tok = str(datasets["tokenizer"])
    return Case(["align", tok, tok, "--method", "prototypes", "--null", "2", "--out",
                 str(folder), "--no-register"], folder / "alignment.json",
                "writing the alignment in", previous=out.is_dir())


COMMANDS: dict[str, Callable[[Path, Path, dict[str, Path]], Case]] = {
    "generate": _generate, "data merge": _merge, "features": _features, "train": _train,
    "report": _report, "align": _align,
}


# ------------------------------------------------------------------------------ faults


class Refuse:
    """Creating or writing anything under ``folder`` fails with ``code``, as the kernel would
    answer for a folder without write permission (``EACCES``), on a read-only mount
    (``EROFS``) or on a full disk (``ENOSPC``). Reading is untouched."""

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def __init__(self, folder: Path, code: int, monkeypatch: pytest.MonkeyPatch):
        self.folder, self.code = folder.resolve(), code
        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

        def fake_open(file, mode="r", *args, **kwargs):
            if isinstance(file, str | os.PathLike) and set(mode) & set("wax+"):
                self.check(file)
            return real_open(file, mode, *args, **kwargs)

        def fake_os_open(path, flags, *args, **kwargs):
            if flags & self.WRITE_FLAGS:
                self.check(path)
            return real_os_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if Path(path).exists():  # the kernel says EEXIST before it checks permission
                return real_mkdir(path, *args, **kwargs)
            self.check(path)
            return real_mkdir(path, *args, **kwargs)

        for target, name, fake in ((builtins, "open", fake_open), (io, "open", fake_open),
                                   (os, "open", fake_os_open), (os, "mkdir", fake_mkdir)):
            monkeypatch.setattr(target, name, fake)

    def check(self, path: str | os.PathLike) -> None:
        resolved = Path(os.path.abspath(os.fspath(path)))
        if resolved == self.folder or self.folder in resolved.parents:
            raise OSError(self.code, os.strerror(self.code), os.fspath(path))


REFUSALS = {"permission denied": errno.EACCES, "read-only file system": errno.EROFS,
            "no space": errno.ENOSPC}


def assert_one_line_error(result, *names: str) -> str:
    """Exit 1 through the CLI's own error path, and the error one ``error:`` line, the last on
    stderr (``noa train`` says what it does before), naming the path(s); returns that line."""
    assert isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[-1], lines
    return lines[-1]


def assert_nothing_lost(case: Case, before: bytes | None) -> None:
    if before is None:
        assert not case.final.exists(), f"{case.final} written by a failed command"
    else:
        assert case.final.read_bytes() == before, f"{case.final} changed by a failed command"
    folder = case.final.parent
    leftovers = list(folder.glob("*.tmp-*")) if folder.is_dir() else []
    assert not leftovers, leftovers


def invoke(case: Case):
    return CliRunner().invoke(main, case.args)


@pytest.mark.parametrize("fault", list(REFUSALS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_folder_that_refuses_writes_is_one_line_naming_it(command, fault, tmp_path,
                                                             datasets, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    case = COMMANDS[command](tmp_path, out, datasets)
    before = case.final.read_bytes() if case.previous else None
    Refuse(out, REFUSALS[fault], monkeypatch)
    result = invoke(case)
    assert_one_line_error(result, f"error: {case.doing} ", str(out),
                          os.strerror(REFUSALS[fault]))
    monkeypatch.undo()
    assert_nothing_lost(case, before)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "features"])
def test_an_output_folder_that_cannot_exist_is_one_line_naming_it(command, tmp_path, datasets):
    """The output's parent is a regular file, so the folder cannot be created (ENOTDIR, or
    EEXIST from a ``mkdir`` that finds the file). ``noa features`` writes no new path."""
    out = tmp_path / "not-a-folder"
    out.write_text("a file where a folder is needed\n")
    case = COMMANDS[command](tmp_path, out, datasets)
    result = invoke(case)
    line = assert_one_line_error(result, f"error: {case.doing} ", str(out))
    assert line.endswith((os.strerror(errno.ENOTDIR), os.strerror(errno.EEXIST))), line
    assert out.read_text() == "a file where a folder is needed\n"


# The same, writing the MNO's checkpoint (training one epoch first); only run midway.
WRITES = {**COMMANDS, "train --stage mno": functools.partial(_train, stage="mno")}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.slow) if c == "train --stage mno" else c for c in WRITES])
def test_no_space_midway_through_the_final_write_leaves_nothing_partial(command, tmp_path,
                                                                        datasets):
    """The final file's temporary name leads to ``/dev/full``: the kernel fails the write
    with ENOSPC after it started; the final name keeps what it had (or stays absent)."""
    out = tmp_path / "out"
    out.mkdir()
    case = WRITES[command](tmp_path, out, datasets)
    before = case.final.read_bytes() if case.previous else None
    case.final.parent.mkdir(parents=True, exist_ok=True)
    # atomic_path's temporary name; this test runs the command in its own process.
    full = case.final.with_name(f"{case.final.name}.tmp-{os.getpid()}")
    full.symlink_to("/dev/full")
    result = invoke(case)
    assert_one_line_error(result, f"error: {case.doing} ", str(case.final),
                          os.strerror(errno.ENOSPC))
    assert not full.is_symlink(), "the temporary file was not cleaned up"
    assert_nothing_lost(case, before)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_generate_into_proc_is_one_line_not_a_traceback(tmp_path):
    """The case found on main: /proc takes no new files."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    result = CliRunner().invoke(main, ["generate", "good-toy", "--config", str(config),
                                       "--out", "/proc/x.h5", "--quiet"])
    assert_one_line_error(result, "writing dataset /proc/x.h5")


def test_verbose_keeps_the_traceback(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["--verbose", "generate", "good-toy", "--config",
                                       str(config), "--out", str(blocker / "x.h5"), "--quiet"])
    assert not isinstance(result.exception, SystemExit)
    assert isinstance(result.exception.__cause__ or result.exception, OSError)


def overcommit_refuses_huge_allocations() -> bool:
    """Linux's heuristic (0) or strict (2) overcommit refuses a request far beyond memory at
    once; in "always" mode (1) it would be granted and the process killed later."""
    try:
        return Path("/proc/sys/vm/overcommit_memory").read_text().strip() in {"0", "2"}
    except OSError:
        return False


@pytest.mark.skipif(not overcommit_refuses_huge_allocations(),
                    reason="needs an OS that refuses an allocation far beyond its memory")
def test_a_grid_too_large_for_memory_is_one_line_saying_what_to_lower(tmp_path):
    """A valid but huge grid: 300,000² float32 fields ask PyTorch for hundreds of GB."""
    config = tmp_path / "huge.toml"
    config.write_text(TINY_TOML.replace("resolution = 16", "resolution = 300000"))
    result = CliRunner().invoke(main, ["generate", "good-toy", "--config", str(config),
                                       "--out", str(tmp_path / "x.h5"), "--quiet"])
    line = assert_one_line_error(result, "out of memory (tried to allocate ", " GB)",
                                 "lower the resolution")
    assert "enforce fail" not in line


@pytest.mark.parametrize("error", [MemoryError(), type("OutOfMemoryError", (RuntimeError,), {})(
    "CUDA out of memory. Tried to allocate 2.00 GiB")], ids=["python", "cuda"])
def test_running_out_of_memory_anywhere_is_one_line(tmp_path, monkeypatch, error):
    import noa_platform.data.generate as generation

    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(generation, "generate", exhausted)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    result = CliRunner().invoke(main, ["generate", "good-toy", "--config", str(config),
                                       "--out", str(tmp_path / "x.h5"), "--quiet"])
    line = assert_one_line_error(result, "out of ")
    assert ("GPU memory (CUDA out of memory" in line) == isinstance(error, RuntimeError)


# ------------------------------------------------------------------------------ registry


def open_index_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite opens every index read-only, as on a read-only mount: writes fail with its
    ``OperationalError`` ("attempt to write a readonly database"), which names no path."""
    real = sqlite3.connect

    def connect(path, *args, **kwargs):
        return real(f"file:{os.fspath(path)}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_a_registry_that_cannot_be_written_is_one_line_naming_it(tmp_path, datasets,
                                                                 monkeypatch):
    registry = tmp_path / "registry"
    with open_registry(registry) as reg:
        rid = reg.add("dataset", domain="good-toy", source=datasets["plain"], config={},
                      metrics={})
    index = (registry / "index.sqlite").read_bytes()
    open_index_read_only(monkeypatch)
    result = CliRunner().invoke(main, ["registry", "rm", rid, "--registry", str(registry)])
    assert_one_line_error(result, f"error: registry {registry}: ", "readonly database")
    assert (registry / "index.sqlite").read_bytes() == index


# ------------------------------------------------------------------------------ the wording


def test_h5py_errors_read_as_path_and_reason(tmp_path):
    """h5py's OSError holds HDF5's whole diagnostic; the line keeps the path and the reason."""
    import h5py

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError) as caught:
        h5py.File(blocker / "x.h5", "w")
    assert error_line(caught.value, "writing dataset", blocker / "x.h5") == (
        f"writing dataset {blocker / 'x.h5'}: {os.strerror(errno.ENOTDIR)}")
    assert error_line(caught.value) == f"{blocker / 'x.h5'}: {os.strerror(errno.ENOTDIR)}"


def test_a_failure_on_another_file_names_both(tmp_path):
    config = tmp_path / "config.toml"
    error = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(config))
    assert error_line(error, "writing dataset", tmp_path / "x.h5") == (
        f"writing dataset {tmp_path / 'x.h5'}: {config}: {os.strerror(errno.EACCES)}")


def test_doing_leaves_other_errors_alone(tmp_path):
    """Only OS-level failures become a FileError: a bug keeps its type and traceback."""
    with pytest.raises(ZeroDivisionError), doing("writing dataset", tmp_path):
        1 / 0  # noqa: B018
    with pytest.raises(FileError, match="registry .*: attempt to write a readonly database"), \
            doing("registry", tmp_path):
        raise sqlite3.OperationalError("attempt to write a readonly database")


def test_a_failed_atomic_write_names_the_final_file_not_its_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"good")
    with pytest.raises(OSError) as caught, atomic_path(target) as tmp:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write() names no file
    assert caught.value.filename == str(target)
    with pytest.raises(OSError) as caught, atomic_path(target) as tmp:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(tmp))
    assert caught.value.filename == str(target)
    assert target.read_bytes() == b"good" and not tmp.exists()


def test_no_space_in_the_registry_while_train_records_its_run(tmp_path, datasets, monkeypatch):
    """``noa train`` trained, then cannot store the tokenizer in the registry: one line naming
    the registry and the file, and the registry holds what it held, nothing half-added."""
    registry = tmp_path / "registry"
    with open_registry(registry) as reg:
        kept = reg.add("dataset", domain="good-toy", source=datasets["featured"], config={},
                       metrics={})
    case = _train(tmp_path, tmp_path / "out", datasets)
    args = [a for a in case.args if a != "--no-register"] + ["--registry", str(registry)]
    Refuse(registry / "tmp", errno.ENOSPC, monkeypatch)  # where objects are copied first
    result = CliRunner().invoke(main, args)
    assert_one_line_error(result, f"error: recording the run in registry {registry}: ",
                          str(registry / "tmp"), os.strerror(errno.ENOSPC))
    monkeypatch.undo()
    assert case.final.is_file()  # what was trained is kept for the next try
    with open_registry(registry, create=False) as reg:
        assert [e.id for e in reg.list()] == [kept]
        assert reg.path(kept).is_file()  # its files still match their hashes
    assert not list((registry / "tmp").iterdir())


@pytest.mark.slow
def test_a_metrics_line_torn_by_a_full_disk_does_not_stop_the_resume(tmp_path, datasets):
    """A full disk (or a kill) in the middle of appending to ``metrics.jsonl`` leaves half a
    line; resuming from ``last.pt`` drops it with the lines after the checkpoint."""
    case = _train(tmp_path, tmp_path / "out", datasets, stage="mno")
    assert invoke(case).exit_code == 0
    run = case.final.parent.parent
    (run / "checkpoints" / "final.pt").unlink()  # so the rerun resumes from last.pt
    log = run / "metrics.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines) + '\n{"step": 99, "lo')
    result = invoke(case)
    assert result.exit_code == 0, result.output
    assert "resuming from it" in result.stderr
    assert log.read_text().splitlines() == lines
