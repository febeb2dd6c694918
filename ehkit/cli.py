"""The ``ehkit`` command: thin calls of ehkit functions that notebooks and tests call too.

Each command is one ``_add_<name>(sub)`` function that declares its arguments and sets
``run``; ``main`` lists them in COMMANDS. Errors meant for a person (EhkitError) print as
one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from . import __version__
from .errors import EhkitError


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database file (default: $EHKIT_DB, else data/ehkit.db)")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-24") from None


# -- ehkit demo ----------------------------------------------------------------------------
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="create a database full of a synthetic Early Help service",
                       description="Generate invented agencies, practitioners, episodes, "
                       "children and audits. The same --seed and --until give the same data.")
    _db_arg(p)
    p.add_argument("--episodes", type=int, default=1500, help="how many episodes (default 1500)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--until", type=_date, help="last day of the data (default: today)")
    p.add_argument("--years", type=int, default=3, help="years of history (default 3)")
    p.add_argument("--audits-per-episode", type=float, default=0.36,
                   help="audits per episode (default 0.36, about 180 a year at 1500 episodes)")
    p.add_argument("--force", action="store_true", help="replace the database if it exists")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from tqdm import tqdm

    from . import db as store
    from . import demo

    path = store.db_path(args.db)
    if path.exists():
        if not args.force:
            raise EhkitError(f"{path} already exists: use --force to replace it, or another --db")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    database = store.connect(path)
    with tqdm(total=args.episodes, unit="episode", desc="demo data", disable=None) as bar:
        counts = demo.generate(database, episodes=args.episodes, seed=args.seed, until=args.until,
                               years=args.years, audits_per_episode=args.audits_per_episode,
                               progress=bar.update)
    print(f"{path}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    return 0


# -- ehkit report ----------------------------------------------------------------------------
def _add_report(sub) -> None:
    p = sub.add_parser("report", help="run a report notebook and export it as HTML",
                       description="Execute a report notebook with papermill and write "
                       "reports/<kind>-<period>-<audience>.html and .figures.csv.")
    p.add_argument("kind", choices=["monthly", "quarterly", "annual"], help="which report")
    _db_arg(p)
    p.add_argument("--period", help="2026-11 (monthly), 2026Q3 (quarterly), 2026 or 2026-27 "
                   "(annual); default: the last full period in the data")
    p.add_argument("--audience", default="board",
                   help="head_of_service, board or lscb (default board)")
    p.add_argument("--out", default="reports", help="output folder (default reports/)")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from . import reports

    result = reports.run(args.kind, db=args.db, period=args.period, audience=args.audience,
                         out_dir=args.out)
    print(f"figures: {result.figures}")
    print(f"report:  {result.html}")
    return 0


# -- ehkit actions / letter / feedback (closing the loop) ----------------------------------
def _add_actions(sub) -> None:
    p = sub.add_parser("actions", help="the action tracker: list overdue actions",
                       description="Recommended actions from audits.")
    acts = p.add_subparsers(title="actions commands", metavar="ACTION", required=True)
    o = acts.add_parser("overdue", help="print overdue actions; exit 1 when any is overdue",
                        description="Print every action overdue on a day (due before it and "
                        "not completed). Exits 1 when any is overdue, so a scheduler can alert.")
    _db_arg(o)
    o.add_argument("--on", type=_date, help="the day to check (default: today)")
    o.set_defaults(run=_run_actions_overdue)


def _run_actions_overdue(args) -> int:
    from . import actions
    from . import db as store

    on = args.on or dt.date.today()
    rows = actions.overdue(store.connect(args.db, must_exist=True), on)
    print(actions.format_overdue(rows, on))
    return 1 if rows else 0


def _add_letter(sub) -> None:
    p = sub.add_parser("letter", help="draft a letter to the author's manager (Inadequate audit)",
                       description="Write the letter offering advice and guidance to the "
                       "assessment author's manager, as HTML and text, for an audit graded "
                       "Inadequate overall. Nothing is emailed.")
    p.add_argument("audit_id", type=int, metavar="ID", help="the audit number")
    _db_arg(p)
    p.add_argument("--out", default="reports/letters", help="folder (default reports/letters)")
    p.add_argument("--on", type=_date, help="the letter's date (default: today)")
    p.add_argument("--signed-by", type=int, metavar="PRACTITIONER_ID",
                   help="who signs it (default: the Early Help Coordinator)")
    p.add_argument("--templates", metavar="DIR",
                   help="a folder with the council's own letter.html.j2 / letter.txt.j2")
    p.set_defaults(run=_run_letter)


def _run_letter(args) -> int:
    from . import db as store
    from . import feedback

    html, text = feedback.draft_letter(store.connect(args.db, must_exist=True), args.audit_id,
                                       out_dir=args.out, on=args.on, signed_by_id=args.signed_by,
                                       template_dir=args.templates)
    print(f"letter: {html}\n        {text}")
    return 0


def _add_feedback(sub) -> None:
    p = sub.add_parser("feedback", help="service-user feedback: import from CSV",
                       description="Service-user feedback from children, young people, "
                       "parents and carers.")
    fb = p.add_subparsers(title="feedback commands", metavar="ACTION", required=True)
    i = fb.add_parser("import", help="import feedback from a CSV file",
                      description="Import feedback rows; bad rows go to FILE.rejects.csv (row, "
                      "field, value, reason). Exits 1 when any row was rejected.")
    i.add_argument("file", metavar="FILE")
    _db_arg(i)
    i.add_argument("--rejects", help="where to write rejected rows (default FILE.rejects.csv)")
    i.set_defaults(run=_run_feedback_import)


def _run_feedback_import(args) -> int:
    from . import db as store
    from . import feedback

    result = feedback.import_service_user_feedback(store.connect(args.db, must_exist=True),
                                                   args.file, rejects_path=args.rejects)
    print(result.summary())
    return 1 if result.rejected else 0


# -- ehkit check / backup / history (data safety) -------------------------------------------
def _add_check(sub) -> None:
    p = sub.add_parser("check", help="check the database, its change log and its data quality",
                       description="Runs SQLite's integrity and foreign-key checks, verifies "
                       "the change log's hash chain and that the data matches it, and applies "
                       "the data-quality rules. Prints each finding with its rule code and "
                       "where it is; exits 1 if there are any.")
    _db_arg(p)
    p.add_argument("--quick", action="store_true",
                   help="skip rebuilding every row from the change log (faster on big stores)")
    p.add_argument("--today", type=_date, help="the date that decides what is past due")
    p.set_defaults(run=_run_check)


def _run_check(args) -> int:
    from . import check

    return 1 if check.run(args.db, replay=not args.quick, today=args.today) else 0


def _add_backup(sub) -> None:
    p = sub.add_parser("backup", help="copy the live database to a dated backup file",
                       description="Safe while auditors are saving (SQLite's backup API). "
                       "With --restore FILE, puts a backup back instead.")
    _db_arg(p)
    p.add_argument("--to", help="folder for the backup (default: backups/ beside the database)")
    p.add_argument("--restore", metavar="FILE", help="restore this backup file as the database")
    p.add_argument("--force", action="store_true",
                   help="with --restore: replace an existing database (it is backed up first)")
    p.set_defaults(run=_run_backup)


def _run_backup(args) -> int:
    from . import backup

    if args.restore:
        before = backup.restore(args.restore, args.db, force=args.force)
        if before:
            print(f"the database as it was before is kept in {before}")
        print(f"restored {args.restore}")
        return 0
    made = backup.backup(args.db, args.to)
    print(f"{made.path} ({made.bytes:,} bytes, change log {made.change_log_rows:,} rows, "
          f"chain head {made.chain_head or '-'})")
    return 0


def _add_history(sub) -> None:
    p = sub.add_parser("history", help="show an audit's history from the change log",
                       description="Who changed what and when in one audit. With --at, the "
                       "audit as it stood at that time, rebuilt from the change log.")
    _db_arg(p)
    p.add_argument("audit_id", type=int, metavar="AUDIT_ID")
    p.add_argument("--at", help="a time like 2026-11-24T14:30:00Z (no zone: UTC)")
    p.set_defaults(run=_run_history)


def _run_history(args) -> int:
    from . import history

    return history.run(args.db, args.audit_id, at=args.at)


COMMANDS = [
    _add_demo,
    _add_report,
    _add_actions,
    _add_letter,
    _add_feedback,
    _add_check,
    _add_backup,
    _add_history,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ehkit",
        description="Early Help case-audit toolkit: audits, selection, reports.",
    )
    parser.add_argument("--version", action="version", version=f"ehkit {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except EhkitError as e:
        print(f"ehkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ehkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
