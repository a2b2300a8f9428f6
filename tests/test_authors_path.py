"""A plugin author's path end to end: `noa plugins new`, install into a fresh virtual
environment, and there `noa domains list`, `noa plugins check` and `noa train --preset quick`.

The fresh environment sees the running platform's installation through a ``.pth`` file (found
with :mod:`sysconfig` at run time) instead of installing torch anew, and the rendered plugin is
installed with ``pip install --no-deps --no-build-isolation -e`` (no network)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

NAME = "author-demo"


def run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NOA_PLUGINS", "NOA_DISABLE_PLUGINS", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def fresh_venv_seeing_this_platform(root: Path) -> Path:
    """A venv whose site-packages adds this interpreter's as a site dir (so the editable
    installs' own .pth files, torch and pip are all visible); returns its python."""
    venv.create(root, with_pip=False, symlinks=True)
    python = root / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=root).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    # A .pth line starting with `import` is executed: addsitedir also processes the .pth
    # files of the platform's environment (editable installs are such files).
    Path(purelib, "_noa_platform_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


@pytest.mark.slow
def test_rendered_plugin_installs_passes_the_kit_and_trains(tmp_path):
    plugin = tmp_path / "plugin"
    new = run([sys.executable, "-m", "noa_platform", "plugins", "new", NAME, "--dir", str(plugin)],
              cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    assert (plugin / "pyproject.toml").exists() and (plugin / "noa_author_demo" / "solver.py").exists()

    python = fresh_venv_seeing_this_platform(tmp_path / "venv")
    install = run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                   "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                   "-e", str(plugin)], cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    noa = [str(python), "-m", "noa_platform"]
    listed = run(noa + ["domains", "list"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:1] == [NAME] for line in listed.stdout.splitlines()), listed.stdout

    check = run(noa + ["plugins", "check", NAME], cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"domain {NAME!r} conforms" in check.stdout

    run_dir = tmp_path / "run"
    train = run(noa + ["train", NAME, "--preset", "quick", "--run-dir", str(run_dir), "--quiet"],
                cwd=tmp_path, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    assert "report:" in train.stdout
    # The parent environment does not see the plugin: it lives in the fresh venv only.
    here = run([sys.executable, "-m", "noa_platform", "domains", "list"], cwd=tmp_path)
    assert NAME not in here.stdout
