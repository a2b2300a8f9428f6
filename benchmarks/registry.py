"""The registry's costs, as JSON: registering and hash-checking a dataset-sized file, and
several processes registering into one fresh registry at the same moment.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/registry.py --mb 50 --runs 5 --workers 4

* ``register_first_s``: the first ``add`` of the file (hash, copy into the object store,
  ``fsync``); ``register_again_s``: adding it again (hashed, found, existing id returned);
  ``hash_check_s``: ``path()``, which re-hashes every file before handing it out (median,
  min, max over ``--runs``).
* ``concurrent``: ``--workers`` processes, released together once each has started, each
  registering ``--rows`` small artifacts plus one that all share; seconds from the release to
  the last commit, the rows found, ``PRAGMA integrity_check``, and how often consecutive
  commits came from different processes (0 would mean they ran one after another).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from noa_platform.registry import open_registry
    from noa_platform.registry.registry import default_versions
    reg_dir, work, name, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    default_versions("toy")  # plugin discovery before the release
    (work / f"ready-{name}").touch()
    while not (work / "go").exists():
        time.sleep(0.002)
    reg = open_registry(reg_dir)
    shared = work / name / "shared.bin"
    shared.parent.mkdir()
    shared.write_bytes(b"the same bytes in every worker" * 1000)
    reg.add("dataset", domain="toy", source=shared, config={}, metrics={})
    for i in range(n):
        f = work / f"{name}-{i}.bin"
        f.write_bytes(f"{name} {i}".encode() * 100)
        reg.add("tokenizer", domain="toy", source=f, config={"worker": name, "i": i}, metrics={})
""")


def timings(fn, runs: int) -> dict[str, float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return {"median": statistics.median(out), "min": min(out), "max": max(out), "runs": runs}


def file_costs(tmp: Path, mb: int, runs: int) -> dict:
    from noa_platform.registry import open_registry

    data = tmp / "dataset.h5"
    data.write_bytes(os.urandom(mb << 20))
    reg = open_registry(tmp / "reg")
    reg.add("dataset", domain="warm-up", source=reg.root / "index.sqlite", config={},
            metrics={})  # plugin discovery outside the timings
    first = timings(lambda: reg.add("dataset", domain="toy", source=data, config={},
                                    metrics={}), 1)
    again = timings(lambda: reg.add("dataset", domain="toy", source=data, config={},
                                    metrics={}), runs)
    rid = reg.latest("dataset", "toy").id
    check = timings(lambda: reg.path(rid), runs)
    return {"file_mb": data.stat().st_size / 1e6, "register_first_s": first,
            "register_again_s": again, "hash_check_s": check}


def concurrent(tmp: Path, workers: int, rows: int) -> dict:
    work, reg_dir = tmp / "work", tmp / "conc"
    work.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(reg_dir), str(work), f"w{k}",
                               str(rows)]) for k in range(workers)]
    while len(list(work.glob("ready-*"))) < workers:
        time.sleep(0.01)
    start = time.perf_counter()
    (work / "go").touch()
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    con = sqlite3.connect(reg_dir / "index.sqlite")
    order = [json.loads(c)["worker"] for (c,) in con.execute(
        "SELECT config FROM artifacts WHERE kind = 'tokenizer' ORDER BY created")]
    return {"workers": workers, "rows_each": rows, "exit_codes": codes, "seconds": elapsed,
            "rows_found": con.execute("SELECT count(*) FROM artifacts").fetchone()[0],
            "rows_expected": workers * rows + 1,
            "integrity_check": con.execute("PRAGMA integrity_check").fetchone()[0],
            "worker_switches": sum(a != b for a, b in itertools.pairwise(order)),
            "max_switches": len(order) - 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"files": file_costs(Path(tmp), args.mb, args.runs),
               "concurrent": concurrent(Path(tmp), args.workers, args.rows)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
