"""Plugin discovery, validation and isolation.

Plugins are modules exposed under the entry-point group ``noa_platform``. Each is loaded,
checked and registered on its own, so one broken plugin never takes the host down: a plugin
that fails to import, targets another API version, implements a hook with arguments the spec
lacks, implements a hook that has no spec (a misspelling), raises from a hook, returns the
wrong kind of object or a domain that cannot describe itself (a missing attribute), or claims a
name another plugin already owns, is recorded with its error and skipped (pluggy itself does
not isolate import errors, hence the wrapping here).

Environment variables:

* ``NOA_PLUGINS=a,b`` — load only these plugins (by entry-point or distribution name);
* ``NOA_DISABLE_PLUGINS=a`` — never load these.

The core's built-ins (:mod:`noa_platform.builtins`) are registered through the same hooks and
are not affected by either variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from noa_platform import hookspecs
from noa_platform.api import (
    MIGRATION,
    PLUGIN_API_VERSION,
    ArchitectureSpec,
    Domain,
    FeatureExtractorSpec,
    TokenizerSpec,
)
from noa_platform.errors import PluginError

ENTRY_POINT_GROUP = "noa_platform"
BUILTIN_NAME = "noa-platform"

# hook name -> (expected item type, attribute that names an item, registry attribute)
_HOOKS: dict[str, tuple[type, str, str]] = {
    "noa_domains": (Domain, "name", "domains"),
    "noa_architectures": (ArchitectureSpec, "name", "architectures"),
    "noa_feature_extractors": (FeatureExtractorSpec, "family", "feature_extractors"),
    "noa_tokenizers": (TokenizerSpec, "name", "tokenizers"),
}

#: What a plugin's import or hook may raise and still only fail that plugin: any error, and
#: SystemExit (a module written as a script calls sys.exit), which would otherwise end the
#: host with whatever status the plugin chose. KeyboardInterrupt still stops everything.
PLUGIN_FAULTS = (Exception, SystemExit)

#: What one item of each registry table is called in messages.
_KINDS = {"architectures": "architecture", "feature_extractors": "feature family",
          "tokenizers": "tokenizer"}


@dataclass
class PluginRecord:
    """What became of one plugin: ``status`` is ``loaded``, ``skipped`` or ``failed``."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _names_from_env(var: str, env: Mapping[str, str]) -> set[str] | None:
    raw = env.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class PluginRegistry:
    """The plugins found on this installation and what each contributes.

    ``domains``, ``architectures``, ``feature_extractors`` and ``tokenizers`` map a name to the
    object a loaded plugin provides; ``owners`` maps ``(kind, name)`` to the plugin's name;
    ``records`` lists every plugin seen, in load order, including skipped and failed ones.
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.domains: dict[str, Domain] = {}
        self.architectures: dict[str, ArchitectureSpec] = {}
        self.feature_extractors: dict[str, FeatureExtractorSpec] = {}
        self.tokenizers: dict[str, TokenizerSpec] = {}
        self.owners: dict[tuple[str, str], str] = {}

    # ---------------------------------------------------------------- registration

    def register(
        self,
        plugin: ModuleType | object,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Validate and register one in-process plugin; never raises for a bad plugin."""
        record = PluginRecord(name=name, distribution=distribution, version=version)
        self.records.append(record)
        if any(r.name == name and r.status == "loaded" for r in self.records[:-1]):
            return self._fail(record, f"a plugin named {name!r} is already loaded")
        declared = getattr(plugin, "NOA_PLUGIN_API", None)
        if declared is None:
            return self._fail(record, "declares no NOA_PLUGIN_API version")
        if declared != PLUGIN_API_VERSION:
            return self._fail(
                record,
                f"targets plugin API {declared!r}, this platform provides {PLUGIN_API_VERSION}"
                + (f"; to update, {MIGRATION[declared]}" if declared in MIGRATION else ""),
            )
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            return self._fail(record, f"invalid hook implementation: {exc}")
        except ValueError as exc:  # pluggy: name or object already registered
            return self._fail(record, str(exc))
        callers = self.manager.get_hookcallers(plugin) or []
        record.hooks = sorted(c.name for c in callers)
        unknown = [c.name for c in callers if c.spec is None]
        if unknown:
            self.manager.unregister(plugin)
            return self._fail(
                record,
                f"implements unknown hook(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(_HOOKS)})",
            )
        try:
            contributions = self._collect(plugin)
        except PluginError as exc:
            self.manager.unregister(plugin)
            return self._fail(record, str(exc))
        # Commit only once everything validated, so a failed plugin leaves no trace.
        for hook, items in contributions.items():
            _, _, attr = _HOOKS[hook]
            target = getattr(self, attr)
            for item_name, item in items:
                target[item_name] = item
                self.owners[(attr, item_name)] = name
            if items:
                record.provides[attr] = [n for n, _ in items]
        return record

    def _collect(self, plugin: object) -> dict[str, list[tuple[str, Any]]]:
        """Call each of the plugin's hooks and check what comes back."""
        out: dict[str, list[tuple[str, Any]]] = {}
        for hook, (kind, key, attr) in _HOOKS.items():
            impls = [i for i in getattr(self.manager.hook, hook).get_hookimpls()
                     if i.plugin is plugin]
            items: list[tuple[str, Any]] = []
            for impl in impls:
                try:
                    result = impl.function()
                except PLUGIN_FAULTS as exc:
                    raise PluginError(f"hook {hook} raised {_error_text(exc)}") from exc
                if not isinstance(result, (list, tuple)):
                    raise PluginError(f"hook {hook} returned {type(result).__name__}, not a list")
                for obj in result:
                    if not isinstance(obj, kind):
                        raise PluginError(
                            f"hook {hook} returned a {type(obj).__name__}, expected {kind.__name__}"
                        )
                    item_name = getattr(obj, key, None)
                    if not isinstance(item_name, str) or not item_name:
                        raise PluginError(f"hook {hook} returned an object without a {key}")
                    if isinstance(obj, Domain):
                        # `noa domains list/show` read these for every domain: one missing
                        # attribute would take the listing of all the others down with it.
                        try:
                            obj.describe()
                        except Exception as exc:
                            raise PluginError(
                                f"hook {hook} returned domain {item_name!r}, whose declaration "
                                f"is incomplete: {_error_text(exc)}") from exc
                    taken = getattr(self, attr)
                    if item_name in taken or item_name in {n for n, _ in items}:
                        owner = self.owners.get((attr, item_name), "this plugin")
                        raise PluginError(
                            f"{attr[:-1].replace('_', ' ')} name {item_name!r} is already "
                            f"provided by plugin {owner!r}"
                        )
                    items.append((item_name, obj))
            out[hook] = items
        return out

    def _fail(self, record: PluginRecord, error: str) -> PluginRecord:
        record.status = "failed"
        record.error = error
        return record

    def load_entry_points(
        self,
        eps: Iterable[EntryPoint] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Load every plugin of the ``noa_platform`` group, isolating failures."""
        env = os.environ if env is None else env
        allow = _names_from_env("NOA_PLUGINS", env)
        block = _names_from_env("NOA_DISABLE_PLUGINS", env) or set()
        found = entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps
        for ep in sorted(found, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            aliases = {ep.name, dist_name} - {None}
            if allow is not None and not aliases & allow:
                self.records.append(PluginRecord(ep.name, dist_name, version, status="skipped",
                                                 error="not listed in NOA_PLUGINS"))
                continue
            if aliases & block:
                self.records.append(PluginRecord(ep.name, dist_name, version, status="skipped",
                                                 error="disabled by NOA_DISABLE_PLUGINS"))
                continue
            try:
                module = ep.load()
            except PLUGIN_FAULTS as exc:
                self.records.append(PluginRecord(ep.name, dist_name, version, status="failed",
                                                 error=f"import failed: {_error_text(exc)}"))
                continue
            self.register(module, ep.name, dist_name, version)

    # ---------------------------------------------------------------- lookup

    def domain(self, name: str) -> Domain:
        """The domain called ``name``, or a :class:`PluginError` listing the known ones."""
        try:
            return self.domains[name]
        except KeyError:
            pass
        # A plugin is often named after its domain: if that plugin is the one that failed or
        # was skipped, say so rather than only listing it among the others.
        for r in self.records:
            if r.status != "loaded" and name in (r.name, r.distribution):
                what = "failed to load" if r.status == "failed" else "was skipped"
                raise PluginError(f"unknown domain {name!r}: plugin {r.name!r} {what}: "
                                  f"{r.error}; see `noa plugins list`")
        known = ", ".join(sorted(self.domains)) or "none installed"
        why = self._why_missing(("failed", "skipped"))
        raise PluginError(f"unknown domain {name!r}; known: {known}{why}")

    def _why_missing(self, statuses: tuple[str, ...] = ("failed",)) -> str:
        """The plugins that may hold a missing name: failed ones, and for a domain also those
        skipped by NOA_PLUGINS / NOA_DISABLE_PLUGINS (an empty or stale variable hides every
        domain; components are often narrowed on purpose, so they do not list them)."""
        parts = []
        for status in statuses:
            names = [r.name for r in self.records if r.status == status]
            if names:
                parts.append(f"{status} plugins: {', '.join(names)}")
        return f" ({'; '.join(parts)}; see `noa plugins list`)" if parts else ""

    def lookup(self, kind: str, name: str, where: str | None = None) -> Any:
        """An architecture, feature extractor or tokenizer spec by name.

        ``kind`` is ``"architectures"``, ``"feature_extractors"`` or ``"tokenizers"``;
        ``where`` is the config key the name came from, put at the front of the error. An
        unknown name is a :class:`PluginError` listing the known ones (and failed plugins,
        which may be the reason it is missing).
        """
        if kind not in _KINDS:
            raise ValueError(f"lookup kind must be one of {', '.join(_KINDS)}, got {kind!r}")
        table: dict[str, Any] = getattr(self, kind)
        if name not in table:
            known = ", ".join(sorted(table)) or "none installed"
            prefix = f"{where}: " if where else ""
            raise PluginError(f"{prefix}unknown {_KINDS[kind]} {name!r}; known: {known}"
                              f"{self._why_missing()}")
        return table[name]


def discover(env: Mapping[str, str] | None = None) -> PluginRegistry:
    """A fresh registry with the built-ins and every installed plugin."""
    from noa_platform import __version__, builtins

    registry = PluginRegistry()
    registry.register(builtins, BUILTIN_NAME, "noa-platform", __version__)
    registry.load_entry_points(env=env)
    return registry


@functools.lru_cache(maxsize=1)
def get_registry() -> PluginRegistry:
    """The process-wide registry, discovered once (call ``get_registry.cache_clear()`` to redo)."""
    return discover()
