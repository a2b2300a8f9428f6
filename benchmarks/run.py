"""Every benchmark of the platform in one run, one JSON.

    python benchmarks/run.py [--out FILE] [--device cpu|cuda] [--quick | --smoke] [--threads N]

Sections (each measured side by side in this run, on this machine):

* ``solvers`` — every domain's solver throughput and its fraction of the FFT-only bound, and the
  exponax comparison (trajectories agree in float64 first, then timing), from
  :mod:`solvers`; exponax runs on jax's CPU build, so on ``--device cuda`` that part says
  ``skipped`` and why;
* ``mno_vs_cno`` — per domain, seconds per frame of the MNO against the CNO at 64² and 128²,
  the CNO's internal steps per frame counted (:mod:`inference`);
* ``growth`` — CNO and MNO seconds per frame against grid size (32² to 256²) and batch
  (:mod:`inference`);
* ``training_memory`` — training peak memory against timesteps and the BPTT window, a child
  process per point (:mod:`memory`);
* ``mno_vs_fno`` — the neuraloperator FNO baseline takes minutes per domain (it trains both
  models over seeds): recorded as skipped with the command that runs it (``benchmarks/
  baselines.py``), or embedded from its JSON with ``--baselines FILE``;
* ``goals`` — the issue's targets, each with the measured number and whether it is met.

Without the ``bench`` extra (exponax, jax, neuraloperator) the peer sections say ``skipped``
with the reason, and the run still exits 0. ``--quick`` is the short configuration (one size
per solver, one dtype, fewer repeats); ``--smoke`` is the tiny one the tests run. Timings on a
shared machine move with its load: the load average is recorded at the start and the end, and
every comparison is interleaved (a, b, a, b, ...) so that both sides see the same load.
:mod:`report` turns the JSON into the tables of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))           # the sibling benchmark modules

BASELINES_COMMAND = ("OMP_NUM_THREADS=1 python benchmarks/baselines.py --domain DOMAIN "
                     "--seeds 0,1,2 --out baselines-DOMAIN.json")


@dataclass
class Plan:
    """What one configuration measures."""

    solver_sizes: list[int]
    solver_dtypes: list[str]
    repeats: int
    peer_sizes: list[int]
    inference_sizes: list[int]
    inference_batch: int
    inference_frames: int
    inference_repeats: int
    growth_sizes: list[int]
    growth_batches: list[int]
    growth_base_batch: int
    growth_base_size: int
    growth_repeats: int
    memory_resolution: int
    memory_points: list[tuple[int, int]] = field(default_factory=list)   # (timesteps, window)
    memory_batch: int = 4
    memory_batches: int = 2


PLANS = {
    "full": Plan([32, 64, 128], ["float32", "float64"], 5, [64], [64, 128], 4, 2, 3,
                 [32, 64, 128, 256], [1, 4, 16], 4, 64, 3,
                 32, [(32, 8), (128, 8), (32, 4), (32, 16)], 4, 3),
    "quick": Plan([64], ["float32"], 3, [64], [64, 128], 4, 1, 2,
                  [32, 64, 128, 256], [1, 4, 16], 4, 64, 1,
                  32, [(32, 8), (128, 8), (32, 16)], 4, 2),
    "smoke": Plan([16], ["float32"], 1, [16], [16], 2, 1, 1,
                  [16, 32], [1, 2], 2, 16, 1,
                  16, [(8, 4)], 2, 1),
}


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict:
    import torch

    env = {"torch": torch.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
           "threads": torch.get_num_threads(), "device": device, "git_commit": _git_commit(),
           "cpus_allowed": (sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else None),
           "load_average_start": _load()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _section(name: str, fn, *args, **kwargs) -> dict:
    """Run one section; a failure is recorded in its place (the run goes on)."""
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a broken section must not lose the others' numbers
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    if isinstance(result, dict):
        result.setdefault("status", "complete")
        result["section_seconds"] = time.perf_counter() - start
    print(f"[run.py] {name}: {result.get('status')} in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return result


def solver_section(plan: Plan, device: str, domains: list[str] | None) -> dict:
    import solvers

    out = {"batch": solvers.BATCH, "sizes": plan.solver_sizes, "dtypes": plan.solver_dtypes,
           "repeats": plan.repeats,
           "domains": solvers.all_domains_throughput(plan.solver_sizes, plan.solver_dtypes,
                                                     plan.repeats, device, domains)}
    if device.startswith("cuda"):
        out["exponax"] = {"status": "skipped",
                          "reason": "exponax runs on jax's CPU build (the bench extra); the "
                                    "comparison is made in a --device cpu run"}
    else:
        out["exponax"] = solvers.exponax_comparison(plan.peer_sizes, plan.solver_dtypes,
                                                    plan.repeats)
    return out


def _domains(only: list[str] | None) -> dict:
    from noa_platform.plugins import get_registry

    registry = get_registry()
    return {n: registry.domains[n] for n in sorted(registry.domains) if not only or n in only}


def inference_section(plan: Plan, device: str, domains: list[str] | None) -> dict:
    import inference

    return {"domains": {name: _section(f"mno_vs_cno/{name}", inference.mno_vs_cno, name, d,
                                       plan.inference_sizes, plan.inference_batch,
                                       plan.inference_frames, plan.inference_repeats, device)
                        for name, d in _domains(domains).items()}}


def growth_section(plan: Plan, device: str, domains: list[str] | None) -> dict:
    import inference

    return {"domains": {name: _section(f"growth/{name}", inference.growth, name, d,
                                       plan.growth_sizes, plan.growth_batches,
                                       plan.growth_base_batch, plan.growth_base_size,
                                       plan.growth_repeats, device)
                        for name, d in _domains(domains).items()}}


def memory_section(plan: Plan, device: str) -> dict:
    import memory

    return memory.measure(plan.memory_points, plan.memory_resolution, plan.memory_batch,
                          plan.memory_batches, device)


def baselines_section(path: Path | None, domains: list[str] | None) -> dict:
    """The FNO comparison: embedded from ``baselines.py``'s JSON, or skipped with why."""
    import importlib

    if path is not None:
        return {"status": "embedded", "source": str(path),
                "result": json.loads(path.read_text())}
    try:
        importlib.import_module("neuralop")
        missing = None
    except ImportError as exc:
        missing = (f"neuraloperator is not installed ({type(exc).__name__}: {exc}); install "
                   "the bench extra: pip install -e '.[bench]'")
    names = sorted(_domains(domains))
    return {"status": "skipped",
            "reason": missing or ("trains the domain's MNO and the FNO over three seeds each: "
                                  "minutes per domain, longer than this run; run "
                                  "benchmarks/baselines.py and pass its JSON with --baselines"),
            "commands": [BASELINES_COMMAND.replace("DOMAIN", n) for n in names]}


def goals(result: dict) -> dict:
    """The issue's targets against what this run measured (``None``: not measured here)."""
    solvers = result.get("solvers", {})
    eq = solvers.get("exponax", {}).get("equations", {})

    def timing(equation: str) -> dict:
        entry = eq.get(equation, {}).get("sizes", {}).get("64x64", {})
        return entry.get("timing", {}).get("float32", {})

    def speedup(equation: str) -> float | None:
        return timing(equation).get("speedup_vs_exponax")

    gs = (solvers.get("domains", {}).get("reaction-diffusion", {})
          .get("gray-scott/64x64/float32", {}))
    out = {}
    for key, equation, target in (("gray_scott_vs_exponax", "gray-scott", 1.8),
                                  ("fluids_vs_exponax", "navier-stokes-vorticity", 1.0),
                                  ("waves_vs_exponax", "wave-constant-speed", 1.0)):
        value = speedup(equation)
        out[key] = {"target": f">= {target}x (64², batch 16, float32)", "measured": value,
                    "met": None if value is None else value >= target}
    fraction = gs.get("fraction_of_fft_bound")
    out["gray_scott_fraction_of_fft_bound"] = {
        "target": ">= 0.75 (64², batch 16, float32)", "measured": fraction,
        "met": None if fraction is None else fraction >= 0.75,
        "in_the_exponax_comparison": timing("gray-scott").get("noa_fraction_of_fft_bound")}
    # Not a goal: how fast a solver doing nothing but the platform's FFTs would be against
    # exponax (timed in the same interleaving), i.e. the most any speed-up can reach.
    out["fft_only_ceiling_vs_exponax"] = {
        equation: timing(equation).get("fft_only_speedup_vs_exponax")
        for equation in ("gray-scott", "navier-stokes-vorticity", "wave-constant-speed")}
    applies = {}
    for name, entry in result.get("mno_vs_cno", {}).get("domains", {}).items():
        for size, row in entry.get("sizes", {}).items():
            if row.get("goal_applies"):
                applies[f"{name}/{size}"] = {"cno_internal_steps_per_frame":
                                             row["cno_internal_steps_per_frame"],
                                             "mno_speedup_per_frame": row["mno_speedup_per_frame"],
                                             "met": row["goal_met"]}
    out["mno_10x_where_cno_takes_100_steps"] = {
        "target": "MNO >= 10x faster per frame wherever the CNO takes >= 100 internal steps",
        "cases": applies,
        "met": all(c["met"] for c in applies.values()) if applies else None}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the short configuration")
    size.add_argument("--smoke", action="store_true", help="tiny sizes (the tests' run)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1), also for child processes "
                             "and XLA")
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="CPU",
                        help="run on this one CPU only (set before torch and jax start their "
                             "threads, so that neither library uses more than one core; "
                             "Linux)")
    parser.add_argument("--domains", nargs="+", default=None,
                        help="only these registered domains (default: all)")
    parser.add_argument("--baselines", type=Path, default=None,
                        help="embed a benchmarks/baselines.py JSON as the FNO comparison")
    parser.add_argument("--skip", nargs="+", default=[],
                        choices=["solvers", "mno_vs_cno", "growth", "training_memory"],
                        help="leave these sections out")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[mode]
    os.environ["OMP_NUM_THREADS"] = str(args.threads)      # child processes inherit it
    if args.pin_cpu is not None:
        # Before any library starts a thread: XLA runs exponax's work on a pool of its own
        # whatever its intra-op setting, so only an affinity keeps both sides on one core.
        try:
            os.sched_setaffinity(0, {args.pin_cpu})
        except (AttributeError, OSError, ValueError) as exc:
            print(f"error: --pin-cpu {args.pin_cpu}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    import solvers

    solvers._limit_xla_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA device on this machine",
              file=sys.stderr)
        raise SystemExit(1)
    start = time.perf_counter()
    result: dict = {"benchmark": "run", "mode": mode, "plan": asdict(plan),
                    "environment": environment(args.device)}
    sections = {
        "solvers": lambda: solver_section(plan, args.device, args.domains),
        "mno_vs_cno": lambda: inference_section(plan, args.device, args.domains),
        "growth": lambda: growth_section(plan, args.device, args.domains),
        "training_memory": lambda: memory_section(plan, args.device),
    }
    result["status"] = "running"
    for name, fn in sections.items():
        result[name] = ({"status": "skipped", "reason": "--skip"} if name in args.skip
                        else _section(name, fn))
        if args.out:        # a run stopped by a time limit still leaves what it measured
            _write(args.out, result)
    result["mno_vs_fno"] = baselines_section(args.baselines, args.domains)
    result["goals"] = goals(result)
    result["environment"]["load_average_end"] = _load()
    result["environment"]["seconds"] = time.perf_counter() - start
    result["status"] = "complete"
    if args.out:
        _write(args.out, result)
    else:
        print(json.dumps(result, indent=2, default=float))
    return result


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
