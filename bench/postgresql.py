"""Benchmark 7: PostgreSQL beside SQLite in the same run, with the same targets (issue 18).

The bench starts a PostgreSQL server of its own (``ehkit.pg_server``, as the tests do: initdb
and pg_ctl in a temporary folder, a unix socket only; fsync on, as SQLite's synchronous
FULL), and gives it ``ehkit copy`` of the bench's SQLite store (the copy's time is printed).

- **16 savers at once**, on SQLite and on PostgreSQL: 16 processes, started together, each
  save complete audits (``ehkit.audits.save_draft``, the change log written by the triggers);
  the floor is the same 16 processes writing the same rows plainly, each in one
  ``ehkit.db.transaction`` (the change log still written, none of ehkit's Python). Floor and
  ehkit take turns phase by phase; the figure is the ratio of the least wall time of each
  over its phases (``bench.common.steady``), PASS at most 1.5 times, as for one saver
  (``bench.saving``). The save median a person waits is printed (with 16 saving at once,
  writers taking turns, it is mostly waiting for the others), and every save is counted
  afterwards: none lost. The ratio of CPU time (the savers' own and, on PostgreSQL, the
  server's) is printed beside.
- **One saver** (``bench.saving``) on the PostgreSQL copy, beside SQLite's.
- **The report** at every size and **a month's draw** on the PostgreSQL copies, with the
  SQLite targets (``bench.report``, ``bench.selection``). On PostgreSQL the CPU time of a report or a
  draw (and its floor's) counts the server's too, where the queries' work is done: the whole
  server's processes, read from /proc (``bench.common.server_cpu``; the bench's server runs
  on this machine). A figure whose server CPU cannot be read fails, saying why.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from .common import (
    Figure,
    Run,
    ServerCPUUnreadable,
    median,
    postmaster_of,
    say,
    server_cpu,
    steady,
    steady_ratio,
    timed,
)

SAVERS = 16
MAX_RATIO = 1.5  # as bench.saving's: the same target on both back ends
PHASES = ("floor", "ehkit", "ehkit", "floor", "floor", "ehkit")  # taking turns


class Copies:
    """The bench's PostgreSQL server and ``ehkit copy`` of each SQLite store asked for."""

    def __init__(self):
        self.server = None
        self.urls: dict[Path, str] = {}

    def of(self, run: Run, sqlite_path: Path) -> str:
        from ehkit import copying
        from ehkit.pg_server import Server

        if self.server is None:
            self.server = Server(fsync=True)
        if sqlite_path not in self.urls:
            url = self.server.new_database()
            seconds, _ = timed(lambda: copying.copy(sqlite_path, url))
            run.add(Figure(f"  ehkit copy to PostgreSQL ({sqlite_path.stem.split('-s')[0]})",
                           seconds, "s", "(printed)", None))
            self.urls[sqlite_path] = url
        return self.urls[sqlite_path]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


# -- 16 savers at once --------------------------------------------------------------------
def _many(db, sql: str, rows: list) -> None:
    """executemany on either back end (the adapter turns ? into psycopg's %s)."""
    from ehkit import db as store

    if store.is_postgres(db):
        from ehkit.postgres import placeholders

        db.conn.raw.cursor().executemany(placeholders(sql, False), rows)
    else:
        db.conn.executemany(sql, rows)


def plain_save(db, audit: dict) -> None:
    """The floor: the audit's rows written plainly in one ehkit transaction (its id taken
    inside it, where writers take turns, so savers at once do not collide)."""
    from ehkit import db as store

    row = {k: audit[k] for k in ("template", "episode_id", "auditor1_id", "audit_date", "summary",
                                 "overall_grade", "overall_reasons", "learning")}
    with store.acting_as(actor="bench floor"), store.transaction(db):
        (audit_id,) = db.execute("SELECT coalesce(max(id), 0) + 1 FROM audits").fetchone()
        db.execute(f"INSERT INTO audits (id, {', '.join(row)}) VALUES "
                   f"(?, {', '.join('?' * len(row))})", [audit_id, *row.values()])
        _many(db, "INSERT INTO answers VALUES (?, ?, ?, ?, ?)",
              [(audit_id, k, a["grade"], a["comment"], a["response"])
               for k, a in audit["answers"].items()])
        _many(db, "INSERT INTO checklist_answers VALUES (?, ?, ?, ?)",
              [(audit_id, k, c["status"], c["note"]) for k, c in audit["checklist"].items()])
        _many(db, "INSERT INTO actions (audit_id, number, action, by_whom, owner_id, due_date)"
              " VALUES (?, ?, ?, ?, ?, ?)",
              [(audit_id, n, a["action"], a["by_whom"], a["owner_id"], a["due_date"])
               for n, a in enumerate(audit["actions"], 1)])


def _saver(where: str, audit: dict, saves: int, start, results) -> None:
    """One of the savers: each phase, ``saves`` saves of its kind; the times of ehkit's."""
    from ehkit import audits
    from ehkit import db as store

    mine: list[float] = []
    cpu: list[float] = []  # this saver's CPU seconds in each phase
    try:
        db = store.connect(where)
        try:
            for phase in PHASES:
                start.wait()
                before = time.process_time()
                for _ in range(saves):
                    if phase == "floor":
                        plain_save(db, audit)
                    else:
                        mine.append(timed(lambda: audits.save_draft(db, audit))[0] * 1000)
                cpu.append(time.process_time() - before)
                start.wait()
        finally:
            db.close()
        results.put(("ok", (mine, cpu)))
    except Exception as e:  # said in the figure, never a hung benchmark
        results.put(("error", f"{type(e).__name__}: {e}"))
        start.abort()


def savers_at_once(run: Run, where, label: str, saves: int, savers: int = SAVERS) -> None:
    """``savers`` processes saving at once on the store at ``where`` (a path or a URL)."""
    from ehkit import db as store
    from ehkit import template as templates

    from .saving import complete_audit

    db = store.connect(where)
    try:
        audit = complete_audit(db, templates.load())
        (before,) = db.execute("SELECT count(*) FROM audits").fetchone()
        try:  # on PostgreSQL the saves' work is the server's too: its CPU time counted
            server = postmaster_of(db) if store.is_postgres(db) else None
        except ServerCPUUnreadable as e:
            run.add(Figure(f"{savers} savers at once, {label}", None, "s",
                           f"<= {MAX_RATIO:g}x floor", False, note=f"not measurable: {e}"))
            return
    finally:
        db.close()
    ctx = mp.get_context("spawn")  # no connection or lock inherited from this process
    start, results = ctx.Barrier(savers + 1), ctx.Queue()
    workers = [ctx.Process(target=_saver, args=(str(where), audit, saves, start, results))
               for _ in range(savers)]
    for w in workers:
        w.start()
    walls: dict[str, list[float]] = {"floor": [], "ehkit": []}
    served: list[float] = []  # the server's CPU seconds in each phase (PostgreSQL)
    name = f"{savers} savers at once, {label}"
    try:
        for phase in PHASES:
            start.wait(timeout=600)
            t, cpu = time.perf_counter(), server_cpu(server) if server else 0.0
            start.wait(timeout=600)
            walls[phase].append(time.perf_counter() - t)
            served.append(server_cpu(server) - cpu if server else 0.0)
        said = [results.get(timeout=60) for _ in workers]
    except Exception as e:
        said = [results.get(timeout=5) for _ in range(results.qsize())]
        errors = [s for kind, s in said if kind == "error"] or [f"{type(e).__name__}: {e}"]
        run.add(Figure(name, None, "s", f"<= {MAX_RATIO:g}x floor", False,
                       note=f"error: {errors[0]}"))
        return
    finally:
        for w in workers:
            w.join(60)
    errors = [s for kind, s in said if kind == "error"]
    db = store.connect(where)
    try:
        (after,) = db.execute("SELECT count(*) FROM audits").fetchone()
    finally:
        db.close()
    expected = savers * saves * len(PHASES)
    lost = before + expected - after
    ratio = steady_ratio(walls["ehkit"], walls["floor"])
    oks = [s for kind, s in said if kind == "ok"]
    each = [t for times, _ in oks for t in times]
    # CPU per phase: every saver's own, and the server's (all of the work, beside the waits)
    cpus = [sum(cpu[k] for _, cpu in oks) + served[k] for k in range(len(PHASES))]
    cpu_of = {p: [c for c, q in zip(cpus, PHASES, strict=True) if q == p] for p in walls}
    served_ehkit = [c for c, q in zip(served, PHASES, strict=True) if q == "ehkit"]
    # context, so the medians: a phase's server CPU read across a backend's exit can come
    # out a little short (its time not yet in the postmaster's), which the least would pick
    cpu_ratio = (median([e / f for e, f in zip(cpu_of["ehkit"], cpu_of["floor"], strict=True)])
                 if all(cpu_of["floor"]) else float("nan"))
    server_note = f", the server's {median(served_ehkit):.2f} s of it" if server else ""
    phase_saves = savers * saves
    run.add(Figure(f"{name} ({phase_saves} saves a phase)", steady(walls["ehkit"]), "s",
                   f"<= {MAX_RATIO:g}x floor", ratio <= MAX_RATIO and not lost and not errors,
                   floor=steady(walls["floor"]), ratio=ratio,
                   note=f"{phase_saves / median(walls['ehkit']):.0f} saves/s; "
                        + (f"{lost} LOST; " if lost else "none lost; ")
                        + (f"error: {errors[0]}" if errors else
                           f"save_draft median {median(each):.0f} ms, p95 "
                           f"{sorted(each)[int(0.95 * (len(each) - 1))]:.0f} ms, the others "
                           f"saving meanwhile; CPU {cpu_ratio:.2f}x the floor's, a phase "
                           f"{median(cpu_of['ehkit']):.2f} s{server_note}; wall medians "
                           f"{median(walls['ehkit']):.2f} s vs {median(walls['floor']):.2f} s")))


def draw_alone(run: Run, work: Path, cached: Path, *, quick: bool = False) -> None:
    """``--only draw``: the month's draw on SQLite (the scratch copy ``work``) and on
    ``ehkit copy`` of the ``cached`` store to PostgreSQL, nothing else (a quicker loop)."""
    from . import selection

    rounds = 3 if quick else selection.SELECTION_ROUNDS
    say("\n5, 7. The month's draw on SQLite and on PostgreSQL")
    selection.selection(run, work, rounds)
    copies = Copies()
    try:
        selection.selection(run, copies.of(run, cached), rounds, label="PostgreSQL")
    finally:
        copies.stop()


# -- the whole step -----------------------------------------------------------------------
def run(run: Run, dbs: dict[int, Path], work: Path | None, *, quick: bool = False,
        repeats: int = 3, parts: tuple[str, ...] = ("report", "savers", "draw")) -> None:
    """``parts``: the report, the savers (at once and one) and the draw; ``work``: SQLite's
    scratch copy, which only the savers write to."""
    from . import report, saving, selection

    say("\n7. PostgreSQL beside SQLite (a server of the bench's own; ehkit copy of the stores)")
    copies = Copies()
    try:
        # One copy of the largest store serves all: the report reads it first, then the
        # savers and the draw write to it (SQLite's side writes to its scratch copy, ``work``).
        pg_big = copies.of(run, dbs[max(dbs)])
        if "report" in parts and quick:  # the report: minutes of papermill, not for make test
            run.add(Figure("report on PostgreSQL", None, "s", f"<= {report.MAX_RATIO}x floor "
                           "(CPU)", None, note="--quick: not run (python -m bench --only "
                           "postgresql runs it)"))
        elif "report" in parts:
            report.run(run, {n: copies.of(run, p) for n, p in dbs.items()}, repeats=repeats,
                       label="PostgreSQL")
        if "savers" in parts:
            saves, savers = (1, 4) if quick else (4, SAVERS)  # --quick: that it runs, not how fast
            savers_at_once(run, work, "SQLite", saves, savers)
            savers_at_once(run, pg_big, "PostgreSQL", saves, savers)
            saving.run(run, pg_big, saves=5 if quick else 60, label="PostgreSQL")
        if "draw" in parts:
            selection.selection(run, pg_big, 3 if quick else selection.SELECTION_ROUNDS,
                                label="PostgreSQL")
    finally:
        copies.stop()
