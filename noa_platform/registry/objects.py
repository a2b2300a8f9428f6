"""Content-addressed storage: every file once, under its sha256, and per-artifact folders of
hard links that give the files back under their original names.

Layout under the registry folder::

    objects/ab/abcdef...   one file per distinct content, read-only, named by its sha256
    artifacts/ID/NAME      the artifact as registered (a file or a folder), hard links to objects
    tmp/                   work in progress: copies being written, folders being assembled

An object is written under ``tmp/`` and renamed into ``objects/`` only once it is complete and
its hash is checked, so ``objects/`` never holds a partial file; an artifact folder is
assembled under ``tmp/`` and renamed into ``artifacts/`` in one step. Anything a killed
process leaves in ``tmp/``, and any object or folder no row refers to, is garbage that
:meth:`Registry.gc` removes.

Files are copied from the source, never hard-linked to it: a run folder's files can be
rewritten in place afterwards (``noa features`` appends to a dataset's HDF5 file), and a link
would silently change the registered bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from noa_platform.atomic import _fsync_dir
from noa_platform.errors import NoaError

BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def source_files(source: Path | Mapping[str, Path]) -> dict[str, Path]:
    """Relative POSIX name -> file, for a file, a folder (recursively) or a name -> file map.

    Symbolic links are followed (the registry stores content); empty folders are not kept.
    """
    if isinstance(source, Mapping):
        out = {}
        for name, path in source.items():
            rel = Path(name)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise NoaError(f"registry source name {name!r}: must be a relative path "
                               "inside the artifact")
            path = Path(path)
            if not path.is_file():
                raise NoaError(f"registry source {path}: no such file (for {name!r})")
            out[rel.as_posix()] = path
        if not out:
            raise NoaError("registry source: no files given")
        return out
    source = Path(source)
    if source.is_file():
        return {source.name: source}
    if not source.is_dir():
        raise NoaError(f"registry source {source}: no such file or folder")
    out = {}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            out[path.relative_to(source).as_posix()] = path
        elif not path.is_dir():
            raise NoaError(f"registry source {path}: not a regular file or folder")
    if not out:
        raise NoaError(f"registry source {source}: the folder holds no files")
    return out


class ObjectStore:
    """The ``objects/``, ``artifacts/`` and ``tmp/`` folders of one registry."""

    def __init__(self, root: Path):
        self.objects, self.views, self.tmp = root / "objects", root / "artifacts", root / "tmp"
        for folder in (self.objects, self.views, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def object_path(self, sha: str) -> Path:
        return self.objects / sha[:2] / sha

    def temp_path(self, label: str) -> Path:
        return self.tmp / f"{label}-{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def put(self, path: Path) -> tuple[str, int]:
        """Store the file's content once; returns its sha256 and size.

        The file is hashed first, so content already stored (a rerun registering the same
        dataset) costs one read and no write. Otherwise it is copied under ``tmp/`` while being
        hashed again, and renamed into place only if that copy has the hash it will be named by.
        """
        sha = sha256_of(path)
        size = path.stat().st_size
        target = self.object_path(sha)
        if target.exists() and target.stat().st_size == size:
            return sha, size
        tmp = self.temp_path("object")
        h = hashlib.sha256()
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                while block := src.read(BLOCK):
                    h.update(block)
                    dst.write(block)
                dst.flush()
                os.fsync(dst.fileno())
            if h.hexdigest() != sha:
                raise NoaError(f"registry source {path}: changed while it was being registered")
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return sha, size

    def build_view(self, rid: str, name: str, is_dir: bool, files: Mapping[str, str]) -> None:
        """Make ``artifacts/RID/NAME`` (a file, or a folder holding ``files``) from objects.

        Assembled under ``tmp/`` and renamed into place; a folder left by an earlier attempt
        that never got its row is replaced (the caller holds the index's write lock).
        """
        work = self.temp_path("view")
        try:
            for rel, sha in files.items():
                dest = work / name / rel if is_dir else work / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(self.object_path(sha), dest)
            final = self.views / rid
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        _fsync_dir(self.views)

    def view_path(self, rid: str, name: str) -> Path:
        return self.views / rid / name

    def remove_view(self, rid: str) -> None:
        shutil.rmtree(self.views / rid, ignore_errors=True)

    def stored_objects(self) -> Iterable[Path]:
        return (p for p in self.objects.glob("??/*") if p.is_file())


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` at ``dest``; copy where the file system has no hard links."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
        os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
