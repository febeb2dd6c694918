"""What every benchmark shares: figures with targets, the printed table, cached demo stores.

A figure is ehkit's measurement next to its floor (the same work without ehkit's own cost,
measured in the same run), the ratio, the target and PASS/FAIL. Absolute times drift on a
shared machine; the ratio drifts much less, and the least of each side over the rounds
(:func:`steady`) least of all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = Path(os.environ.get("EHKIT_BENCH_CACHE", BENCH / ".cache"))
# The demo data ends here, so 2026Q3 is the last full quarter (as in the tests).
UNTIL = dt.date(2026, 10, 31)
QUARTER = "2026Q3"
AUDITS_PER_EPISODE = 0.125  # about one audit per 8 episodes
SEED = 1
T = TypeVar("T")


@dataclass
class Figure:
    """One benchmark line. ``passed`` None: not measurable (``note`` says why)."""

    name: str
    value: float | None
    unit: str
    target: str
    passed: bool | None
    floor: float | None = None
    ratio: float | None = None
    note: str = ""
    # Each side round by round (a ratio figure's ehkit and floor), kept in last-run.json and
    # not printed: a run's rounds can be judged again by another estimator without another
    # run (RESULTS.md, 2026-12-04: the estimators compared needed rounds no run had kept).
    rounds: dict[str, list[float]] | None = None


@dataclass
class Run:
    """Everything one ``python -m bench`` prints, kept for RESULTS.md."""

    figures: list[Figure] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    cpu_checks: list[float] = field(default_factory=list)

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        print_figure(fig)
        return fig


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.2f} s" if v >= 0.1 else f"{v * 1000:.1f} ms"
    if unit == "ms":
        return f"{v:.2f} ms"
    if unit == "MB":
        return f"{v:.0f} MB"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v:g} {unit}"


def mark(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


COLUMNS = (("benchmark", 62), ("ehkit", 11), ("floor", 11), ("ratio", 7), ("target", 38),
           ("", 4))


def header() -> str:
    return "  ".join(name.ljust(w) for name, w in COLUMNS)


def row(fig: Figure) -> str:
    cells = (fig.name, _fmt(fig.value, fig.unit), _fmt(fig.floor, fig.unit),
             _fmt(fig.ratio, "x"), fig.target, mark(fig.passed))
    line = "  ".join(str(c).ljust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True))
    return line + (f"  ({fig.note})" if fig.note else "")


def print_figure(fig: Figure) -> None:
    print("  " + row(fig), flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def machine() -> str:
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:  # pragma: no cover
        mem = "?"
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({cpu}), {mem} memory, Python {platform.python_version()}, "
            f"SQLite {__import__('sqlite3').sqlite_version}, load average at start "
            f"{load[0]:.1f}")


def cpu_check() -> float:
    """Seconds for a fixed 10-million-step Python loop: how fast this machine runs now. On a
    shared host it varies by half from hour to hour, which moves every absolute figure."""
    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


@dataclass(frozen=True)
class Clock:
    """One timed run: seconds on the clock, and the CPU seconds used in them: this process's,
    plus a PostgreSQL server's (``server_cpu_seconds``, counted in ``cpu_seconds`` too)."""

    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float = 0.0


def clocked(fn: Callable[[], object], server: int | None = None) -> tuple[Clock, object]:
    """``server``: the postmaster's pid (:func:`postmaster_of`) when the work is done by a
    PostgreSQL server on this machine: its CPU time is the work's too."""
    before = server_cpu(server) if server else 0.0
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    spent = server_cpu(server) - before if server else 0.0
    return Clock(seconds, cpu + spent, spent), out


class ServerCPUUnreadable(RuntimeError):
    """A PostgreSQL figure whose server's CPU time cannot be read would count half the work."""


def postmaster_of(db) -> int:
    """The pid of the PostgreSQL server (its postmaster) serving ``db``'s connection, read
    from /proc: the server must run on this machine, as the bench's own does."""
    (backend,) = db.execute("SELECT pg_backend_pid()").fetchone()
    try:
        return proc_stat(backend)[1]
    except OSError as e:
        raise ServerCPUUnreadable(
            f"cannot read the server backend's /proc/{backend}/stat ({e.strerror}): the "
            "server's CPU time is counted only for a server on this machine (the bench's own)"
        ) from e


def proc_stat(pid: int) -> list[int]:
    """/proc/<pid>/stat's numeric fields after the name: [1] ppid, [11:15] utime, stime,
    cutime, cstime (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return [0, *map(int, fields[1:])]


TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster: int) -> float:
    """CPU seconds a PostgreSQL server has used so far: the postmaster's own and its ended
    children's (cutime, cstime: backends, parallel workers, once reaped), plus its running
    children's. The whole server, so parallel workers count too (and its background writers,
    a little noise)."""
    try:
        own = proc_stat(postmaster)
    except OSError as e:
        raise ServerCPUUnreadable(f"cannot read the PostgreSQL server's /proc/{postmaster}/stat "
                                  f"({e.strerror}): has it stopped?") from e
    ticks = sum(own[11:15])
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = proc_stat(int(entry.name))
        except OSError:  # ended meanwhile: its time is in the postmaster's cutime once reaped
            continue
        if child[1] == postmaster:
            ticks += child[11] + child[12]
    return ticks / TICK


def in_turns(floor: Callable[[], T], subject: Callable[[], T], rounds: int
             ) -> tuple[list[T], list[T]]:
    """(floor times, subject times) of ``rounds`` rounds, each running both one after the
    other, the floor first in odd rounds and the subject first in even ones: a machine that
    speeds up or slows down meanwhile moves both alike, and neither always runs warm."""
    floors, subjects = in_rotation([floor, subject], rounds)
    return floors, subjects


def turned(items: Sequence[T], k: int) -> list[T]:
    """``items`` in round ``k``'s order: turned by one place a round, so that each runs first
    once in as many rounds, and none always runs after the same one (a run after a big
    store's, whose reads pushed other files out of the page cache, costs more)."""
    n = len(items)
    return [items[(k * (n - 1) + j) % n] for j in range(n)]


def in_rotation(sides: list[Callable[[], T]], rounds: int) -> list[list[T]]:
    """Each side's results over ``rounds`` rounds, each round running every side once, the
    order turned by one place from round to round (:func:`turned`; two sides:
    :func:`in_turns`)."""
    out: list[list[T]] = [[] for _ in sides]
    for k in range(rounds):
        for i in turned(range(len(sides)), k):
            out[i].append(sides[i]())
    return out


def steady(values: list[float]) -> float:
    """One side's figure over its rounds: the least. A neighbour on a shared machine only ever
    adds to a run (its waits, and CPU time too: caches and cores shared), and more often to
    the longer run of a pair than to its floor, so the least of each side is the closest to
    what the work costs. Measured against the median of each round's own ratio, the ratio of
    the medians and of the lower quartiles (bench/RESULTS.md, 2026-12-03): the narrowest over
    the rounds, and it moved less between a quiet and a busy machine than the medians."""
    return min(values)


def steady_ratio(subject: list[float], floor: list[float]) -> float:
    """ehkit against its floor: each side's :func:`steady` figure, then their ratio."""
    return steady(subject) / steady(floor)


def medians_note(subject: list[float], floor: list[float], what: str = "", unit: str = "s"
                 ) -> str:
    """The medians, printed beside the figure as context: the sides' and their rounds' own
    ratios' (the estimator before 2026-12-03)."""
    return (f"{what + ' ' if what else ''}medians {_fmt(median(subject), unit)} vs "
            f"{_fmt(median(floor), unit)}, rounds' ratios "
            f"{median([s / f for s, f in zip(subject, floor, strict=True)]):.2f}x")


def ratio_figure(name: str, subject: list[float], floor: list[float], unit: str,
                 max_ratio: float, *, ceiling: float | None = None,
                 waits: list[float] | None = None, note: str = "", of: str = "") -> Figure:
    """ehkit against its floor: the least of each side over the rounds (:func:`steady`), and
    their ratio, PASS when it is at most ``max_ratio``. The medians are printed as context.
    ``ceiling``: an absolute time a person would wait, marked as such, held against the
    median (what a person waits most often) of ``waits``, the times a person waited where
    the figure is not of them (a figure of CPU), else of ``subject``; over it, the figure
    fails. ``of``: what is compared, when not time (``CPU``). A figure without its floor
    fails: nothing else would say how fast ehkit is."""
    target = f"<= {max_ratio:g}x floor" + (f" ({of})" if of else "") + (
        f", < {_fmt(ceiling, unit)} (a person waits)" if ceiling is not None else "")
    waited = median(subject if waits is None else waits) if subject else None
    over = ceiling is not None and waited is not None and waited >= ceiling
    if waits is not None and waited is not None and ceiling is not None:
        note = "; ".join(n for n in (note, f"time median {waited:.2f} s"
                                     + (" (FAIL: over the ceiling)" if over else "")) if n)
    value = steady(subject) if subject else None
    if not subject or len(floor) != len(subject) or not all(f > 0 for f in floor):
        return Figure(name, value, unit, target, False,
                      note="no floor measured in this run" + (f"; {note}" if note else ""))
    ratio = steady_ratio(subject, floor)
    passed = ratio <= max_ratio and not over
    context = medians_note(subject, floor, of, unit) if len(subject) > 1 else ""
    return Figure(name, value, unit, target, passed, floor=steady(floor), ratio=ratio,
                  note="; ".join(n for n in (note, context) if n),
                  rounds={"ehkit": list(subject), "floor": list(floor)})


def cpu_figure(name: str, subject: list[Clock], floor: list[Clock], max_ratio: float, *,
               note: str = "", ceiling: float | None = None) -> Figure:
    """A ratio of CPU seconds (:func:`ratio_figure`: the least of each side), the ratio of
    times beside it. Both run in this process, so its CPU time is all of the work (on
    PostgreSQL with the server's, :func:`clocked`, where the queries' work is done);
    neighbours on a shared machine stretch the time of each run by as much as it waits for a
    core, which the CPU time does not count (bench/RESULTS.md: from a quiet machine to the
    busiest, the import's ratio of CPU time moved by 11 %, its ratio of times 2.7-fold).
    ``ceiling``: seconds a person waits, held against the median time (not CPU: a person
    waits for the page, neighbours and all)."""
    times = ""
    if any(c.server_cpu_seconds for c in subject):
        note = "; ".join(n for n in (note, (
            f"server CPU {median([c.server_cpu_seconds for c in subject]) * 1000:.0f} ms vs "
            f"floor's {median([c.server_cpu_seconds for c in floor] or [0]) * 1000:.0f} ms, "
            "counted (medians)")) if n)
    if subject and len(floor) == len(subject) and all(f.seconds > 0 for f in floor):
        mine, base = [c.seconds for c in subject], [c.seconds for c in floor]
        times = (f"time {steady(mine):.2f} s vs floor {steady(base):.2f} s = "
                 f"{steady_ratio(mine, base):.2f}x")
    return ratio_figure(name, [c.cpu_seconds for c in subject], [c.cpu_seconds for c in floor],
                        "s", max_ratio, of="CPU", ceiling=ceiling,
                        waits=[c.seconds for c in subject],
                        note="; ".join(n for n in (note, times) if n))


# -- cached demo stores ------------------------------------------------------------------
def _code_key() -> str:
    """Cached stores are rebuilt when the generator changes. (New migrations are applied to
    a cached store when it is opened, before anything is timed.)"""
    return hashlib.sha256((ROOT / "ehkit" / "demo.py").read_bytes()).hexdigest()[:10]


def demo_path(episodes: int, seed: int = SEED, audits_per_episode: float = AUDITS_PER_EPISODE
              ) -> Path:
    return CACHE / f"demo-{episodes}-s{seed}-a{audits_per_episode}-{_code_key()}.db"


def demo_db(episodes: int, *, seed: int = SEED, audits_per_episode: float = AUDITS_PER_EPISODE,
            fresh: bool = False) -> tuple[Path, dict]:
    """A demo store of this size from the cache, built (and timed) when missing.

    Returns the path and what is known about its build: seconds, date, counts, and whether
    it was built in this run.
    """
    from tqdm import tqdm

    from ehkit import db as store
    from ehkit import demo

    path = demo_path(episodes, seed, audits_per_episode)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not fresh:
        t = time.perf_counter()
        backups = path.parent / "backups"
        kept = set(backups.glob(f"{path.stem}-*.db"))
        store.connect(path).close()  # apply any newer migration now, not inside a timing
        for made in set(backups.glob(f"{path.stem}-*.db")) - kept:
            made.unlink()  # the upgrade's backup of a store the bench can rebuild: GBs for nothing
        return path, {**json.loads(meta_path.read_text()), "built_now": False,
                      "migrated_seconds": time.perf_counter() - t}
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"demo-{episodes}-s{seed}-a{audits_per_episode}-*"):
        old.unlink()  # an older build of the same size (code changed since)
    tmp = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    database = store.connect(tmp)
    with tqdm(total=episodes, unit="episode", desc=f"demo {episodes:,}", file=sys.stdout,
              mininterval=2, leave=False) as bar:
        t, cpu = time.perf_counter(), time.process_time()
        counts = demo.generate(database, episodes=episodes, seed=seed, until=UNTIL,
                               audits_per_episode=audits_per_episode, progress=bar.update)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    log_rows = database.execute("SELECT max(id) FROM change_log").fetchone()[0]
    database.close()
    floor = plain_insert_seconds(tmp)  # right after the build: the machine as it was
    os.replace(tmp, path)
    meta = {"episodes": episodes, "seed": seed, "audits_per_episode": audits_per_episode,
            "seconds": seconds, "cpu_seconds": cpu, "floor_seconds": floor,
            "built_on": dt.datetime.now().isoformat(timespec="seconds"),
            "counts": counts, "change_log_rows": log_rows,
            "bytes": path.stat().st_size}
    meta_path.write_text(json.dumps(meta, indent=1))
    return path, {**meta, "built_now": True}


def plain_insert_seconds(src: Path) -> float:
    """The demo generator's floor: the rows it made, inserted plainly into a new file with
    the standard library (``executemany`` into tables without types, constraints, indexes or
    triggers, in one transaction), read from the store it built as they go in."""
    import sqlite3

    dest = src.with_name(src.name + ".floor")
    for suffix in ("", "-journal"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    source = sqlite3.connect(src)
    tables = [t for (t,) in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    t = time.perf_counter()
    con = sqlite3.connect(dest, isolation_level=None)
    con.execute("BEGIN")
    for table in tables:
        names = [r[1] for r in source.execute(f'PRAGMA table_info("{table}")')]
        quoted = ", ".join(f'"{c}"' for c in names)
        con.execute(f'CREATE TABLE "{table}" ({quoted})')
        con.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(names))})',
                        source.execute(f'SELECT {quoted} FROM "{table}"'))
    con.execute("COMMIT")
    con.close()
    seconds = time.perf_counter() - t
    source.close()
    dest.unlink()
    return seconds


def work_copy(src: Path, name: str) -> Path:
    """A scratch copy of a cached store for benchmarks that write (the cache stays as built)."""
    dest = CACHE / "work" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    shutil.copyfile(src, dest)
    # Flush the copy to disk now, or the benchmark's own fsyncs queue behind gigabytes of it.
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return dest
