"""Markdown tables from a ``benchmarks/run.py`` JSON, for ``benchmarks/README.md``.

    python benchmarks/report.py RESULT.json                  # print the tables
    python benchmarks/report.py RESULT.json --readme benchmarks/README.md

With ``--readme`` the tables replace the block between ``<!-- run.py DEVICE begin -->`` and
``<!-- run.py DEVICE end -->`` (``DEVICE`` is the run's, ``cpu`` or ``cuda``), which is appended
at the end of the file the first time; one block per device, so a CPU and a GPU run stand side
by side.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def _f(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    return (["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows] + [""])


def _skipped(section: dict) -> list[str]:
    lines = [f"{section.get('status')}: {section.get('reason', '')}", ""]
    for command in section.get("commands", []):
        lines.append(f"    {command}")
    return lines + ([""] if section.get("commands") else [])


def machine_line(result: dict) -> str:
    env = result["environment"]
    where = env.get("gpu") or f"{env.get('cpu')} ({env.get('cpu_count')} logical CPUs)"
    pinned = env.get("cpus_allowed")
    pinned = f", pinned to CPU {pinned[0]}" if pinned and len(pinned) == 1 else ""
    return (f"`{result['mode']}` run on {where}, device `{env['device']}`, torch "
            f"{env['torch']}, {env['threads']} intra-op thread(s){pinned}, commit "
            f"{env.get('git_commit')}; load average {env.get('load_average_start')} at the "
            f"start, {env.get('load_average_end')} at the end; {env.get('seconds', 0):.0f} s.")


def goals_table(result: dict) -> list[str]:
    rows = []
    for key, goal in result.get("goals", {}).items():
        if "target" not in goal:
            continue
        if "cases" in goal:
            measured = ", ".join(f"{k}: {_f(c['mno_speedup_per_frame'])}x at "
                                 f"{_f(c['cno_internal_steps_per_frame'])} steps"
                                 for k, c in goal["cases"].items()) or "no case applies"
        else:
            measured = _f(goal.get("measured"))
        rows.append([key.replace("_", " "), goal["target"], measured, _f(goal.get("met"))])
    return _table(["goal", "target", "measured", "met"], rows)


def solver_tables(result: dict) -> list[str]:
    sec = result.get("solvers", {})
    if sec.get("status") not in ("complete", None):
        return _skipped(sec)
    rows = []
    for name, entries in sec.get("domains", {}).items():
        if entries.get("status") == "skipped":
            continue
        for key, e in entries.items():
            if not isinstance(e, dict) or "mcell_steps_per_s_best" not in e:
                continue
            rows.append([f"{name} / {key}", _f(e["steps_per_frame_mean"]),
                         _f(e["mcell_steps_per_s_best"]), _f(e["fft_only"]["mcell_steps_per_s"]),
                         _f(e.get("fraction_of_fft_bound"), 2)])
    lines = [("Solver throughput, batch 16 (Mcell-steps/s, best of the repeats; the FFT-only "
             "bound is the time of one step's FFTs on the same shapes, timed interleaved):"), ""]
    lines += _table(["domain / case / grid / dtype", "steps per frame", "Mcell-steps/s",
                     "FFT-only bound", "fraction of bound"], rows)
    peer = sec.get("exponax", {})
    if peer.get("status") != "complete":
        return lines + ["exponax: "] + _skipped(peer)
    rows = []
    for eq, entry in peer.get("equations", {}).items():
        for size, e in entry.get("sizes", {}).items():
            agree = e.get("agreement", {}).get("relative_l2")
            for dtype, t in e.get("timing", {}).items():
                rows.append([eq, size, dtype, _f(e.get("steps_per_frame")), _f(agree, 2),
                             _f(t["noa_mcell_steps_per_s"]), _f(t["exponax_mcell_steps_per_s"]),
                             _f(t["speedup_vs_exponax"], 2) + "x",
                             _f(t.get("speedup_vs_exponax_of_medians"), 2) + "x",
                             _f(t.get("noa_fraction_of_fft_bound"), 2),
                             _f(t.get("fft_only_speedup_vs_exponax"), 2) + "x"])
            if not e.get("timing"):
                rows.append([eq, size, "–", _f(e.get("steps_per_frame")), _f(agree, 2), "–",
                             "–", e.get("status", ""), "–", "–", "–"])
    lines += [(f"Against exponax {peer.get('exponax')} (jax {peer.get('jax')}), batch "
              f"{peer.get('batch')}: float64 agreement (relative L2 over all frames) first, then "
              "best Mcell-steps/s of each, interleaved with the platform's FFTs alone (the "
              "last column: the speed-up a solver doing nothing but its FFTs would have):"), ""]
    return lines + _table(["equation", "grid", "dtype", "steps per frame", "agreement (f64)",
                           "platform", "exponax", "speed-up (best)", "speed-up (medians)",
                           "fraction of FFT bound", "FFTs alone vs exponax"], rows)


def inference_table(result: dict) -> list[str]:
    sec = result.get("mno_vs_cno", {})
    rows = []
    for name, entry in sec.get("domains", {}).items():
        if entry.get("status") == "failed":
            rows.append([name, "–", "–", "–", "–", "–", entry.get("reason", "")])
            continue
        for size, r in entry.get("sizes", {}).items():
            rows.append([name, size, _f(r["cno_internal_steps_per_frame"]),
                         _f(r["cno_seconds_per_frame"]), _f(r["mno_seconds_per_frame"]),
                         _f(r["mno_speedup_per_frame"], 3) + "x",
                         ("met" if r["goal_met"] else "not met") if r["goal_applies"]
                         else "n/a (< 100 steps)"])
    if not rows:
        return []
    batch = next(iter(sec["domains"].values())).get("batch")
    return ([(f"MNO (quick-preset architecture) against the CNO, seconds per frame, batch "
             f"{batch}, float32 (the CNO's time holds all its internal steps; 10x goal where "
             "it takes >= 100):"), ""]
            + _table(["domain", "grid", "CNO steps per frame", "CNO s/frame", "MNO s/frame",
                      "MNO speed-up", ">= 10x goal"], rows))


def growth_table(result: dict) -> list[str]:
    rows = []
    for name, entry in result.get("growth", {}).get("domains", {}).items():
        for p in entry.get("points", []):
            rows.append([name, f"{p['size']}²", str(p["batch"]), _f(p["cno_internal_steps"]),
                         _f(p["cno_seconds_per_frame"]), _f(p["mno_seconds_per_frame"])])
    if not rows:
        return []
    return ([("Cost growth, seconds per frame against grid and batch (fluids' CNO over 1/8 of a "
             "frame, scaled):"), ""]
            + _table(["domain", "grid", "batch", "CNO steps", "CNO s/frame", "MNO s/frame"],
                     rows))


def memory_table(result: dict) -> list[str]:
    sec = result.get("training_memory", {})
    rows = [[_f(p.get("timesteps")), _f(p.get("bptt_window") or p.get("window")),
             _f(p.get("batch")), _f(p.get("peak_training_mb")), _f(p.get("seconds_per_batch")),
             p.get("method") or p.get("reason", "")] for p in sec.get("points", [])]
    if not rows:
        return _skipped(sec) if sec.get("status") == "skipped" else []
    return ([(f"Training peak memory above the set-up, toy domain at "
             f"{sec['points'][0].get('resolution')}², one child process per point:"), ""]
            + _table(["timesteps", "BPTT window", "batch", "peak MB", "s/batch", "method"],
                     rows))


def markdown(result: dict) -> str:
    lines = [machine_line(result), ""]
    if result.get("status") == "running":
        lines += ["(stopped before the end: the sections measured so far)", ""]
    lines += goals_table(result)
    lines += solver_tables(result)
    lines += inference_table(result)
    lines += growth_table(result)
    lines += memory_table(result)
    fno = result.get("mno_vs_fno")
    if fno is not None:
        lines += ["MNO against neuraloperator's FNO: "] + (
            _skipped(fno) if fno.get("status") == "skipped"
            else [f"embedded from {fno.get('source')}", ""])
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: Path, result: dict) -> None:
    device = result["environment"]["device"]
    begin, end = f"<!-- run.py {device} begin -->", f"<!-- run.py {device} end -->"
    block = f"{begin}\n{markdown(result)}{end}"
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    text = (pattern.sub(lambda _: block, text) if pattern.search(text)
            else text.rstrip() + "\n\n" + block + "\n")
    readme.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a benchmarks/run.py JSON")
    parser.add_argument("--readme", type=Path, default=None,
                        help="replace this device's block in this Markdown file")
    args = parser.parse_args(argv)
    try:
        result = json.loads(args.result.read_text())
        if result.get("benchmark") != "run":
            raise ValueError("not a benchmarks/run.py result (no 'benchmark': 'run')")
    except (OSError, ValueError) as exc:
        print(f"error: {args.result}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.readme:
        update_readme(args.readme, result)
    else:
        print(markdown(result), end="")


if __name__ == "__main__":
    main()
