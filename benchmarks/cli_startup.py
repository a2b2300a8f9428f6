"""Start-up time of the ``noa`` command line, as JSON.

Each command runs ``--runs`` times in a fresh interpreter (``python -m noa_platform ...``, what
the ``noa`` script does); the median wall time is reported with the minimum and maximum, and
whether the command imported torch (checked once per command with ``-X importtime``).

    OMP_NUM_THREADS=1 python benchmarks/cli_startup.py --runs 7
    NOA_PLUGINS= python benchmarks/cli_startup.py   # the core alone, no domain plugin

No command here should import torch (about a second on its own); tests/test_cli_startup.py
checks that for the listing commands with every installed plugin, without timing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (("--help",), ("plugins", "list"), ("domains", "list"))


def run_once(args: tuple[str, ...]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "noa_platform", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def imports_torch(args: tuple[str, ...]) -> bool:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "noa_platform", *args],
                         check=True, capture_output=True, text=True)
    # Lines read "import time: self | cumulative | <indent>module".
    return any(line.split("|")[-1].strip() == "torch" for line in out.stderr.splitlines()
               if line.startswith("import time:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median reported)")
    args = parser.parse_args()
    results = {}
    for command in COMMANDS:
        run_once(command)  # warm the file-system cache; not counted
        times = [run_once(command) for _ in range(args.runs)]
        results["noa " + " ".join(command)] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
            "imports_torch": imports_torch(command),
        }
    print(json.dumps({"runs": args.runs, "python": sys.version.split()[0],
                      "NOA_PLUGINS": os.environ.get("NOA_PLUGINS"), "commands": results},
                     indent=2))


if __name__ == "__main__":
    main()
