"""The registry of trained artifacts: a SQLite index plus content-addressed files.

See ``docs/registry.md`` for the layout, the schema and the guarantees. In short: a row is
committed only after every file it names is in place (objects renamed into ``objects/``, the
artifact's folder renamed into ``artifacts/``), in one ``BEGIN IMMEDIATE`` transaction, so a
process killed at any point leaves either the whole row or none, and what it left on disk is
removed by :meth:`Registry.gc`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from noa_platform.errors import NoaError
from noa_platform.file_lock import file_lock
from noa_platform.registry.entry import ID_HEX, KINDS, RegistryEntry, artifact_id, jsonable
from noa_platform.registry.objects import ObjectStore, sha256_of, source_files
from noa_platform.registry.schema import connect

INDEX = "index.sqlite"
DEFAULT_PATH = Path("registry")


def registry_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$NOA_REGISTRY``, else ``./registry``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("NOA_REGISTRY")
    return Path(env) if env else DEFAULT_PATH


def open_registry(path: str | os.PathLike | None = None, *, create: bool = True) -> Registry:
    """The registry at ``path`` (default ``$NOA_REGISTRY``, else ``./registry``), created when
    missing unless ``create`` is false (then a missing one is a :class:`NoaError`)."""
    root = registry_path(path)
    if root.exists() and not root.is_dir():
        raise NoaError(f"registry {root}: not a folder")
    if not (root / INDEX).exists():
        if not create:
            raise NoaError(f"registry {root}: no registry there (no {INDEX}); "
                           "`noa train` creates one, or pass --registry / set NOA_REGISTRY")
        root.mkdir(parents=True, exist_ok=True)
    return Registry(root)


def manifest_digest(name: str, is_dir: bool, files: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 of the canonical JSON of the artifact's name, type and files."""
    manifest = {"name": name, "is_dir": is_dir,
                "files": {rel: {"sha256": f["sha256"], "size": f["size"]}
                          for rel, f in sorted(files.items())}}
    return hashlib.sha256(json.dumps(manifest, sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def default_versions(domain: str) -> dict[str, Any]:
    """The platform's version and, for each installed domain named in ``domain`` (``A->B`` for
    cross-domain kinds), the domain's version and its plugin's distribution version."""
    from noa_platform import __version__
    from noa_platform.plugins import get_registry

    out: dict[str, Any] = {"platform": __version__}
    plugins = get_registry()
    for name in domain.split("->"):
        d = plugins.domains.get(name)
        if d is None:
            continue
        owner = plugins.owners[("domains", name)]
        record = next(r for r in plugins.records if r.name == owner and r.status == "loaded")
        out.setdefault("domains", {})[name] = d.version
        out.setdefault("plugins", {})[owner] = {"distribution": record.distribution,
                                                "version": record.version}
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def _dumps(value: Any, where: str) -> str:
    try:
        return json.dumps(jsonable(value, where), sort_keys=True)
    except TypeError as exc:
        raise NoaError(f"registry: {exc}") from None


class Registry:
    """One registry folder. Use :func:`open_registry` rather than this constructor."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.store = ObjectStore(self.root)
        self.con = connect(self.root / INDEX)
        self.lock_path = self.root / "lock"

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # ------------------------------------------------------------------ writing

    def add(self, kind: str, *, domain: str, source: str | os.PathLike | Mapping[str, Path],
            config: Mapping[str, Any], metrics: Mapping[str, Any], parents: Sequence[str] = (),
            dataset_fingerprint: str | None = None, versions: Mapping[str, Any] | None = None,
            name: str | None = None) -> str:
        """Register ``source`` (a file, a folder, or a mapping relative name -> file); returns
        the artifact's id.

        Content already registered with the same kind and domain (same digest) is not
        registered twice: its existing id is returned and its row left as it was. ``parents``
        are ids (or unique prefixes) of registered artifacts. ``versions`` is merged over
        :func:`default_versions`. ``name`` is the name :meth:`path` gives back for a mapping
        source (default: the kind); a file or folder keeps its own.
        """
        if kind not in KINDS:
            raise NoaError(f"registry: unknown kind {kind!r}; known: {', '.join(KINDS)}")
        if not isinstance(domain, str) or not domain:
            raise NoaError(f"registry: the domain of a {kind} must be a non-empty string")
        config_json, metrics_json = _dumps(config, "config"), _dumps(metrics, "metrics")
        versions_json = _dumps({**default_versions(domain), **(versions or {})}, "versions")
        parent_ids = [self.get(p).id for p in parents]
        files = source_files(source)
        is_dir = isinstance(source, Mapping) or Path(source).is_dir()
        art_name = name or (kind if isinstance(source, Mapping) else Path(source).name)
        # Objects are copied before the index's write lock is taken (copying a large dataset
        # inside it would stall every other writer), so for a while they are referenced by no
        # row: the registry's lock file, held shared, keeps `gc` (exclusive) from deleting
        # them meanwhile.
        with file_lock(self.lock_path, exclusive=False):
            manifest = {}
            for rel, path in files.items():
                sha, size = self.store.put(path)
                manifest[rel] = {"sha256": sha, "size": size}
            digest = manifest_digest(art_name, is_dir, manifest)
            self.con.execute("BEGIN IMMEDIATE")
            try:
                row = self.con.execute(
                    "SELECT id FROM artifacts WHERE kind = ? AND domain = ? AND digest = ?",
                    (kind, domain, digest)).fetchone()
                if row is not None:
                    self.con.execute("COMMIT")
                    return row[0]
                rid = self._free_id(kind, domain, digest)
                self.store.build_view(rid, art_name, is_dir,
                                      {rel: f["sha256"] for rel, f in manifest.items()})
                self.con.execute(
                    "INSERT INTO artifacts (id, kind, domain, created, digest, name, is_dir, "
                    "config, metrics, dataset_fingerprint, versions) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, kind, domain, _now(), digest, art_name, int(is_dir), config_json,
                     metrics_json, dataset_fingerprint, versions_json))
                self.con.executemany(
                    "INSERT INTO files (artifact, name, sha256, size) VALUES (?, ?, ?, ?)",
                    [(rid, rel, f["sha256"], f["size"]) for rel, f in manifest.items()])
                self.con.executemany(
                    "INSERT INTO parents (child, parent, position) VALUES (?, ?, ?)",
                    [(rid, p, i) for i, p in enumerate(dict.fromkeys(parent_ids))])
                self.con.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self.con.execute("ROLLBACK")
                raise NoaError(f"registry {self.root}: a parent of this {kind} was removed "
                               f"while it was being registered ({exc})") from None
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        return rid

    def _free_id(self, kind: str, domain: str, digest: str) -> str:
        for hex_chars in range(ID_HEX, 65):
            rid = artifact_id(kind, domain, digest, hex_chars)
            if self.con.execute("SELECT 1 FROM artifacts WHERE id = ?", (rid,)).fetchone() is None:
                return rid
        raise AssertionError("sha256 collision")  # pragma: no cover

    def remove(self, rid: str) -> str:
        """Remove an artifact's row and folder; returns its full id. Its objects stay until
        :meth:`gc` (another artifact may share them). An artifact that is the parent of others
        is kept: remove the children first."""
        entry = self.get(rid)
        self.con.execute("BEGIN IMMEDIATE")
        try:
            children = [r[0] for r in self.con.execute(
                "SELECT child FROM parents WHERE parent = ? ORDER BY child", (entry.id,))]
            if children:
                raise NoaError(f"registry {self.root}: {entry.id} is a parent of "
                               f"{', '.join(children)}; remove those first")
            self.con.execute("DELETE FROM artifacts WHERE id = ?", (entry.id,))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.store.remove_view(entry.id)
        return entry.id

    def gc(self) -> dict[str, Any]:
        """Remove what no row refers to: objects, artifact folders, and everything under
        ``tmp/`` (left by killed registrations). Waits for registrations in progress.

        Returns ``{"objects": n, "bytes": n, "artifact_folders": [...], "temporary": [...]}``.
        """
        with file_lock(self.lock_path, exclusive=True):
            temporary = sorted(p.name for p in self.store.tmp.iterdir())
            for name in temporary:
                path = self.store.tmp / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            ids = {r[0] for r in self.con.execute("SELECT id FROM artifacts")}
            folders = sorted(p.name for p in self.store.views.iterdir() if p.name not in ids)
            for name in folders:
                self.store.remove_view(name)
            used = {r[0] for r in self.con.execute("SELECT DISTINCT sha256 FROM files")}
            removed, freed = 0, 0
            for obj in list(self.store.stored_objects()):
                if obj.name not in used:
                    freed += obj.stat().st_size
                    obj.unlink()
                    removed += 1
            for shard in self.store.objects.iterdir():
                if shard.is_dir() and not any(shard.iterdir()):
                    shard.rmdir()
            self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"objects": removed, "bytes": freed, "artifact_folders": folders,
                "temporary": temporary}

    # ------------------------------------------------------------------ reading

    def _resolve(self, rid: str) -> str:
        if self.con.execute("SELECT 1 FROM artifacts WHERE id = ?", (rid,)).fetchone():
            return rid
        pattern = rid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = [r[0] for r in self.con.execute(
            "SELECT id FROM artifacts WHERE id LIKE ? ESCAPE '\\' ORDER BY id", (pattern,))]
        if len(found) == 1 and rid:
            return found[0]
        if len(found) > 1 and rid:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise NoaError(f"registry {self.root}: artifact id {rid!r} is ambiguous "
                           f"({len(found)} match: {shown})")
        raise NoaError(f"registry {self.root}: no artifact {rid!r}")

    def _entry(self, row: sqlite3.Row | tuple) -> RegistryEntry:
        (rid, kind, domain, created, digest, name, is_dir, config, metrics, fingerprint,
         versions) = row
        files = {r[0]: {"sha256": r[1], "size": r[2]} for r in self.con.execute(
            "SELECT name, sha256, size FROM files WHERE artifact = ? ORDER BY name", (rid,))}
        parents = tuple(r[0] for r in self.con.execute(
            "SELECT parent FROM parents WHERE child = ? ORDER BY position", (rid,)))
        return RegistryEntry(id=rid, kind=kind, domain=domain, created=created,
                             config=json.loads(config), metrics=json.loads(metrics),
                             parents=parents, dataset_fingerprint=fingerprint,
                             versions=json.loads(versions), digest=digest, name=name,
                             is_dir=bool(is_dir), files=files)

    _COLUMNS = ("id, kind, domain, created, digest, name, is_dir, config, metrics, "
                "dataset_fingerprint, versions")

    def get(self, rid: str) -> RegistryEntry:
        """The artifact with id (or unique id prefix) ``rid``."""
        full = self._resolve(rid)
        row = self.con.execute(f"SELECT {self._COLUMNS} FROM artifacts WHERE id = ?",
                               (full,)).fetchone()
        if row is None:  # removed between the two statements
            raise NoaError(f"registry {self.root}: no artifact {rid!r}")
        return self._entry(row)

    def list(self, kind: str | None = None, domain: str | None = None) -> list[RegistryEntry]:
        """Artifacts, newest first, optionally of one kind and/or one domain."""
        if kind is not None and kind not in KINDS:
            raise NoaError(f"registry: unknown kind {kind!r}; known: {', '.join(KINDS)}")
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if domain is not None:
            where.append("domain = ?")
            args.append(domain)
        sql = (f"SELECT {self._COLUMNS} FROM artifacts"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY created DESC, rowid DESC")
        return [self._entry(row) for row in self.con.execute(sql, args).fetchall()]

    def latest(self, kind: str, domain: str) -> RegistryEntry | None:
        """The newest artifact of ``kind`` for ``domain``, or ``None``."""
        found = self.list(kind, domain)
        return found[0] if found else None

    def children(self, rid: str) -> list[str]:
        """Ids of the artifacts that name ``rid`` as a parent."""
        full = self._resolve(rid)
        return [r[0] for r in self.con.execute(
            "SELECT child FROM parents WHERE parent = ? ORDER BY child", (full,))]

    def path(self, rid: str) -> Path:
        """The artifact as registered (a file, or a folder with the original names), after
        checking every file against its recorded sha256.

        A file that is missing, changed, or a file in the folder that was never registered is
        a :class:`NoaError` naming the id and the file.
        """
        entry = self.get(rid)
        where = self.store.view_path(entry.id, entry.name)
        for rel, f in entry.files.items():
            path = where / rel if entry.is_dir else where
            label = f"registry {self.root}: artifact {entry.id}, file {rel!r} ({path})"
            if not path.is_file():
                raise NoaError(f"{label} is missing")
            size = path.stat().st_size
            if size != f["size"]:
                raise NoaError(f"{label} has changed: {size} bytes, registered {f['size']}")
            actual = sha256_of(path)
            if actual != f["sha256"]:
                raise NoaError(f"{label} has changed: sha256 {actual[:16]}..., registered "
                               f"{f['sha256'][:16]}...")
        if entry.is_dir:
            extra = sorted(p.relative_to(where).as_posix() for p in where.rglob("*")
                           if not p.is_dir() and p.relative_to(where).as_posix()
                           not in entry.files)
            if extra:
                raise NoaError(f"registry {self.root}: artifact {entry.id} holds a file that "
                               f"was never registered: {extra[0]!r} ({where / extra[0]})")
        return where
