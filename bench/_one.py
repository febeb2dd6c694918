"""One measurement in a fresh process: ``python -m bench._one report --db ... --notebooks ...``.

A fresh process per measurement keeps runs independent, and lets the kernel's peak memory be
read exactly: the kernel is this process's only child, so after the run
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the kernel process's peak resident set size.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time


def report(args) -> dict:
    from ehkit import reports

    with tempfile.TemporaryDirectory(prefix="ehkit-bench-") as out:
        before = _vmstat()
        t = time.perf_counter()
        result = reports.run(args.kind, db=args.db, period=args.period, audience=args.audience,
                             out_dir=out, notebooks=args.notebooks)
        seconds = time.perf_counter() - t
        machine = {k: v - before.get(k, 0) for k, v in _vmstat().items()}
        size = result.html.stat().st_size
    kids, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    kernel, parent = kids.ru_utime + kids.ru_stime, me.ru_utime + me.ru_stime
    # Both count: the kernel runs the notebook's queries, this process papermill and nbconvert.
    # User and kernel-mode (system) CPU and page faults apart, so a slow round tells whether
    # it was our work or the operating system's (faults, huge-page compaction).
    split = {f"{who}_{what}": getattr(use, f"ru_{what}") for who, use in
             (("kernel", kids), ("parent", me)) for what in ("utime", "stime", "minflt", "majflt")}
    return {"seconds": seconds, "cpu_seconds": kernel + parent, "kernel_cpu_seconds": kernel,
            "parent_cpu_seconds": parent, "kernel_peak_mb": kids.ru_maxrss / 1024,
            "html_bytes": size, **split, **machine}


# Huge pages made on a page fault, and the faults that stopped to compact memory first
# (direct compaction: system CPU), machine-wide (the neighbours' too) over the run.
VMSTAT = ("thp_fault_alloc", "compact_stall")


def _vmstat() -> dict[str, int]:
    try:
        with open("/proc/vmstat") as f:
            pairs = (line.split() for line in f)
            return {f"vm_{k}": int(v) for k, v in pairs if k in VMSTAT}
    except OSError:  # not Linux: the figure goes without
        return {}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(required=True)
    r = sub.add_parser("report")
    r.add_argument("--db", required=True)
    r.add_argument("--kind", default="quarterly")
    r.add_argument("--period", required=True)
    r.add_argument("--audience", default="board")
    r.add_argument("--notebooks")
    r.set_defaults(fn=report)
    args = p.parse_args()
    print(json.dumps(args.fn(args)), flush=True)


if __name__ == "__main__":
    main()
