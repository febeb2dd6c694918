"""Benchmark 2: ``ehkit report all`` for a quarter against the same reports side by side.

All as a person would type them. The subject is ``ehkit report all --period 2026Q3``. Its
floor is each report of ``ehkit.reports.due("2026Q3")`` as its own ``ehkit report KIND
--period P --audience A``, launched side by side (as many at a time as the machine has
cores, as ``report all`` runs them): what running these reports at once gets from the
cores free at that moment. Target: ``all`` within 1.1 times that floor. It is a wall time:
the speed-up is the point. Judged against cores taken by a neighbour, a fixed speed-up
(1.6x the one-by-one time, before 2026-12-03) failed whenever the machine was busy, and
said nothing about ehkit. The reports one after the other are measured too; their speed-up
is printed as context. Rounds in rotation (``in_rotation``), the least of each side
(``steady``), as every other ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import QUARTER, ROOT, Figure, Run, in_rotation, median, say, steady

MAX_RATIO = 1.1
QUIET_SPEEDUP = 1.6  # over one by one, on two free cores: context
ROUNDS = 3
EHKIT = [sys.executable, "-m", "ehkit.cli"]


def _ehkit(args: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(EHKIT + args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ehkit {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def run(run: Run, db: Path, rounds: int = ROUNDS) -> None:
    cores = os.cpu_count() or 1
    say(f"\n2. `ehkit report all --period {QUARTER}` vs its reports side by side "
        f"({cores} cores)")
    name = f"report all {QUARTER} vs side by side"
    try:
        from ehkit import reports

        jobs = reports.due(QUARTER)
        run_all = reports.run_all  # noqa: F841  the command exists
    except (ImportError, AttributeError) as e:
        run.add(Figure(name, None, "s", f"<= {MAX_RATIO}x floor", None,
                       note=f"not measurable yet: {e}"))
        return
    with tempfile.TemporaryDirectory(prefix="ehkit-batch-") as out:
        commands = [["report", j.kind, "--db", str(db), "--period", j.period,
                     "--audience", j.audience, "--out", out] for j in jobs]

        def one_by_one() -> float:
            t = time.perf_counter()
            for c in commands:
                _ehkit(c)
            return time.perf_counter() - t

        def side_by_side() -> float:
            t = time.perf_counter()
            with ThreadPoolExecutor(min(cores, len(commands))) as pool:
                list(pool.map(_ehkit, commands))
            return time.perf_counter() - t

        def together() -> float:
            return _ehkit(["report", "all", "--db", str(db), "--period", QUARTER, "--out", out])

        serial, floors, alls = in_rotation([one_by_one, side_by_side, together], rounds)
    run.add(speedup_figure(f"{name} ({len(jobs)} reports, least of {rounds})", alls, floors,
                           serial))


def speedup_figure(name: str, together: list[float], side_by_side: list[float],
                   one_by_one: list[float]) -> Figure:
    """``report all`` against the same reports side by side (the least of each side's
    rounds), with both speed-ups over one by one as context: the second says how many
    cores were free."""
    ratio = steady(together) / steady(side_by_side)
    serial = steady(one_by_one)
    return Figure(name, steady(together), "s", f"<= {MAX_RATIO}x floor", ratio <= MAX_RATIO,
                  floor=steady(side_by_side), ratio=ratio,
                  note=f"{serial / steady(together):.2f}x faster than one by one "
                       f"({serial:.2f} s; {QUIET_SPEEDUP}x on two free cores), side by side "
                       f"{serial / steady(side_by_side):.2f}x; medians {median(together):.2f} s "
                       f"vs {median(side_by_side):.2f} s")
