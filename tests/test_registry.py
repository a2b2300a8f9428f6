"""The registry of trained artifacts: round trips, hash checks, concurrent writers, SIGKILL at
every step of a registration, the `noa registry` commands and what `noa train` records."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noa_platform.cli import main
from noa_platform.errors import NoaError
from noa_platform.plugins import get_registry
from noa_platform.registry import KINDS, open_registry
from noa_platform.registry.schema import SCHEMA_VERSION
from noa_platform.training.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_objects(reg_dir: Path) -> set[str]:
    return {p.name for p in (reg_dir / "objects").glob("??/*")}


def referenced_objects(reg_dir: Path) -> set[str]:
    with sqlite3.connect(reg_dir / "index.sqlite") as con:
        return {r[0] for r in con.execute("SELECT sha256 FROM files")}


def integrity(reg_dir: Path) -> str:
    with sqlite3.connect(reg_dir / "index.sqlite") as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


# ---------------------------------------------------------------------- the Python API


def test_add_get_list_latest_path_round_trip(tmp_path):
    src = write_tree(tmp_path / "tok", {"weights.bin": b"\x00\x01" * 500, "sub/report.json": b"{}",
                                        "config.json": b'{"a": 1}'})
    data = tmp_path / "dataset.h5"
    data.write_bytes(os.urandom(4096))
    reg = open_registry(tmp_path / "reg")
    assert reg.list() == [] and reg.latest("dataset", "toy") is None
    assert (tmp_path / "reg" / "index.sqlite").exists()

    ds = reg.add("dataset", domain="toy", source=data, config={"seed": 3, "grid": (16, 16)},
                 metrics={"samples": 24, "bad": float("inf")}, dataset_fingerprint="fp0")
    tok = reg.add("tokenizer", domain="toy", source=src, config={"steps": 60},
                  metrics={"val": {"reconstruction_mse": 0.25}}, parents=[ds[:5]],
                  dataset_fingerprint="fp0", versions={"extra": "1"})
    assert ds.startswith("ds-") and tok.startswith("tok-")

    e = reg.get(tok)
    assert (e.kind, e.domain, e.parents, e.dataset_fingerprint) == ("tokenizer", "toy", (ds,),
                                                                    "fp0")
    assert e.config == {"steps": 60} and e.metrics == {"val": {"reconstruction_mse": 0.25}}
    assert e.versions["extra"] == "1" and "platform" in e.versions
    assert e.name == "tok" and e.is_dir and e.size == 1000 + 2 + 8
    assert e.files["sub/report.json"] == {"sha256": sha(b"{}"), "size": 2}
    d = reg.get(ds)
    # JSON has no infinity and no tuples: stored as null and a list.
    assert d.metrics == {"samples": 24, "bad": None} and d.config["grid"] == [16, 16]
    assert reg.get(tok[:6]).id == tok  # a unique prefix is enough

    # path(): the original names and bytes, the file itself for a one-file artifact.
    assert read_tree(reg.path(tok)) == read_tree(src) and reg.path(tok).name == "tok"
    assert reg.path(ds).name == "dataset.h5" and reg.path(ds).read_bytes() == data.read_bytes()

    # Newest first, filtered by kind and domain; latest().
    other = tmp_path / "other.h5"
    other.write_bytes(b"other")
    ds2 = reg.add("dataset", domain="toy", source=other, config={}, metrics={})
    ds3 = reg.add("dataset", domain="waves", source=other, config={}, metrics={})
    assert [x.id for x in reg.list()] == [ds3, ds2, tok, ds]
    assert [x.id for x in reg.list(kind="dataset", domain="toy")] == [ds2, ds]
    assert reg.latest("dataset", "toy").id == ds2 and reg.latest("mno", "toy") is None
    # Same bytes, kind and domain: the existing id, no new row; another domain is another row.
    assert reg.add("dataset", domain="toy", source=other, config={"x": 1}, metrics={}) == ds2
    assert ds3 != ds2 and len(reg.list()) == 4
    # One object per distinct content (other.h5 is stored once for both domains).
    assert stored_objects(tmp_path / "reg") == referenced_objects(tmp_path / "reg")
    assert len(stored_objects(tmp_path / "reg")) == 5

    # A mapping source: files from anywhere, under the given names.
    mno = reg.add("mno", domain="toy", name="mno", config={}, metrics={"steps": 9},
                  source={"best.pt": data, "config.json": src / "config.json"}, parents=[ds, tok])
    assert read_tree(reg.path(mno)) == {"best.pt": data.read_bytes(),
                                        "config.json": b'{"a": 1}'}
    assert reg.children(ds) == sorted([tok, mno])
    reg.close()
    # Reopened: everything still there.
    with open_registry(tmp_path / "reg") as again:
        assert [x.id for x in again.list()] == [mno, ds3, ds2, tok, ds]


def test_user_errors_are_noa_errors_naming_what(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    reg = open_registry(tmp_path / "reg")
    with pytest.raises(NoaError, match=r"registry .*reg: no artifact 'nope'"):
        reg.get("nope")
    with pytest.raises(NoaError, match=r"no artifact 'ds-missing'"):
        reg.add("tokenizer", domain="toy", source=f, config={}, metrics={},
                parents=["ds-missing"])
    with pytest.raises(NoaError, match=r"unknown kind 'model'; known: dataset, tokenizer"):
        reg.add("model", domain="toy", source=f, config={}, metrics={})
    with pytest.raises(NoaError, match=r"unknown kind 'model'"):
        reg.list(kind="model")
    with pytest.raises(NoaError, match=r"registry source .*nothing: no such file or folder"):
        reg.add("dataset", domain="toy", source=tmp_path / "nothing", config={}, metrics={})
    with pytest.raises(NoaError, match=r"config\.when: object cannot be stored as JSON"):
        reg.add("dataset", domain="toy", source=f, config={"when": object()}, metrics={})
    a = reg.add("dataset", domain="toy", source=f, config={}, metrics={})
    f.write_bytes(b"y")
    b = reg.add("dataset", domain="toy", source=f, config={}, metrics={})
    # Two ids share the prefix "ds-" (and, here, maybe more): ambiguous, listing the matches.
    with pytest.raises(NoaError, match=r"artifact id 'ds-' is ambiguous \(2 match: ds-"):
        reg.get("ds-")
    child = reg.add("tokenizer", domain="toy", source=f, config={}, metrics={}, parents=[a])
    with pytest.raises(NoaError, match=f"{a} is a parent of {child}; remove those first"):
        reg.remove(a)
    assert reg.remove(child) == child and reg.remove(a) == a
    assert [e.id for e in reg.list()] == [b]
    with pytest.raises(NoaError, match=r"no registry there"):
        open_registry(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()


def test_a_newer_schema_is_refused_and_a_fresh_index_is_at_the_current_version(tmp_path):
    open_registry(tmp_path / "reg").close()
    with sqlite3.connect(tmp_path / "reg" / "index.sqlite") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(NoaError, match=f"schema version {SCHEMA_VERSION + 1} was written by a "
                                       "newer noa"):
        open_registry(tmp_path / "reg")


def test_an_older_index_is_migrated_in_order_keeping_its_rows(tmp_path, monkeypatch):
    from noa_platform.registry import schema

    f = tmp_path / "f.bin"
    f.write_bytes(b"kept")
    with open_registry(tmp_path / "reg") as reg:
        rid = reg.add("dataset", domain="toy", source=f, config={}, metrics={})
    # A future version 2 adds a column: opening the version-1 index applies only that step.
    monkeypatch.setattr(schema, "MIGRATIONS",
                        (*schema.MIGRATIONS, "ALTER TABLE artifacts ADD COLUMN note TEXT"))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with open_registry(tmp_path / "reg") as reg:
        assert reg.path(rid).read_bytes() == b"kept"
        assert reg.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert reg.con.execute("SELECT note FROM artifacts").fetchall() == [(None,)]


class _LockedAtFirst:
    """A connection whose first ``n`` journal-mode switches answer "database is locked" at once,
    as SQLite does (without waiting) to one of two processes switching a fresh file to WAL."""

    def __init__(self, con: sqlite3.Connection, counter: list[int]):
        self.con, self.counter = con, counter

    def execute(self, sql: str, *args):
        if sql.startswith("PRAGMA journal_mode") and self.counter[0] > 0:
            self.counter[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.con.execute(sql, *args)

    def close(self) -> None:
        self.con.close()


def test_opening_retries_an_immediate_lock_and_gives_up_on_other_errors(tmp_path, monkeypatch):
    from noa_platform.registry import schema

    real_connect, left = sqlite3.connect, [3]
    monkeypatch.setattr(schema.sqlite3, "connect",
                        lambda *a, **k: _LockedAtFirst(real_connect(*a, **k), left))
    con = schema.connect(tmp_path / "index.sqlite")
    assert left == [0]  # three refusals, then it opened and migrated
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()
    # A lock that outlasts the deadline is one error line, not an endless wait.
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_S", 0.05)
    left[0] = 10**9
    with pytest.raises(NoaError, match=r"index2.sqlite: not a usable registry index "
                                       r"\(database is locked\)"):
        schema.connect(tmp_path / "index2.sqlite")
    # Anything else is not retried.
    monkeypatch.setattr(schema.sqlite3, "connect", real_connect)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    t0 = time.monotonic()
    with pytest.raises(NoaError, match="junk.sqlite: not a usable registry index"):
        schema.connect(tmp_path / "junk.sqlite")
    assert time.monotonic() - t0 < 1.0


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8
                ).filter(lambda s: s not in {".", ".."})
trees = st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join),
                        st.binary(max_size=300), min_size=1, max_size=6).filter(
    # A name cannot be both a file and a folder.
    lambda t: not any(other.startswith(k + "/") for k in t for other in t))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, config=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       metrics=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       kind=st.sampled_from(KINDS))
def test_any_file_tree_and_metadata_round_trip(tree, config, metrics, kind):
    with tempfile.TemporaryDirectory() as tmp:
        src = write_tree(Path(tmp) / "art", tree)
        with open_registry(Path(tmp) / "reg") as reg:
            rid = reg.add(kind, domain="a->b", source=src, config=config, metrics=metrics)
            e = reg.get(rid)
            assert (e.config, e.metrics, e.kind, e.domain) == (config, metrics, kind, "a->b")
            assert read_tree(reg.path(rid)) == tree
            assert {k: f["sha256"] for k, f in e.files.items()} == {k: sha(v)
                                                                     for k, v in tree.items()}
            assert reg.add(kind, domain="a->b", source=src, config={}, metrics={}) == rid


# ---------------------------------------------------------------------- hash checks


def test_changed_missing_or_extra_file_is_an_error_naming_id_and_file(tmp_path):
    src = write_tree(tmp_path / "tok", {"weights.bin": b"w" * 100, "report.json": b"{}"})
    reg = open_registry(tmp_path / "reg")
    rid = reg.add("tokenizer", domain="toy", source=src, config={}, metrics={})
    one = reg.add("dataset", domain="toy", source=src / "report.json", config={}, metrics={})
    where = reg.path(rid)

    target = where / "weights.bin"
    os.chmod(target, 0o644)  # stored read-only; a user can still change it
    with open(target, "r+b") as fh:  # same size, one byte different
        fh.write(b"x")
    with pytest.raises(NoaError, match=rf"artifact {rid}, file 'weights.bin' .* has changed: "
                                       r"sha256 [0-9a-f]{16}\.\.\., registered"):
        reg.path(rid)
    target.write_bytes(b"short")
    with pytest.raises(NoaError, match=rf"artifact {rid}, file 'weights.bin' .* has changed: "
                                       r"5 bytes, registered 100"):
        reg.path(rid)
    target.unlink()
    with pytest.raises(NoaError, match=rf"artifact {rid}, file 'weights.bin' .* is missing"):
        reg.path(rid)
    (where / "report.json").unlink()
    (where / "report.json").write_bytes(b"{}")  # put back with its bytes: fine again
    (where / "weights.bin").write_bytes(b"w" * 100)
    assert reg.path(rid) == where
    (where / "sneaked.py").write_text("print('hi')")
    with pytest.raises(NoaError, match=rf"artifact {rid} holds a file that was never "
                                       r"registered: 'sneaked.py'"):
        reg.path(rid)
    # A one-file artifact: the file itself.
    reg.path(one).unlink()
    with pytest.raises(NoaError, match=rf"artifact {one}, file 'report.json' .* is missing"):
        reg.path(one)


def test_registered_files_do_not_follow_later_changes_of_the_source(tmp_path):
    """The registry copies: a dataset appended to in place afterwards (`noa features`) does not
    change what was registered."""
    data = tmp_path / "dataset.h5"
    data.write_bytes(b"original")
    reg = open_registry(tmp_path / "reg")
    rid = reg.add("dataset", domain="toy", source=data, config={}, metrics={})
    with open(data, "ab") as fh:
        fh.write(b" + features")
    assert reg.path(rid).read_bytes() == b"original"


# ---------------------------------------------------------------------- other processes

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from noa_platform.registry import open_registry
    from noa_platform.registry.registry import default_versions
    reg_dir, work, name, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    default_versions("toy")  # plugin discovery before the start, not during the race
    (work / f"ready-{name}").touch()
    while not (work / "go").exists():  # every worker begins at once, on a fresh registry
        time.sleep(0.002)
    reg = open_registry(reg_dir)
    shared = work / name / "shared.bin"  # same name and bytes: one artifact
    shared.parent.mkdir()
    shared.write_bytes(b"the same bytes in every worker" * 1000)
    print(reg.add("dataset", domain="toy", source=shared, config={}, metrics={}))
    for i in range(n):
        f = work / f"{name}-{i}.bin"
        f.write_bytes(f"{name} {i}".encode() * 100)
        print(reg.add("tokenizer", domain="toy", source=f, config={"worker": name, "i": i},
                      metrics={"i": i}))
""")


def test_concurrent_registration_from_several_processes(tmp_path):
    reg_dir, work = tmp_path / "reg", tmp_path / "work"
    work.mkdir()
    n_workers, n_rows = 4, 20
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(reg_dir), str(work), f"w{k}",
                               str(n_rows)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(n_workers)]
    deadline = time.time() + 60
    while len(list(work.glob("ready-*"))) < n_workers and time.time() < deadline:
        time.sleep(0.01)
    (work / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    ids = [line.split() for line, _ in outs]
    # The shared content landed once, under one id every worker got back.
    assert len({i[0] for i in ids}) == 1
    with open_registry(reg_dir) as reg:
        rows = reg.list(kind="tokenizer")
        assert len(rows) == n_workers * n_rows
        assert {e.id for e in rows} == {x for i in ids for x in i[1:]}
        assert {(e.config["worker"], e.config["i"]) for e in rows} == {
            (f"w{k}", i) for k in range(n_workers) for i in range(n_rows)}
        for e in rows:
            assert reg.path(e.id).read_bytes() == (work / f"{e.config['worker']}-"
                                                   f"{e.config['i']}.bin").read_bytes()
        assert len(reg.list(kind="dataset")) == 1
    assert integrity(reg_dir) == "ok"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from noa_platform.registry import open_registry, registry as registry_module
    from noa_platform.registry.objects import ObjectStore
    reg_dir, work, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)

    def after(fn, nth):
        calls = {"n": 0}
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == nth:
                die()
            return out
        return wrapped

    class DyingConnection:  # dies when the row is about to be committed
        def __init__(self, con):
            self.con = con
        def execute(self, sql, *args):
            if sql == "COMMIT" and point == "before-commit":
                die()
            return self.con.execute(sql, *args)
        def __getattr__(self, name):
            return getattr(self.con, name)

    if point == "mid-copy":  # a partial copy under tmp/, not yet renamed
        os.fsync = die
    elif point == "after-first-object":
        ObjectStore.put = after(ObjectStore.put, 1)
    elif point == "after-view":
        ObjectStore.build_view = after(ObjectStore.build_view, 1)
    reg = open_registry(reg_dir)
    reg.con = DyingConnection(reg.con)
    print("ready", flush=True)
    i = 0
    while True:  # large artifacts, each new, until killed
        folder = work / f"{point}-{i}"
        folder.mkdir(parents=True)
        for j in range(3):
            (folder / f"part{j}.bin").write_bytes(os.urandom(2 << 20))
        print(reg.add("mno", domain="toy", source=folder, config={}, metrics={}), flush=True)
        i += 1
""")


def killed_registration(reg_dir: Path, work: Path, point: str,
                        delay: float | None = None) -> list[str]:
    """Run KILLER until it dies (by its own hand at ``point``, or SIGKILLed ``delay`` seconds
    after it is ready); check that every row left is whole; return the ids it printed."""
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(reg_dir), str(work), point],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    with open_registry(reg_dir) as reg:
        rows = reg.list()
        for e in rows:  # every row that exists is whole
            reg.path(e.id)
        assert {e.id for e in rows} >= set(out.split())
    assert integrity(reg_dir) == "ok"
    return out.split()


def assert_gc_leaves_only_what_rows_use(reg_dir: Path) -> dict:
    with open_registry(reg_dir) as reg:
        report = reg.gc()
        ids = {e.id for e in reg.list()}
        assert not set(report["artifact_folders"]) & ids
        assert stored_objects(reg_dir) == referenced_objects(reg_dir)
        assert list((reg_dir / "tmp").iterdir()) == []
        assert set(os.listdir(reg_dir / "artifacts")) == ids
        for rid in ids:
            reg.path(rid)
        assert reg.gc()["objects"] == 0
    assert integrity(reg_dir) == "ok"
    return report


def test_sigkill_at_each_step_of_a_registration_leaves_no_half_row(tmp_path):
    reg_dir, work = tmp_path / "reg", tmp_path / "work"
    work.mkdir()
    (work / "base.bin").write_bytes(b"registered before the kills")
    with open_registry(reg_dir) as reg:
        kept = reg.add("dataset", domain="toy", source=work / "base.bin", config={}, metrics={})
    for point in ("mid-copy", "after-first-object", "after-view", "before-commit"):
        assert killed_registration(reg_dir, work, point) == []
        with open_registry(reg_dir) as reg:
            assert [e.id for e in reg.list()] == [kept], point  # the add did not land
    assert list((reg_dir / "tmp").iterdir())  # mid-copy left a partial copy
    assert stored_objects(reg_dir) > referenced_objects(reg_dir)  # objects without a row
    assert set(os.listdir(reg_dir / "artifacts")) > {kept}  # folders without a row
    with open_registry(reg_dir) as reg:
        # A killed registration can be done again: its folder left without a row is replaced.
        again = reg.add("mno", domain="toy", source=work / "before-commit-0", config={},
                        metrics={})
        assert read_tree(reg.path(again)) == read_tree(work / "before-commit-0")
    report = assert_gc_leaves_only_what_rows_use(reg_dir)
    assert report["objects"] > 0 and report["temporary"] and report["artifact_folders"]
    with open_registry(reg_dir) as reg:
        assert {e.id for e in reg.list()} == {kept, again}


def test_sigkill_at_random_moments_of_registrations_in_a_loop(tmp_path):
    reg_dir, work = tmp_path / "reg", tmp_path / "work"
    rng = random.Random(0)
    landed = []
    for k in range(4):
        landed += killed_registration(reg_dir, work, f"loop{k}", delay=rng.uniform(0.0, 1.0))
    assert_gc_leaves_only_what_rows_use(reg_dir)
    with open_registry(reg_dir) as reg:
        assert {e.id for e in reg.list()} >= set(landed)


PAUSER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from noa_platform.registry import open_registry
    from noa_platform.registry.objects import ObjectStore
    reg_dir, work = sys.argv[1], Path(sys.argv[2])
    build_view = ObjectStore.build_view
    def slow_build_view(*args):  # objects stored, no row yet: what gc must not touch
        (work / "paused").touch()
        time.sleep(1.5)
        return build_view(*args)
    ObjectStore.build_view = slow_build_view
    reg = open_registry(reg_dir)
    (work / "art").mkdir()
    (work / "art" / "weights.bin").write_bytes(b"w" * 100_000)
    print(reg.add("mno", domain="toy", source=work / "art", config={}, metrics={}))
""")


def test_gc_waits_for_a_registration_in_progress(tmp_path):
    reg_dir, work = tmp_path / "reg", tmp_path / "work"
    work.mkdir()
    open_registry(reg_dir).close()
    proc = subprocess.Popen([sys.executable, "-c", PAUSER, str(reg_dir), str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (work / "paused").exists() and time.time() < deadline:
        time.sleep(0.01)
    assert len(stored_objects(reg_dir)) == 1 and not referenced_objects(reg_dir)
    with open_registry(reg_dir) as reg:
        report = reg.gc()  # waits for the registration, then finds nothing to remove
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert report["objects"] == 0
        assert reg.path(out.strip()).joinpath("weights.bin").read_bytes() == b"w" * 100_000


# ---------------------------------------------------------------------- the command line


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_registry_commands(tmp_path, monkeypatch):
    reg_dir = tmp_path / "reg"
    src = write_tree(tmp_path / "tok", {"w.bin": b"w" * 2000, "report.json": b"{}"})
    data = tmp_path / "dataset.h5"
    data.write_bytes(b"d" * 5000)
    with open_registry(reg_dir) as reg:
        ds = reg.add("dataset", domain="toy", source=data, config={"seed": 1},
                     metrics={"samples": 24}, dataset_fingerprint="abc123")
        tok = reg.add("tokenizer", domain="toy", source=src, config={},
                      metrics={"val": {"reconstruction_mse": 0.5}}, parents=[ds])
        ab = reg.add("alignment", domain="toy->waves", source=src / "report.json", config={},
                     metrics={"nmi": 0.3}, parents=[tok])

    res = cli("registry", "list", "--registry", str(reg_dir))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split()[:3] == ["ID", "KIND", "DOMAIN"]
    assert [line.split()[0] for line in lines[1:]] == [ab, tok, ds]
    assert lines[2].split()[1:3] == ["tokenizer", "toy"] and lines[2].endswith(ds)
    assert "5.0 kB" in lines[3]
    res = cli("registry", "list", "--registry", str(reg_dir), "--kind", "alignment", "--json")
    rows = json.loads(res.output)
    assert [r["id"] for r in rows] == [ab] and rows[0]["domain"] == "toy->waves"
    assert rows[0]["metrics"] == {"nmi": 0.3} and rows[0]["parents"] == [tok]
    monkeypatch.setenv("NOA_REGISTRY", str(reg_dir))  # the environment names the registry
    res = cli("registry", "list", "--domain", "toy", "--json")
    assert [r["id"] for r in json.loads(res.output)] == [tok, ds]
    assert cli("registry", "list", "--domain", "fluids").output == (
        "nothing registered matching the filters\n")

    res = cli("registry", "show", tok[:7])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"{tok}  tokenizer of toy, registered ")
    assert f"parents:   {ds}" in res.output and f"children:  {ab}" in res.output
    assert "reconstruction_mse" in res.output and "w.bin" in res.output
    shown = json.loads(cli("registry", "show", ds, "--json").output)
    assert shown["dataset_fingerprint"] == "abc123" and shown["children"] == [tok]
    assert Path(shown["path"]).read_bytes() == data.read_bytes() and shown["size"] == 5000

    for args in (("show", "nope"), ("rm", "nope")):
        res = cli("registry", *args)
        assert res.exit_code == 1
        assert res.output.splitlines() == [f"error: registry {reg_dir}: no artifact 'nope'"]
    res = cli("registry", "rm", ds)
    assert res.exit_code == 1 and f"{ds} is a parent of {tok}" in res.output
    res = cli("registry", "rm", ab)
    assert res.exit_code == 0 and res.output.startswith(f"removed {ab}")
    assert cli("registry", "gc").output == (
        "removed 0 unreferenced object(s) (0 B), 0 orphan artifact folder(s), "
        "0 temporary item(s)\n")  # report.json is still part of the tokenizer
    cli("registry", "rm", tok)
    res = cli("registry", "gc")
    assert res.output.startswith("removed 2 unreferenced object(s) (2.0 kB), 0 orphan")

    res = cli("registry", "list", "--registry", str(tmp_path / "none"))
    assert res.exit_code == 1 and len(res.output.splitlines()) == 1
    assert "no registry there" in res.output


def test_train_registers_dataset_and_tokenizer_once(fixture_plugins, tmp_path, monkeypatch):
    """`noa train --stage tokenizer` records the dataset and the tokenizer (its parent is the
    dataset); the same command again records nothing new; --no-register records nothing."""
    monkeypatch.setenv("NOA_PLUGINS", "a-good")
    config = tmp_path / "tiny.toml"
    config.write_text("[generation]\nn_samples = 24\nn_frames = 6\nresolution = 16\n"
                      "batch_size = 8\n[tokenizer]\nsteps = 10\n")
    reg_dir = tmp_path / "reg"
    # Drawing the tokenizer's report picture takes most of a tiny run; a stand-in keeps the
    # file (and so what is registered) without the seconds.
    import noa_platform.tokenizer

    monkeypatch.setattr(noa_platform.tokenizer, "plot_report",
                        lambda rep, path: Path(path).write_bytes(b"picture"))
    args = ["train", "good-toy", "--config", str(config), "--run-dir", str(tmp_path / "run"),
            "--stage", "tokenizer", "--device", "cpu", "--quiet", "--registry", str(reg_dir)]
    get_registry.cache_clear()
    try:
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 0, again.output
        # Whether to register is decided after the run; the run itself is not what is tested.
        monkeypatch.setattr(Pipeline, "run", lambda self, stage, resume: Path("report.json"))
        elsewhere = tmp_path / "unused"
        assert CliRunner().invoke(main, [*args[:-1], str(elsewhere), "--no-register"]
                                  ).exit_code == 0
        monkeypatch.setenv("RANK", "1")  # under torchrun only rank 0 registers
        assert CliRunner().invoke(main, [*args[:-1], str(elsewhere)]).exit_code == 0
        toy_version = get_registry().domain("good-toy").version
    finally:
        get_registry.cache_clear()
    assert not elsewhere.exists()
    with open_registry(reg_dir) as reg:
        rows = reg.list()
        assert sorted(e.kind for e in rows) == ["dataset", "tokenizer"]
        ds, tok = reg.latest("dataset", "good-toy"), reg.latest("tokenizer", "good-toy")
        assert f"registered in {reg_dir}: dataset {ds.id}, tokenizer {tok.id}" in first.output
        assert tok.parents == (ds.id,)
        assert tok.dataset_fingerprint == ds.dataset_fingerprint and ds.dataset_fingerprint
        assert ds.metrics["samples"] == 24 and ds.config["n_samples"] == 24
        assert tok.config["tokenizer"]["steps"] == 10
        assert 0 <= tok.metrics["val"]["min_utilization"] <= 1
        run_tok = tmp_path / "run" / "tokenizer"
        assert read_tree(reg.path(tok.id)) == read_tree(run_tok)
        assert reg.path(ds.id).read_bytes() == (tmp_path / "run" / "dataset.h5").read_bytes()
        assert tok.versions["domains"] == {"good-toy": toy_version}


def test_register_run_records_each_stage_with_parents_and_metrics(tmp_path):
    """What register_run reads from a run folder, checked on a folder written by hand (a real
    dataset; the other files as the pipeline names them)."""
    from noa_platform.config import GenerationConfig, resolve_config
    from noa_platform.data.generate import generate
    from noa_platform.data.store import DatasetFile
    from noa_platform.registry.training_run import register_run
    from noa_platform.testing.toy_domain import ToyDomain

    data = generate(ToyDomain(), GenerationConfig(n_samples=13, n_frames=3, resolution=16,
                                                  batch_size=4, features=False),
                    tmp_path / "toy.h5", progress=False, log=lambda m: None)
    run = tmp_path / "run"
    split = {"reconstruction_mse": 0.2, "min_utilization": 0.5, "codebooks": [{"u": 1}]}
    write_tree(run, {
        "tokenizer/weights.safetensors": b"weights", "tokenizer/report.png": b"png",
        "tokenizer/report.json": json.dumps({"dataset": split, "val": split,
                                             "fit": {"steps": 10, "curve": [1, 2]}}).encode(),
        "tokenizer/report.json.tmp-999": b"left by a killed write",
        "checkpoints/best.pt": b"best", "checkpoints/last.pt": b"last",
        "config.json": b'{"domain": "toy"}',
        "mno.json": json.dumps({"parameters": 99, "best_val_vrmse": 0.3}).encode(),
        "loss_curves.png": b"png", "train.log": b"log",
        "report.json": json.dumps({
            "summary": {"vrmse_step1": 0.4}, "verdicts": {"overall": {"verdict": "fair"}},
            "test_samples": 2, "horizon": 3,
            "pictures": {"loss_curves": str(run / "loss_curves.png"), "none": None}}).encode(),
    })
    cfg = resolve_config(overrides={"training": {"lambda_commit": 0.0, "lambda_latent": 0.0}})
    with open_registry(tmp_path / "reg") as reg:
        ids = register_run(reg, "toy", run, data, cfg, "tokenizer")
        assert list(ids) == ["dataset", "tokenizer"]
        assert register_run(reg, "toy", run, data, cfg, "mno") == {
            **ids, "mno": reg.latest("mno", "toy").id}
        ids = register_run(reg, "toy", run, data, cfg, "all")
        assert list(ids) == ["dataset", "tokenizer", "mno", "evaluation"]
        assert len(reg.list()) == 4  # each stage's rerun recorded nothing twice
        ds, tok, mno, ev = (reg.get(ids[k]) for k in ids)
        with DatasetFile(data) as f:
            assert ds.dataset_fingerprint == f.fingerprint and ds.metrics["samples"] == 13
        assert {e.dataset_fingerprint for e in (tok, mno, ev)} == {ds.dataset_fingerprint}
        assert ds.versions["dataset"]["domain_version"] == ToyDomain().version
        assert set(tok.files) == {"weights.safetensors", "report.png", "report.json"}
        assert tok.metrics["val"] == {"reconstruction_mse": 0.2, "min_utilization": 0.5}
        assert tok.metrics["fit"] == {"steps": 10} and tok.parents == (ds.id,)
        assert tok.config["tokenizer"]["name"] == "vqvae" and "families" in tok.config["features"]
        # Without alignment losses the MNO did not read the tokenizer.
        assert mno.parents == (ds.id,) and mno.metrics == {"parameters": 99,
                                                           "best_val_vrmse": 0.3}
        assert read_tree(reg.path(mno.id)) == {"best.pt": b"best", "config.json":
                                               b'{"domain": "toy"}', "mno.json":
                                               (run / "mno.json").read_bytes()}
        assert mno.config["training"]["lambda_commit"] == 0.0
        assert ev.parents == (ds.id, tok.id, mno.id)
        assert set(ev.files) == {"report.json", "loss_curves.png"}
        # A report written before the split was recorded read the test split.
        assert ev.metrics == {"vrmse_step1": 0.4, "verdict": "fair", "split": "test",
                              "samples": 2, "horizon": 3}
        # With L_commit on, the tokenizer shaped the MNO: it is a parent.
        cfg = resolve_config(overrides={"training": {"lambda_commit": 0.1}})
        (run / "checkpoints" / "best.pt").write_bytes(b"best, trained with L_commit")
        assert reg.get(register_run(reg, "toy", run, data, cfg, "mno")["mno"]).parents == (
            ds.id, tok.id)
