"""``python -m bench``: every benchmark, its figures and targets; ``--help`` for options."""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

from . import batch, common, form, postgresql, report, saving, selection, team
from .common import Figure, Run, say

STEPS = ("report", "batch", "form", "save", "select", "team", "postgresql")
# Parts of steps that can be run alone (--only import; --only report-postgresql: the report
# on PostgreSQL without the savers and the draw; --only draw: the month's draw on SQLite and
# on a PostgreSQL copy, the parts of select and postgresql it comes from).
ALONE = {"import": "select", "report-postgresql": "postgresql", "draw": "select"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--sizes", default="10000,100000,1000000",
                   help="episodes in the report benchmark's stores (the largest is also used "
                   "for the form, saving and selection; default 10000,100000,1000000)")
    p.add_argument("--only", default=",".join(STEPS),
                   help=f"comma-separated subset of {','.join(STEPS)} (or import: the "
                   "import alone, which select runs too; report-postgresql: the report "
                   "alone of postgresql's figures; draw: the month's draw alone, on SQLite "
                   "and on a PostgreSQL copy)")
    p.add_argument("--repeats", type=int, default=report.REPORT_ROUNDS,
                   help=f"report runs per size (default {report.REPORT_ROUNDS}; the size "
                   f"its target is judged at, {report.JUDGED_ROUNDS} times as many)")
    p.add_argument("--fresh", action="store_true",
                   help="build the demo stores again even when cached (times generation)")
    p.add_argument("--quick", action="store_true",
                   help="tiny stores and few repeats: checks the benchmarks run, measures nothing")
    p.add_argument("--auditors", type=int, default=team.AUDITORS,
                   help=f"auditors at once in the team benchmark (default {team.AUDITORS})")
    p.add_argument("--browsers", action="store_true",
                   help="team benchmark: each auditor a headless Chromium context on this "
                   "machine, not a websocket client (the browsers then share the server's cores)")
    p.add_argument("--record", action="store_true", help="write the run to bench/RESULTS.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    only = set(args.only.split(","))
    if args.quick:
        sizes, args.repeats = [min(sizes[0], 400)], 1
        saving.MIN_AUDITS, selection.IMPORT_ROWS = 0, 300
    # Bytecode as an installed ehkit has it (pip compiles at install): a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile ehkit again in every process measured, and more
    # of it in a report's kernel (its later imports) than in the floor's.
    compileall.compile_dir(str(common.ROOT / "ehkit"), quiet=1)
    run = Run()
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    say(f"ehkit benchmarks, {dt.datetime.now():%Y-%m-%d %H:%M}\n{common.machine()}")
    if not args.quick:
        run.cpu_checks.append(common.cpu_check())
        say(f"CPU check (a fixed Python loop; lower is faster): {run.cpu_checks[-1]:.2f} s")
    say(f"command: {command.strip()}")

    say("\nDemo stores (cached in bench/.cache; built when missing):")
    dbs, metas = {}, {}
    for n in sizes:
        t = time.perf_counter()
        dbs[n], metas[n] = common.demo_db(n, fresh=args.fresh)
        m = metas[n]
        say(f"  {n:>9,} episodes: {m['counts'].get('audits', 0):,} audits, "
            f"{m['change_log_rows']:,} change-log rows, {m['bytes'] / 2**20:,.0f} MiB "
            + (f"(built in {m['seconds']:.1f} s)" if m["built_now"]
               else f"(cached; built in {m['seconds']:.1f} s on {m['built_on']})")
            + f" [{time.perf_counter() - t:.1f} s]")
    big = max(sizes)
    scratch: list = []

    def work():  # one scratch copy of the largest store, for the benchmarks that write
        if not scratch:
            scratch.append(common.work_copy(dbs[big], "work.db"))
        return scratch[0]

    steps = {
        "report": lambda: report.run(run, dbs, repeats=args.repeats),
        "batch": lambda: batch.run(run, dbs[min(sizes)]),
        "form": lambda: form.run(run, dbs[big], repeats=2 if args.quick else 5),
        "save": lambda: saving.run(run, work(), saves=5 if args.quick else 60),
        "select": lambda: selection.run(run, work(), metas[big], dbs[big], quick=args.quick),
        "import": lambda: selection.run(run, None, metas[big], dbs[big], quick=args.quick,
                                        parts=("import",)),
        "draw": lambda: postgresql.draw_alone(run, work(), dbs[big], quick=args.quick),
        "team": lambda: team.run(run, dbs[min(sizes)],
                                 **({"auditors": 2, "rounds": 1} if args.quick
                                    else {"auditors": args.auditors}),
                                 browsers=args.browsers),
        "postgresql": lambda: postgresql.run(run, dbs, work(), quick=args.quick,
                                             repeats=args.repeats),
        "report-postgresql": lambda: postgresql.run(run, dbs, None, quick=args.quick,
                                                    repeats=args.repeats, parts=("report",)),
    }
    say("\n  " + common.header())
    for name in (*STEPS, *ALONE):
        if name in only and ALONE.get(name) not in only:
            try:
                steps[name]()
            except Exception as e:  # one broken benchmark must not hide the others' figures
                run.add(Figure(name, None, "", "", False, note=f"error: {type(e).__name__}: {e}"))
    for path in scratch:  # the scratch copy is as big as the largest store: not kept
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return finish(run, command, args.record)


def finish(run: Run, command: str, record: bool) -> int:
    if run.cpu_checks:  # not in --quick runs
        run.cpu_checks.append(common.cpu_check())
        say(f"CPU check at the end: {run.cpu_checks[-1]:.2f} s")
    failed = [f for f in run.figures if f.passed is False]
    passed = [f for f in run.figures if f.passed]
    minutes = (time.time() - run.started) / 60
    say(f"\n{len(passed)} passed, {len(failed)} failed "
        f"({sum(f.passed is None for f in run.figures)} figures without a target); "
        f"{minutes:.1f} minutes")
    (common.CACHE / "last-run.json").write_text(json.dumps(
        [f.__dict__ for f in run.figures], indent=1))
    if record:
        write_results(run, command, minutes)
    return 1 if failed else 0


def write_results(run: Run, command: str, minutes: float) -> None:
    lines = [
        "# Benchmark results", "",
        f"Recorded by `{command.strip()}` (`make bench` runs `python -m bench`).", "",
        f"- Date: {dt.datetime.now():%Y-%m-%d %H:%M} (machine clock)",
        f"- Machine: {common.machine()}",
        f"- Whole run: {minutes:.1f} minutes",
        "- CPU check (a fixed 10-million-step Python loop, at the start and the end): "
        + " s, ".join(f"{c:.2f}" for c in run.cpu_checks) + " s", "",
        "```", "  " + common.header(), *("  " + common.row(f) for f in run.figures), "```", "",
    ]
    path = common.BENCH / "RESULTS.md"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = old[old.index("## Notes"):] if "## Notes" in old else ""  # kept: written by hand
    path.write_text("\n".join(lines) + notes, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
