"""The template ``noa plugins new NAME`` renders: a working domain plugin distribution.

The files under ``files/`` are :class:`string.Template` texts (``${name}``, ``${package}``,
...) shipped as package data; ``files/package/`` becomes the plugin's import package. The
rendered plugin is advection–diffusion solved exactly in Fourier space: small enough to read
in one sitting, complete enough to pass the conformance kit and train with ``--preset quick``.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from noa_platform import __version__
from noa_platform.api import PLUGIN_API_VERSION
from noa_platform.errors import NoaError

FILES = Path(__file__).with_name("files")
SUFFIX = ".tmpl"
#: A plugin name: lowercase words of letters and digits joined by single hyphens.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class TemplateError(NoaError):
    """A plugin name or target folder ``noa plugins new`` cannot use."""


def names_for(name: str) -> dict[str, str]:
    """The substitutions for plugin ``name`` (e.g. ``heat-flow``): distribution
    ``noa-domain-heat-flow``, package ``noa_heat_flow``, class ``HeatFlow``."""
    if not NAME_PATTERN.match(name) or len(name) > 60:
        raise TemplateError(f"plugin name {name!r} is not usable: use lowercase letters, digits "
                            "and single hyphens, starting with a letter (e.g. 'heat-flow')")
    words = name.split("-")
    class_name = "".join(w.capitalize() for w in words)
    if keyword.iskeyword(class_name):  # cannot happen with capitals; kept for clarity
        class_name += "Domain"
    return {
        "name": name,
        "distribution": f"noa-domain-{name}",
        "package": "noa_" + "_".join(words),
        "class_name": class_name if class_name[0].isalpha() else f"D{class_name}",
        "title": " ".join(words).capitalize(),
        "platform_version": __version__,
        "api_version": str(PLUGIN_API_VERSION),
    }


def template_files() -> list[Path]:
    """Every template file, relative to :data:`FILES`, in a stable order."""
    return sorted(p.relative_to(FILES) for p in FILES.rglob(f"*{SUFFIX}"))


def render(name: str, target: str | Path) -> list[Path]:
    """Write the plugin ``name`` into ``target`` (absent or empty); the files written."""
    subs = names_for(name)
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TemplateError(f"{target} exists and is not an empty folder; choose another --dir")
    written = []
    for rel in template_files():
        parts = [subs["package"] if part == "package" else part for part in rel.parts]
        out = target.joinpath(*parts).with_name(parts[-1].removesuffix(SUFFIX))
        text = Template((FILES / rel).read_text(encoding="utf-8")).substitute(subs)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written
