"""Hypothesis-generated command lines for every `noa` command: never a traceback.

The click tree of :data:`noa_platform.cli.main` is walked, so a command added later is fuzzed
without touching this file. For each command, argv is drawn from its own parameters: options
present or not, values of their type (integers, floats, choices, paths), and junk of any type
(empty strings, negative and huge numbers, NaN, text, paths that do not exist, a folder where
a file is expected, files of junk, empty or binary content, an unknown option, a missing
argument). Each command line runs in-process through click's ``CliRunner``; it must end in
exit 0, 1 or 2, and on 1 every line of stderr is ``error: ...``.

Work that takes long (generating a dataset, computing features, training, aligning,
transferring, running the kit, starting torchrun) is monkeypatched to raise
:class:`ReachedWork`: a command line that gets there had every input accepted, and the test
counts it as handled. Inputs are checked before these calls, so what the fuzzing exercises is
exactly the checking.

Examples are derandomized, so CI sees the same command lines every run; set
``NOA_FUZZ_RANDOM=1`` to draw fresh ones.
"""

from __future__ import annotations

import os
import subprocess
import traceback
from pathlib import Path

import click
import h5py
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noa_platform.cli import main
from noa_platform.plugins import get_registry


class ReachedWork(Exception):
    """Raised in place of a command's long work: every input was accepted."""


#: module, attribute: the long work of each command, looked up by the CLI at call time
#: (``Pipeline.run`` is the attribute ``run`` of the class ``Pipeline``).
WORK = [
    ("noa_platform.data.generate", "generate"),
    ("noa_platform.data.features", "add_features"),
    ("noa_platform.training.pipeline", "Pipeline.run"),
    ("noa_platform.alignment.compare", "align"),
    ("noa_platform.transfer.experiment", "run_transfer"),
    ("noa_platform.testing", "check_domain"),
]


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    """Every leaf command as (path, command)."""
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


COMMANDS = dict(commands())

JUNK = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "-0", "1e309", "nan", "inf", "-inf", "9" * 30,
                     "..", "/", "1/0", "0/2", "3/2", "a/b", "8,,32", "-1,2", "ñ", "--"]),
    st.integers(-10**12, 10**12).map(str),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=10),
)
#: Domain names: built-in, from a fixture plugin, of a failed plugin, unknown.
NAMES = st.sampled_from(["reaction-diffusion", "waves", "good-toy", "future-toy",
                         "no-such-domain", "REACTION-DIFFUSION"])


def path_values(tmp: Path) -> dict[str, st.SearchStrategy[str]]:
    """Paths of every awkward kind, for file and for folder parameters: a real dataset (so
    commands that read one get past opening it), junk, empty, binary and foreign files, an
    existing folder, missing ones (one level and deeper), the empty path."""
    from noa_platform.config import GenerationConfig
    from noa_platform.data.generate import generate
    from noa_platform.registry import open_registry

    generate(get_registry().domain("reaction-diffusion"),
             GenerationConfig(n_samples=2, n_frames=2, resolution=16, features=False),
             tmp / "rd.h5", progress=False, log=lambda m: None)
    # A registry holding it (the default one, $NOA_REGISTRY), so the registry commands, report
    # and the id arguments get past "no registry there".
    with open_registry() as reg:
        rid = reg.add("dataset", domain="reaction-diffusion", source=tmp / "rd.h5", config={},
                      metrics={})
    (tmp / "junk.h5").write_text("not HDF5 at all\n")
    (tmp / "empty.toml").write_bytes(b"")
    (tmp / "binary.pt").write_bytes(bytes(range(256)))
    (tmp / "unknown-key.toml").write_text("[generation]\nno_such_key = 1\n")
    with h5py.File(tmp / "foreign.h5", "w") as f:  # HDF5, but not a dataset of ours
        f["x"] = [1.0, float("nan")]
    torch.save({"not": "a checkpoint"}, tmp / "foreign.pt")
    (tmp / "folder").mkdir(exist_ok=True)
    (tmp / "folder" / "stray.txt").write_text("a folder that is not empty\n")
    awkward = [str(tmp / "missing" / "deeper" / "x"), str(tmp / "missing.h5" / "x"), ""]
    files = [str(tmp / n) for n in ("rd.h5", "rd.h5", "junk.h5", "empty.toml", "binary.pt",
                                    "unknown-key.toml", "missing.h5", "foreign.h5",
                                    "foreign.pt")]
    folders = [str(tmp / "folder"), str(tmp / "new-folder")]
    return {"file": st.sampled_from(files), "dir": st.sampled_from(folders),
            "any": st.sampled_from(files + folders), "awkward": st.sampled_from(awkward),
            "id": st.sampled_from([rid, rid[:6], "0", rid + "x"])}


#: Plain-text options whose well-formed values are known (the rest get only junk).
TEXTS = {"preset": ["quick", "standard"], "shard": ["1/2", "2/2"], "samples": ["4,8", "2"],
         "levels": ["0", "0,1", "all"], "domain": ["reaction-diffusion", "a->b"],
         "families": ["initial", "summary"]}


def values_for(param: click.Parameter, paths: dict[str, st.SearchStrategy[str]], junk: bool):
    """Values of the parameter's type (in its range, if it has one), with junk if ``junk``;
    ``paths`` is :func:`path_values`'s."""
    t = param.type
    if isinstance(t, click.Choice):
        typed = st.sampled_from([str(c) for c in t.choices])
    elif isinstance(t, click.IntRange):
        low = t.min if t.min is not None else -3
        typed = st.integers(low, low + 40).map(str)
    elif isinstance(t, click.types.IntParamType):
        typed = st.integers(-3, 40).map(str)
    elif isinstance(t, click.FloatRange):
        typed = st.floats(t.min if t.min is not None else -1e3, 1e3).map(repr)
    elif isinstance(t, click.types.FloatParamType):
        typed = st.floats(allow_nan=True, allow_infinity=True).map(repr)
    elif isinstance(t, click.Path):
        typed = paths["dir" if not t.file_okay else "file" if not t.dir_okay else "any"]
    elif isinstance(t, click.File):
        typed = paths["file"]
    elif param.name == "artifact_id":
        typed = paths["id"]
    elif param.name in {"a", "b"}:  # align: a domain, a registry id or a tokenizer folder
        typed = st.one_of(NAMES, paths["id"], paths["dir"])
    elif param.name in {"domain", "name", "source", "target"}:
        typed = st.one_of(NAMES, st.sampled_from(TEXTS.get(param.name, ["x"])))
    elif param.name in TEXTS:
        typed = st.sampled_from(TEXTS[param.name])
    else:
        typed = st.nothing()
    if not junk:
        return typed if typed is not st.nothing() else JUNK
    return st.one_of(typed, paths["awkward"], JUNK)


@st.composite
def command_lines(draw, path: tuple[str, ...], cmd: click.Command, paths) -> list[str]:
    """argv for ``cmd``: half the examples hold values of the right types only (so they get
    past click to the command's own checks), the other half junk anywhere."""
    junk = draw(st.booleans())
    argv = list(path)
    positional = []
    for param in cmd.params:
        values = values_for(param, paths, junk)
        if isinstance(param, click.Argument):
            # A required argument is left out now and then: a usage error, exit 2.
            count = (draw(st.integers(0, 3)) if param.nargs == -1
                     else int(draw(st.integers(0, 9)) > 0))
            positional += [draw(values) for _ in range(count)]
            continue
        assert isinstance(param, click.Option)
        if not param.required and draw(st.booleans()):
            continue
        if param.is_flag:
            argv.append(param.opts[0])
            continue
        for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
            argv += [draw(st.sampled_from(param.opts)), draw(values)]
    if junk and not draw(st.integers(0, 9)):
        argv.append("--no-such-option")
    return [*argv, *(["--"] if any(p.startswith("-") for p in positional) else []),
            *positional]


@pytest.fixture
def guarded(tmp_path, monkeypatch, fixture_plugins):
    """The long work of every command replaced by :class:`ReachedWork`, in an empty folder,
    with the fixture plugins installed (broken ones beside good-toy)."""
    import importlib

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # before anything is written: ./registry, ./runs land here
    paths = path_values(tmp_path)

    def reached(*args, **kwargs):
        raise ReachedWork

    for module, attr in WORK:
        owner = importlib.import_module(module)
        *outer, name = attr.split(".")
        for part in outer:
            owner = getattr(owner, part)
        monkeypatch.setattr(owner, name, reached)
    monkeypatch.setattr(subprocess, "call", reached)  # `noa train --nproc` starts torchrun
    get_registry.cache_clear()
    yield paths
    get_registry.cache_clear()


def check_outcome(argv: list[str], res) -> None:
    if isinstance(res.exception, ReachedWork):
        return
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(res.exception))
        pytest.fail(f"noa {' '.join(map(repr, argv))} raised:\n{tb}")
    assert res.exit_code in (0, 1, 2), (argv, res.exit_code, res.output)
    assert "Traceback" not in res.output, (argv, res.output)
    if res.exit_code == 1:
        if argv[:2] == ["plugins", "check"] and "does NOT conform" in res.stdout:
            return  # the kit's verdict, a table on stdout
        # Lines as a terminal shows them: "\n" only (U+2028 in a user's string is not a break).
        lines = res.stderr.strip().split("\n")
        assert lines and all(line.startswith("error: ") for line in lines), \
            (argv, res.stderr, res.stdout)
    if res.exit_code == 2:
        assert "Error:" in res.stderr, (argv, res.stderr)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_fuzzed_command_lines_never_end_in_a_traceback(path, guarded):
    paths = guarded
    cmd = COMMANDS[path]

    @settings(max_examples=30, deadline=None, database=None,
              derandomize=not os.environ.get("NOA_FUZZ_RANDOM"),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(argv=command_lines(path, cmd, paths))
    def run(argv):
        check_outcome(argv, CliRunner().invoke(main, argv))

    run()


#: Command lines that once ended in a traceback, kept so they are tried every run whatever
#: the fuzzing draws ({binary} is the binary file of :func:`path_values`).
REGRESSIONS = [
    # tomllib decodes a config's bytes as UTF-8 before parsing: UnicodeDecodeError.
    ["generate", "reaction-diffusion", "--out", "x.h5", "--config", "{binary}"],
    ["train", "reaction-diffusion", "--config", "{binary}"],
    # --nproc started torchrun before the domain and config were checked: N ranks' errors
    # under torchrun's ChildFailedError traceback.
    ["train", "no-such-domain", "--nproc", "2"],
    ["train", "reaction-diffusion", "--config", "{binary}", "--nproc", "2"],
    # click's FloatRange lets NaN through.
    ["plugins", "check", "reaction-diffusion", "--timeout", "nan"],
    # A user's string holding U+2028 or U+0085 was split by splitlines() into an error line
    # and a line without "error:".
    ["train", "no-such-domain\u2028second"],
    ["data", "info", "no-such\x85file.h5"],
    # An empty path is the current folder: h5py's page of diagnostics, cut mid-sentence.
    ["data", "info", ""],
]


@pytest.mark.parametrize("argv", REGRESSIONS, ids=" ".join)
def test_command_lines_that_once_crashed(argv, guarded, tmp_path):
    argv = [a.replace("{binary}", str(tmp_path / "binary.pt")) for a in argv]
    res = CliRunner().invoke(main, argv)
    check_outcome(argv, res)
    assert res.exit_code in (1, 2) and not isinstance(res.exception, ReachedWork), res.output


def test_the_fuzzing_covers_every_command():
    """The tree walk finds the commands the documentation names (a regrouping of the CLI that
    hid commands from the walk would silently stop fuzzing them)."""
    assert {" ".join(p) for p in COMMANDS} >= {
        "generate", "features", "train", "align", "transfer", "report", "data info",
        "data merge", "domains list", "domains show", "plugins list", "plugins check",
        "plugins new", "registry list", "registry show", "registry rm", "registry gc"}


def test_reaching_the_work_is_told_apart_from_a_crash(guarded):
    """The sentinel stands for accepted inputs; any other exception is a failure."""
    res = CliRunner().invoke(main, ["generate", "reaction-diffusion", "--out", "x.h5",
                                    "--n", "2", "--quiet"])
    assert isinstance(res.exception, ReachedWork)
    check_outcome(["generate"], res)
    res = CliRunner().invoke(main, ["domains", "show", "reaction-diffusion"])
    res.exception, res.exit_code = KeyError("boom"), 1
    with pytest.raises(pytest.fail.Exception, match="KeyError"):
        check_outcome(["domains", "show"], res)
