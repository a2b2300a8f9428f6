"""Documentation that cannot drift from the code: every hook is in the plugin guide, every
CLI command and option is in docs/cli.md, every kit check is in the guide's table, and the
guide's complete example is extracted and passes the conformance kit."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from pathlib import Path

import click
import pytest

from noa_platform import hookspecs
from noa_platform.api import MIGRATION, PLUGIN_API_VERSION
from noa_platform.cli import main
from noa_platform.testing import CHECKS, check_domain

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = (DOCS / "plugin-guide.md").read_text()
CLI_DOC = (DOCS / "cli.md").read_text()


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, f"{hookspecs.PROJECT}_spec")]


def commands(group: click.Group = main, path: tuple[str, ...] = ("noa",)):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))
        else:
            yield " ".join((*path, name)), cmd


def options(cmd: click.Command) -> list[str]:
    """The long form of each option (the short one when it has none); --help is implied."""
    out = []
    for p in cmd.params:
        if isinstance(p, click.Option):
            longs = [o for o in p.opts if o.startswith("--")] or p.opts
            out.append(longs[0])
    return out


def command_block(doc: str, path: str) -> str:
    """The text documenting ``path``: from its first mention as a usage line or table cell to
    the next command's usage line or table row."""
    starts = sorted(m.start() for m in re.finditer(r"(?m)^(?:\| `)?noa [a-z]", doc))
    here = [s for s in starts if doc.startswith(path + " ", s + (3 if doc[s] == "|" else 0))
            or doc.startswith(path + "`", s + (3 if doc[s] == "|" else 0))
            or doc.startswith(path + "\n", s + (3 if doc[s] == "|" else 0))]
    if not here:
        return ""
    begin = here[0]
    later = [s for s in starts if s > begin]
    return doc[begin:later[0] if later else len(doc)]


def test_there_are_hooks_and_commands_to_check():
    assert len(hook_names()) >= 4
    assert {"noa plugins check", "noa plugins new", "noa train"} <= {p for p, _ in commands()}


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_in_the_plugin_guide(hook):
    assert f"`{hook}()`" in GUIDE, f"hook {hook} is missing from docs/plugin-guide.md"


@pytest.mark.parametrize("path, cmd", list(commands()), ids=[p for p, _ in commands()])
def test_every_command_and_option_is_documented_in_cli_md(path, cmd):
    block = command_block(CLI_DOC, path)
    assert block, f"`{path}` is missing from docs/cli.md"
    missing = [o for o in options(cmd) if not re.search(re.escape(o) + r"(?![\w-])", block)]
    assert not missing, f"`{path}` options {missing} are missing from its entry in docs/cli.md"
    every = {o for p in cmd.params for o in getattr(p, "opts", [])} | {"-h", "--help"}
    stale = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", block)) - every)
    assert not stale, f"docs/cli.md documents `{path}` options {stale} it does not have"


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_every_kit_check_is_in_the_guide(check):
    assert f"| `{check}` |" in GUIDE


def test_migration_text_points_to_the_guide():
    for text in MIGRATION.values():
        assert "docs/plugin-guide.md" in text
    assert "## 8. Migrating from contract v1" in GUIDE


def guide_files() -> dict[str, str]:
    """Code blocks of the guide whose first line is ``# file: PATH``."""
    blocks = re.findall(r"```(?:python|toml)\n# file: (\S+)\n(.*?)```", GUIDE, flags=re.S)
    return {path: body for path, body in blocks}


def test_guide_pyproject_builds_and_declares_the_entry_point():
    meta = tomllib.loads(guide_files()["pyproject.toml"])
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["project"]["version"]
    assert meta["project"]["entry-points"]["noa_platform"] == {"heat": "noa_heat.plugin"}


def test_guide_example_is_a_conforming_plugin(tmp_path, monkeypatch):
    files = guide_files()
    assert {"noa_heat/__init__.py", "noa_heat/plugin.py", "noa_heat/domain.py",
            "tests/test_heat.py"} <= set(files)
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        from noa_heat import plugin

        assert plugin.NOA_PLUGIN_API == PLUGIN_API_VERSION
        (domain,) = plugin.noa_domains()
        report = check_domain(domain)
        assert report.ok, report.table()
        assert report["conserved_invariants"].status == "pass"
    finally:
        for name in [m for m in sys.modules if m == "noa_heat" or m.startswith("noa_heat.")]:
            del sys.modules[name]


RELIABILITY_REF = re.compile(r"`((?:tests|domains)/[\w/]+\.py)::(\w+)`")


def test_every_test_named_in_reliability_md_exists_and_every_reliability_test_is_named():
    """docs/reliability.md is the table of faults tried: each row's test exists, and every test
    in a tests/test_reliability_*.py file has its row."""
    root = DOCS.parent
    named = set(RELIABILITY_REF.findall((DOCS / "reliability.md").read_text()))
    assert len(named) >= 20
    for rel, name in sorted(named):
        source = root / rel
        assert source.is_file(), f"docs/reliability.md names {rel}, which does not exist"
        assert re.search(rf"(?m)^def {name}\(", source.read_text()), \
            f"docs/reliability.md names {rel}::{name}, which is not a test there"
    for source in sorted((root / "tests").glob("test_reliability_*.py")):
        rel = source.relative_to(root).as_posix()
        for name in re.findall(r"(?m)^def (test_\w+)\(", source.read_text()):
            assert (rel, name) in named, f"{rel}::{name} has no row in docs/reliability.md"
