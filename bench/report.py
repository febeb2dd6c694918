"""Benchmark 1: the quarterly report next to its floor, at three sizes.

Both go through ``ehkit.reports.run`` (papermill execution, then nbconvert HTML export, in one
process): the report is ``notebooks/quarterly_report.ipynb``, the floor ``bench/floor.ipynb``
(the same parameters and imports, one trivial cell; on PostgreSQL it loads the driver too,
as SQLite's comes with ehkit's imports). Floor and report take turns (floor first
in odd rounds, the report first in even ones) and, round by round, the sizes, each in a fresh
process (``bench._one``); the figure is the least CPU time of each side over the rounds
(``bench.common.steady``), then their ratio. The size the target is judged at has more rounds,
of that size alone (``JUDGED_ROUNDS``): each side's least takes many rounds to find on a
machine whose speed swings. The targets are ratios of CPU time, all the
report costs: the kernel's (the notebook's queries and charts) and its parent's (papermill
and nbconvert), printed apart beside it. On a shared machine the time spent waiting for a
core says more about the neighbours than about the report, and a busy run moved the CPU
ratios least (RESULTS.md); the ratio of times is printed beside it, and the medians.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import (
    BENCH,
    QUARTER,
    ROOT,
    Figure,
    Run,
    ServerCPUUnreadable,
    median,
    medians_note,
    postmaster_of,
    say,
    server_cpu,
    steady,
    steady_ratio,
    turned,
)

REPORT_RATIO_AT = 100_000
MAX_RATIO = 1.3
MAX_GROWTH = 1.5
MAX_KERNEL_MB = 1024
# Rounds of the report (``--repeats``): 8, not 5. In run L (bench/RESULTS.md, quiet) five and
# one more left the report's least at 100,000 episodes 7% above its quiet value while its
# floor had found a quiet moment 18% below its median: 1.34x, where the rounds' ratios and the
# medians both read 1.18x. Each side's least needs enough rounds to meet a quiet moment.
REPORT_ROUNDS = 8
# After those rounds, rounds of the judged size alone (floor and report back to back) until
# it has this many times as many. Its least on each side needs many rounds on this kind of
# machine: a fixed loop's speed there swings between 1x and 2x from one fifth of a second to
# the next, so which side meets the quicker stretches decides a least of few rounds. Of 30
# rounds at 100,000 episodes (bench/RESULTS.md, 2026-12-04), eight drawn at random read over
# 1.3x one time in ten, sixteen one in forty, where all 30 read 1.17x (yet run O, busy, read
# 1.32x on PostgreSQL over 24, on a floor's lucky least: RESULTS.md). Alone, a round costs a
# sixth of one of every size (the million-episode store's report is most of it), and no run
# follows the big store's, which pushes other files out of the page cache
# (bench.common.turned). Until 2026-12-04 rounds of every size went on to twice those asked
# for while the last still found a new least.
JUDGED_ROUNDS = 3


def one(db: Path | str, notebooks: Path | None) -> dict:
    cmd = [sys.executable, "-m", "bench._one", "report", "--db", str(db), "--period", QUARTER]
    if notebooks:
        cmd += ["--notebooks", str(notebooks)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"report run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_counting_server(db: Path | str, notebooks: Path | None, server: int | None) -> dict:
    """:func:`one`, and on PostgreSQL the server's CPU time meanwhile (``server``: its
    postmaster's pid), added to the run's: the report's queries are the server's work."""
    if server is None:
        return one(db, notebooks)
    before = server_cpu(server)
    out = one(db, notebooks)
    spent = server_cpu(server) - before
    return {**out, "cpu_seconds": out["cpu_seconds"] + spent, "server_cpu_seconds": spent}


def _postmaster(db: Path | str) -> int | None:
    from ehkit import db as store

    if not store.postgres_url(str(db)):
        return None
    con = store.connect(db)
    try:
        return postmaster_of(con)
    finally:
        con.close()


def measure(dbs: dict[int, Path | str], repeats: int) -> dict[int, tuple[list[dict], list[dict]]]:
    """{size: (floor runs, report runs)}. Each round runs floor and report at every size
    (the floor first in odd rounds, the report in even ones: neither always runs warm), so a
    machine that speeds up or slows down meanwhile affects every size and the floor
    alike: the ratios and the growth compare runs made at the same time. The sizes run in
    rotation (:func:`~bench.common.turned`): run after the largest store's report, a
    store's runs cost more, and the smallest store always ran there until 2026-12-03, which
    flattered the growth (bench/RESULTS.md). ``repeats`` rounds, then rounds of the judged
    size alone up to :data:`JUDGED_ROUNDS` times as many.
    On PostgreSQL the server's CPU time counts too (ServerCPUUnreadable when it cannot be
    read)."""
    runs: dict[int, tuple[list[dict], list[dict]]] = {size: ([], []) for size in dbs}
    servers = {size: _postmaster(db) for size, db in dbs.items()}
    judged = REPORT_RATIO_AT if REPORT_RATIO_AT in dbs else max(dbs)
    with tempfile.TemporaryDirectory(prefix="ehkit-floor-") as d:
        floor_dir = Path(d)
        shutil.copy(BENCH / "floor.ipynb", floor_dir / "quarterly_report.ipynb")

        def pair(size: int, k: int) -> None:
            turns = [(runs[size][0], floor_dir), (runs[size][1], None)]
            for out, notebooks in turns if k % 2 == 0 else turns[::-1]:
                out.append(one_counting_server(dbs[size], notebooks, servers[size]))

        for k in range(repeats):
            for size in turned(sorted(dbs), k):
                pair(size, k)
            say(f"  round {k + 1} of {repeats} done")
        for k in range(repeats, JUDGED_ROUNDS * repeats):
            pair(judged, k)
            say(f"  round {k + 1} of {JUDGED_ROUNDS * repeats} at {judged:,} episodes alone")
    return runs


def run(run: Run, dbs: dict[int, Path | str], repeats: int = 3, label: str = "") -> None:
    """``label``: the back end, when not SQLite (PostgreSQL URLs in ``dbs``)."""
    on = f" on {label}" if label else ""
    if not label:
        say("\n1. Quarterly report (papermill + HTML export) vs floor notebook, same code path")
    times: dict[int, float] = {}
    try:
        runs = measure(dbs, repeats)
    except ServerCPUUnreadable as e:
        run.add(Figure(f"report{on}", None, "s", f"<= {MAX_RATIO}x floor (CPU)", False,
                       note=f"not measurable: {e}"))
        return
    for size in sorted(dbs):
        floors, reports = runs[size]
        f, r = median([x["seconds"] for x in floors]), median([x["seconds"] for x in reports])
        times[size] = r
        cpu_f = steady([x["cpu_seconds"] for x in floors])
        cpu_r = steady([x["cpu_seconds"] for x in reports])
        peak = max(x["kernel_peak_mb"] for x in reports)
        floor_peak = max(x["kernel_peak_mb"] for x in floors)
        target = f"<= {MAX_RATIO}x floor (CPU)" if size == REPORT_RATIO_AT else "(context)"
        ratio = _ratio(reports, floors, "cpu_seconds")
        run.add(Figure(f"report{on} {size:,} episodes, CPU time (least of {len(reports)})", cpu_r, "s",
                       target, (ratio <= MAX_RATIO) if size == REPORT_RATIO_AT else None,
                       floor=cpu_f, ratio=ratio,
                       note=f"{_parts(reports, floors)}; {_least_rounds(reports, floors)}; "
                            + medians_note([x["cpu_seconds"] for x in reports],
                                           [x["cpu_seconds"] for x in floors], "CPU")
                            + f"; time medians {r:.1f} s vs floor {f:.1f} s = "
                            f"{_round_ratio(reports, floors, 'seconds'):.2f}x",
                       rounds=_rounds(reports, floors)))
        is_max = size == max(dbs)
        run.add(Figure(f"  kernel peak memory, {size:,} episodes", peak, "MB",
                       f"< {MAX_KERNEL_MB} MB" if is_max else "(context)",
                       (peak < MAX_KERNEL_MB) if is_max else None,
                       floor=floor_peak, ratio=peak / floor_peak))
    small, big = min(times), max(times)
    if small != big:
        # The least of each size's CPU times over the rounds of every size, in rotation (not
        # the judged size's own rounds, when it is the largest): a busy moment only adds.
        rounds = min(len(runs[big][1]), len(runs[small][1]))
        bigs, smalls = runs[big][1][:rounds], runs[small][1][:rounds]
        growth = _ratio(bigs, smalls, "cpu_seconds")
        run.add(Figure(f"report growth{on} {small:,} -> {big:,} episodes, CPU (least of {rounds})",
                       growth, "x", f"<= {MAX_GROWTH}x", growth <= MAX_GROWTH,
                       note=f"time {times[small]:.2f} s -> {times[big]:.2f} s = "
                            f"{_round_ratio(bigs, smalls, 'seconds'):.2f}x",
                       rounds=_rounds(bigs, smalls)))


def _rounds(runs: list[dict], against: list[dict]) -> dict[str, list[float]]:
    """Each side's CPU seconds round by round, kept with the figure (``Figure.rounds``)."""
    return {"ehkit": [x["cpu_seconds"] for x in runs],
            "floor": [x["cpu_seconds"] for x in against]}


def _ratio(runs: list[dict], against: list[dict], measure: str) -> float:
    """The figure: the least ``measure`` of each side over the rounds, then their ratio."""
    return steady_ratio([x[measure] for x in runs], [x[measure] for x in against])


def _parts(reports: list[dict], floors: list[dict]) -> str:
    """The CPU of the kernel, of its parent and (PostgreSQL) of the server apart, the least
    of each: all of them are counted in the figure."""
    parts = (("kernel", "kernel_cpu_seconds"), ("papermill + nbconvert", "parent_cpu_seconds"),
             ("server", "server_cpu_seconds"))
    return ", ".join(f"{what} {steady([x[key] for x in reports]):.2f} s vs "
                     f"{steady([x[key] for x in floors]):.2f} s" for what, key in parts
                     if key in reports[0])


def _least_rounds(reports: list[dict], floors: list[dict]) -> str:
    """Each side's least round (the one its figure is), its CPU split into user and system
    (kernel-mode) time and its page faults (minor/major), for the kernel and for its parent:
    a slow run then says whether it was the report's work or the operating system's (page
    faults, huge-page compaction are system time)."""
    def split(runs: list[dict]) -> str:
        least = min(runs, key=lambda x: x["cpu_seconds"])
        if "kernel_utime" not in least:
            return "-"
        return " / ".join(
            f"{least[f'{who}_utime']:.2f} + {least[f'{who}_stime']:.2f} s, "
            f"{least[f'{who}_minflt']:,}/{least[f'{who}_majflt']} faults"
            for who in ("kernel", "parent")) + (
            f" (machine-wide: {least['vm_thp_fault_alloc']:,} huge pages faulted in, "
            f"{least['vm_compact_stall']:,} compaction stalls)" if "vm_compact_stall" in least
            else "")
    return (f"least rounds, kernel / papermill + nbconvert as user + system CPU, minor/major "
            f"page faults: {split(reports)} vs floor {split(floors)}")


def _round_ratio(runs: list[dict], against: list[dict], measure: str) -> float:
    """The median of each round's own ratio of ``measure`` (seconds or CPU seconds): context."""
    return median([x[measure] / y[measure] for x, y in zip(runs, against, strict=True)])
