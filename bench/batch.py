"""Benchmark 2: ``ehkit report all`` for a quarter vs its reports run one by one.

Both as a person would type them: ``ehkit report all --period 2026Q3`` against each report of
``ehkit.reports.due("2026Q3")`` as its own ``ehkit report KIND --period P --audience A``, one
after the other (the floor is their summed time). Target: ``all`` at least 1.6 times faster.
Rounds in turns (``in_turns``), the least of each side (``steady``), as every other ratio: the
speed-up is from running the reports side by side, so it needs the cores free, and one
moment's neighbours decide a single round.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import QUARTER, ROOT, Figure, Run, in_turns, median, say, steady

MIN_SPEEDUP = 1.6
ROUNDS = 3
EHKIT = [sys.executable, "-m", "ehkit.cli"]


def _ehkit(args: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(EHKIT + args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ehkit {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def run(run: Run, db: Path, rounds: int = ROUNDS) -> None:
    say(f"\n2. `ehkit report all --period {QUARTER}` vs its reports one by one "
        f"({os.cpu_count()} cores)")
    name = f"report all {QUARTER} vs one by one"
    try:
        from ehkit import reports

        jobs = reports.due(QUARTER)
        run_all = reports.run_all  # noqa: F841  the command exists
    except (ImportError, AttributeError) as e:
        run.add(Figure(name, None, "s", f">= {MIN_SPEEDUP}x faster", None,
                       note=f"not measurable yet: {e}"))
        return
    with tempfile.TemporaryDirectory(prefix="ehkit-batch-") as out:
        def one_by_one() -> float:
            return sum(_ehkit(["report", j.kind, "--db", str(db), "--period", j.period,
                               "--audience", j.audience, "--out", out]) for j in jobs)

        def together() -> float:
            return _ehkit(["report", "all", "--db", str(db), "--period", QUARTER, "--out", out])

        floors, alls = in_turns(one_by_one, together, rounds)
    run.add(speedup_figure(f"{name} ({len(jobs)} reports, least of {rounds})", alls, floors))


def speedup_figure(name: str, together: list[float], one_by_one: list[float]) -> Figure:
    """``report all``'s speed-up: the least of its rounds against the least of one by one's."""
    speedup = steady(one_by_one) / steady(together)
    return Figure(name, steady(together), "s", f">= {MIN_SPEEDUP}x faster",
                  speedup >= MIN_SPEEDUP, floor=steady(one_by_one), ratio=1 / speedup,
                  note=f"{speedup:.2f}x faster; medians {median(together):.2f} s vs "
                       f"{median(one_by_one):.2f} s")
