"""Listing commands do not import torch, whatever plugins are installed.

``noa plugins list`` and ``noa domains list`` discover every plugin: they import each plugin's
module and call its hooks. Importing torch takes about a second, five times the rest of the
command, so neither the core's built-ins nor any plugin may import it until something computes
(see docs/plugin-guide.md, "Start-up"). Each check runs in a fresh interpreter, because this
test session has long since imported torch; times are measured by benchmarks/cli_startup.py,
not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

from noa_platform.plugins import BUILTIN_NAME, ENTRY_POINT_GROUP

# Runs the given commands in-process through the click app, then reports whether torch was
# imported and, if so, the frames (outside importlib) of the first `import torch`.
_PROBE = r"""
import json, sys, traceback

class FirstTorchImport:
    # A meta-path finder that finds nothing: it only notes who asked for torch first.
    where = None

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and self.where is None:
            frames = [f for f in traceback.extract_stack()[:-1]
                      if "importlib" not in f.filename and not f.filename.startswith("<")]
            self.where = [f"{f.filename}:{f.lineno}: {f.line}" for f in frames[-3:]]
        return None

probe = FirstTorchImport()
sys.meta_path.insert(0, probe)

from click.testing import CliRunner
from noa_platform.cli import main
from noa_platform.plugins import get_registry

commands = json.loads(sys.argv[1])
if commands == "show-every-domain":
    commands = [["domains", "show", name] for name in sorted(get_registry().domains)]
results = []
for args in commands:
    res = CliRunner().invoke(main, args)
    results.append({"args": args, "exit_code": res.exit_code, "output": res.output})
print(json.dumps({
    "torch_imported": "torch" in sys.modules,
    "first_torch_import": probe.where,
    "results": results,
    "plugins": [{"name": r.name, "status": r.status, "error": r.error}
                for r in get_registry().records],
}))
"""


def _probe(commands: object) -> dict:
    # Every installed plugin: neither selection variable may narrow discovery here.
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOA_PLUGINS", "NOA_DISABLE_PLUGINS")}
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(commands)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def _check(report: dict) -> None:
    for r in report["results"]:
        assert r["exit_code"] == 0, (r["args"], r["output"])
    # Discovery saw every installed plugin, so the check below covers all of them.
    seen = {p["name"] for p in report["plugins"]}
    installed = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {BUILTIN_NAME} | installed <= seen
    where = "\n  ".join(report["first_torch_import"] or [])
    plugins = ", ".join(f"{p['name']} ({p['status']})" for p in report["plugins"])
    assert not report["torch_imported"], (
        f"torch was imported; first import from:\n  {where}\nplugins: {plugins}")


def test_listing_plugins_and_domains_does_not_import_torch():
    report = _probe([["plugins", "list"], ["domains", "list"], ["domains", "list", "--json"]])
    _check(report)
    assert len(report["results"]) == 3


def test_showing_every_domain_does_not_import_torch():
    report = _probe("show-every-domain")
    _check(report)
    names = {r["args"][-1] for r in report["results"]}
    assert "reaction-diffusion" in names  # this repository's own plugin is always installed
