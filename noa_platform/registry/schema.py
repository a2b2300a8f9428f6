"""The registry's SQLite index: connection settings and the schema's migrations.

``PRAGMA user_version`` is the schema version. :data:`MIGRATIONS` ``[i]`` takes an index from
version ``i`` to ``i + 1``; opening an index applies the missing ones in order, in one
``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh registry at once migrate it
once. A future schema change appends one entry here and never edits an old one.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from noa_platform.errors import NoaError

BUSY_TIMEOUT_S = 60.0  # a writer waits this long for another's transaction before failing

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: artifacts, their files (the manifest) and their parents.
    """
    CREATE TABLE artifacts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        domain TEXT NOT NULL,
        created TEXT NOT NULL,
        digest TEXT NOT NULL,
        name TEXT NOT NULL,
        is_dir INTEGER NOT NULL,
        config TEXT NOT NULL,
        metrics TEXT NOT NULL,
        dataset_fingerprint TEXT,
        versions TEXT NOT NULL,
        UNIQUE (kind, domain, digest)
    );
    CREATE INDEX artifacts_by_kind ON artifacts (kind, domain, created);
    CREATE TABLE files (
        artifact TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (artifact, name)
    );
    CREATE INDEX files_by_object ON files (sha256);
    CREATE TABLE parents (
        child TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        parent TEXT NOT NULL REFERENCES artifacts (id),
        position INTEGER NOT NULL,
        PRIMARY KEY (child, parent)
    );
    CREATE INDEX parents_by_parent ON parents (parent);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating when missing) and migrate the index at ``path``.

    Autocommit mode: every write is an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, so the
    write lock is taken before anything is read and two writers never deadlock on an upgrade.
    WAL lets readers go on while one process writes; ``synchronous=FULL`` makes a committed row
    survive a power cut, not only a killed process.

    Switching a fresh file to WAL needs its exclusive lock, and SQLite answers "database is
    locked" at once, without waiting, to a process that would otherwise deadlock with another
    doing the same (both hold a shared lock and want the exclusive one). So the whole opening is
    retried, with a jittered back-off, until :data:`BUSY_TIMEOUT_S` has passed.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        con = None
        try:
            con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            migrate(con, path)
            return con
        except sqlite3.DatabaseError as exc:
            if con is not None:
                con.close()
            busy = isinstance(exc, sqlite3.OperationalError) and (
                "locked" in str(exc) or "busy" in str(exc))
            if not busy or time.monotonic() + delay > deadline:
                raise NoaError(f"{path}: not a usable registry index ({exc})") from None
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


def migrate(con: sqlite3.Connection, path: Path) -> None:
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise NoaError(f"{path}: registry schema version {version} was written by a newer noa "
                       f"(this one reads up to {SCHEMA_VERSION}); upgrade noa-platform")
    con.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version = con.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute(f"PRAGMA user_version = {step + 1}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
