"""The ``ehkit`` command: thin calls of ehkit functions that notebooks and tests call too.

Each command is one ``_add_<name>(sub)`` function that declares its arguments and sets
``run``; ``main`` lists them in COMMANDS. Errors meant for a person (EhkitError) print as
one line and exit 2, and so does SQLite's error for a damaged, full, busy or read-only
store; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys

from . import __version__, home
from .errors import EhkitError


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database file, or a postgresql:// URL (default: $EHKIT_DB, else "
                   "data/ehkit.db in the working folder, or in this folder outside one)")


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

    from . import anchors, demo
    from . import db as store
    from .postgres import shown

    url = store.postgres_url(args.db)
    if url and args.force:
        raise EhkitError("--force replaces a SQLite file: ehkit never empties a PostgreSQL "
                         "database; make a new one (createdb) and give its URL")
    path = store.db_path(args.db)
    if url:
        path = None  # demo data goes into an empty database; no anchors file beside it
    elif path.exists():
        if not args.force:
            raise EhkitError(f"{path} already exists: use --force to replace it, or another --db")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    database = store.connect(url or path)
    with tqdm(total=args.episodes, unit="episode", desc="demo data", disable=None) as bar:
        counts = demo.generate(database, episodes=args.episodes, seed=args.seed, until=args.until,
                               years=args.years, audits_per_episode=args.audits_per_episode,
                               progress=bar.update)
    if path:
        anchors.start_anew(database, path)  # where another store was anchored: a new line
    database.close()
    print(f"{shown(url) if url else path}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    return 0


# -- ehkit report ----------------------------------------------------------------------------
def _add_report(sub) -> None:
    p = sub.add_parser("report", help="run a report notebook and export it as HTML",
                       description="Execute a report notebook with papermill and write "
                       "reports/<kind>-<period>-<audience>.html and .figures.csv.")
    p.add_argument("kind", choices=["monthly", "quarterly", "annual", "all"],
                   help="which report; all: every report due for --period, in parallel")
    _db_arg(p)
    p.add_argument("--period", help="2026-11 (monthly), 2026Q3 (quarterly), 2026 or 2026-27 "
                   "(annual); default: the last full period in the data")
    p.add_argument("--audience", default="board",
                   help="head_of_service, board or lscb (default board)")
    p.add_argument("--out", help="output folder (default reports/ in the working folder)")
    p.add_argument("--jobs", type=int, help="with all: reports run at once (default: cores)")
    p.add_argument("--notebooks", metavar="DIR",
                   help="a folder of report notebooks (default: the working folder's "
                   "notebooks/, else ehkit's)")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from . import reports

    if args.kind == "all":
        return _run_report_all(args)
    result = reports.run(args.kind, db=args.db, period=args.period, audience=args.audience,
                         out_dir=args.out or home.reports_dir(), notebooks=args.notebooks)
    print(f"figures: {result.figures}")
    print(f"report:  {result.html}")
    return 0


def _run_report_all(args) -> int:
    from tqdm import tqdm

    from . import reports

    if not args.period:
        raise EhkitError("report all needs --period (a month, a quarter like 2026Q3, or a year)")
    jobs = reports.due(args.period)
    with tqdm(total=len(jobs), unit="report", desc=f"reports for {args.period}",
              disable=None) as bar:
        outcomes = reports.run_all(args.period, db=args.db, out_dir=args.out or home.reports_dir(),
                                   jobs=args.jobs, notebooks=args.notebooks, progress=lambda _: bar.update(1))
    print(reports.summary_table(outcomes))
    failed = [o for o in outcomes if o.error]
    if failed:
        print(f"ehkit: error: {len(failed)} of {len(outcomes)} report(s) failed", file=sys.stderr)
    return 1 if failed else 0


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
    p.add_argument("--out", help="folder (default reports/letters in the working folder)")
    p.add_argument("--on", type=_date, help="the letter's date (default: today)")
    p.add_argument("--signed-by", type=int, metavar="PRACTITIONER_ID",
                   help="who signs it (default: the Early Help Coordinator)")
    p.add_argument("--templates", metavar="DIR",
                   help="a folder with the council's own letter.html.j2 / letter.txt.j2")
    p.set_defaults(run=_run_letter)


def _run_letter(args) -> int:
    from . import after_audit
    from . import db as store

    html, text = after_audit.draft_letter(store.connect(args.db, must_exist=True), args.audit_id,
                                          out_dir=args.out or home.reports_dir("letters"), on=args.on,
                                          signed_by_id=args.signed_by,
                                          template_dir=args.templates)
    print(f"letter: {html}\n        {text}")
    return 0


def _add_feedback(sub) -> None:
    p = sub.add_parser("feedback", help="service-user feedback: import from CSV",
                       description="Service-user feedback from children, young people, "
                       "parents and carers.")
    fb = p.add_subparsers(title="feedback commands", metavar="ACTION", required=True)
    i = fb.add_parser("import", help="import feedback from a CSV file",
                      description="Import feedback rows from CSV or .xlsx, as every import: "
                      "bad rows go to reports/imports/<file>-rejects.csv (row, code, field, "
                      "value, reason, the row's cells). Exits 0 when every row was imported, "
                      "1 when any was rejected, 2 when the file was refused (nothing imported).")
    i.add_argument("file", metavar="FILE")
    _db_arg(i)
    i.add_argument("--rejects-dir",
                   help="folder for the rejects file (default reports/imports in the working folder)")
    i.set_defaults(run=_run_feedback_import)


def _run_feedback_import(args) -> int:
    from . import db as store
    from . import service_user_feedback as feedback

    rejects = args.rejects_dir or home.reports_dir("imports")
    summary = feedback.import_service_user_feedback(store.connect(args.db, must_exist=True),
                                                    args.file, rejects_dir=rejects)
    print(summary)
    return summary.exit_code


# -- ehkit check / backup / history (data safety) -------------------------------------------
def _add_check(sub) -> None:
    p = sub.add_parser("check", help="check the database, its change log and its data quality",
                       description="Opens the store read-only and changes nothing in it. "
                       "Runs SQLite's integrity and foreign-key checks, checks the migrations "
                       "and triggers, verifies the change log's hash chain, the heads anchored "
                       "in backups/ehkit-anchors.txt, and that the data matches the log, and "
                       "applies the data-quality rules. Prints each finding with its rule code "
                       "and where it is; exits 1 if there are any. A sound log's head is "
                       "added to the anchor file when that folder exists.")
    _db_arg(p)
    p.add_argument("--quick", action="store_true",
                   help="skip rebuilding every row from the change log (faster on big stores)")
    p.add_argument("--today", type=_date, help="the date that decides what is past due")
    p.add_argument("--against", action="append", metavar="BACKUP_OR_HEAD",
                   help="an earlier backup file, or a chain head ID:HASH noted before, that "
                   "the change log must still extend (repeatable)")
    p.set_defaults(run=_run_check)


def _run_check(args) -> int:
    from . import check

    found = check.run(args.db, replay=not args.quick, today=args.today, against=args.against)
    return 1 if found else 0


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
    for leftover in made.leftovers_removed:
        print(f"removed {leftover}, a copy an interrupted backup left half-written")
    print(f"{made.path} ({made.bytes:,} bytes, change log {made.change_log_rows:,} rows, "
          f"chain head {made.chain_head or '-'})")
    return 0


def _add_copy(sub) -> None:
    p = sub.add_parser("copy", help="copy a store, change log included, into PostgreSQL",
                       description="Copies the SQLite store into an empty PostgreSQL "
                       "database (README, PostgreSQL): every row, the change log with its "
                       "hashes, all in one transaction, verified before it is kept.")
    p.add_argument("--from", dest="source", required=True, metavar="FILE",
                   help="the SQLite store to copy (it is only read)")
    p.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="postgresql://LOGIN@HOST/DATABASE: an empty database")
    p.set_defaults(run=_run_copy)


def _run_copy(args) -> int:
    from . import copying

    print(copying.copy(args.source, args.target))
    return 0


def _add_history(sub) -> None:
    p = sub.add_parser("history", help="show an audit's history from the change log",
                       description="Who changed what and when in one audit. With --at, the "
                       "audit as it stood at that time, rebuilt from the change log.")
    _db_arg(p)
    p.add_argument("audit_id", type=int, metavar="AUDIT_ID")
    p.add_argument("--at", help="a time like '24/11/2026 14:30' (the clock here, as the "
                   "history prints it) or 2026-11-24T14:30:00Z (UTC)")
    p.set_defaults(run=_run_history)


def _run_history(args) -> int:
    from . import history

    return history.run(args.db, args.audit_id, at=args.at)


# -- ehkit serve ---------------------------------------------------------------------------
def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="start the auditor's app (Voila) on this machine",
                       description="Serve a form notebook with Voila on 127.0.0.1 and print its "
                       "URL. Closed by default: localhost only, a fresh token, no tracebacks or "
                       "sources, preheated kernels so the form opens at once.")
    _db_arg(p)
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--notebook", default="audit",
                   help="which form: a notebook name in notebooks/ (the working folder's, else "
                   "ehkit's; default audit)")
    p.add_argument("--no-token", action="store_true",
                   help="no token (only behind a login such as JupyterHub)")
    p.add_argument("--no-preheat", action="store_true",
                   help="start each page's kernel on request instead of keeping one ready")
    p.add_argument("--pool-size", type=int, default=1,
                   help="preheated kernels kept ready (default 1)")
    p.add_argument("--hub", action="store_true",
                   help="run as the JupyterHub service of deploy/jupyterhub_config.py: the "
                   "hub's login instead of a token, each form recorded under that login "
                   "(started by the hub, not by hand)")
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    from . import serve

    cfg = serve.configure(args.db, notebook=args.notebook, port=args.port,
                          no_token=args.no_token, preheat=not args.no_preheat,
                          pool_size=args.pool_size, hub=args.hub)
    return serve.run(cfg)


# -- ehkit audit ---------------------------------------------------------------------------
def _add_audit(sub) -> None:
    p = sub.add_parser("audit", help="work with saved audits (print the record)")
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    pr = actions.add_parser("print", help="write the printable record of an audit",
                            description="Write reports/audits/<EHM>-<date>-audit-<number>.html,"
                            " laid out like the paper tool, and print the case note (guidance 2).")
    _db_arg(pr)
    pr.add_argument("audit_id", type=int, metavar="ID")
    pr.add_argument("--out", help="folder (default reports/audits in the working folder)")
    pr.set_defaults(run=_run_audit_print)


def _run_audit_print(args) -> int:
    from . import audits
    from . import db as store

    database = store.connect(args.db, must_exist=True)
    path = audits.print_record(database, args.audit_id,
                               out_dir=args.out or home.reports_dir("audits"))
    print(path)
    print(audits.case_note(database, args.audit_id))
    return 0


# -- ehkit import ---------------------------------------------------------------------------
def _add_import(sub) -> None:
    p = sub.add_parser("import", help="import episodes, practitioners or agencies from a "
                       "case-system export (CSV or .xlsx)",
                       description="Check every row, write the valid ones in one transaction "
                       "and the rejected ones (row, rule, reason, original values) to "
                       "reports/imports/<file>-rejects.csv. Re-importing a file changes nothing. "
                       "Exits 0 when every row was imported, 1 when any was rejected, 2 when "
                       "the file was refused (nothing imported).")
    p.add_argument("kind", choices=["episodes", "practitioners", "agencies"])
    p.add_argument("file", metavar="FILE", help=".csv (UTF-8 or Windows-1252) or .xlsx")
    _db_arg(p)
    p.add_argument("--mapping", help="mapping file: a name in ehkit/mappings (default, "
                   "example_ehm) or a path to a .toml file (default: default)")
    p.add_argument("--create-agencies", action="store_true",
                   help="episodes: create lead agencies the store does not know")
    p.add_argument("--rejects-dir",
                   help="where the rejects file goes (default reports/imports in the working folder)")
    p.set_defaults(run=_run_import)


def _run_import(args) -> int:
    from tqdm import tqdm

    from . import anchors, cases
    from . import db as store

    url = store.postgres_url(args.db)  # a database server keeps no anchors file beside it
    path = None if url else store.db_path(args.db)
    new = path is not None and (not path.exists() or path.stat().st_size == 0)
    database = store.connect(url or path)
    extra = {"create_agencies": args.create_agencies} if args.kind == "episodes" else {}
    if args.create_agencies and args.kind != "episodes":
        raise EhkitError("--create-agencies is for `ehkit import episodes`")
    with tqdm(unit="row", desc=f"checking {args.kind}", disable=None, leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
            if done == total:
                bar.set_description(f"writing {args.kind}")

        summary = cases.IMPORTERS[args.kind](database, args.file, mapping=args.mapping,
                                             rejects_dir=args.rejects_dir or home.reports_dir("imports"),
                                             progress=progress, **extra)
    if new:
        anchors.start_anew(database, path)  # where another store was anchored: a new line
    print(summary)
    return summary.exit_code


# -- ehkit sample ---------------------------------------------------------------------------
def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw (or show) a month's audit list; record requests",
                       description="Draw the month's cases as the framework says (random "
                       "council, partner and closed cases, drifting cases, requests), "
                       "with an auditor and due date each. A month already drawn is shown as "
                       "stored unless --redraw --reason is given.")
    _db_arg(p)
    p.add_argument("--month", help="the month, like 2026-11 (default: this month)")
    p.add_argument("--seed", type=int, help="random seed (default: a new one, stored)")
    p.add_argument("--redraw", action="store_true", help="draw the month again (needs --reason)")
    p.add_argument("--reason", dest="redraw_reason", metavar="TEXT",
                   help="why the month is drawn again")
    p.add_argument("--export", metavar="FILE", help="also write the list to a .csv or .xlsx file")
    p.set_defaults(run=_run_sample)
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=False)
    r = actions.add_parser("request", help="a lead professional asks for a case to be audited")
    # SUPPRESS: `ehkit sample --db X request ...` keeps the X given before the action
    r.add_argument("--db", default=argparse.SUPPRESS,
                   help="database file (default: $EHKIT_DB, else data/ehkit.db)")
    r.add_argument("ehm", metavar="EHM", help="the case's EHM number")
    r.add_argument("--reason", dest="request_reason", required=True, metavar="TEXT",
                   help="why (e.g. progress is not being made)")
    r.add_argument("--by", help="who asked: practitioner id or name (default: the lead "
                   "professional)")
    r.add_argument("--month", dest="request_month", metavar="MONTH",
                   help="the month's list it joins (default: this month)")
    r.set_defaults(run=_run_sample_request)


def _run_sample(args) -> int:
    from . import db as store
    from . import sampling

    if args.redraw != bool(args.redraw_reason):
        raise EhkitError("drawing a month again needs both --redraw and --reason \"...\"")
    database = store.connect(args.db, must_exist=True)
    month = args.month or sampling.month_of(dt.date.today())
    d = sampling.draw(database, month, seed=args.seed, redraw_reason=args.redraw_reason)
    print(sampling.describe(d))
    print(sampling.as_text(sampling.selection(database, month)))
    if args.export:
        print(sampling.export(database, month, args.export))
    return 0


def _run_sample_request(args) -> int:
    from . import db as store
    from . import sampling

    database = store.connect(args.db, must_exist=True)
    r = sampling.request(database, args.ehm, args.request_reason, requested_by=args.by,
                         month=args.request_month)
    print(sampling.describe_request(r))
    return 0


# -- ehkit init / upgrade (installing and upgrading) -----------------------------------------
def _add_init(sub) -> None:
    p = sub.add_parser("init", help="make the service's working folder (settings, templates, "
                       "notebooks)",
                       description="Make a working folder with the service's own copy of the "
                       "settings (ehkit.toml), the audit tool and letter templates, the import "
                       "mappings and the report and form notebooks, plus data/ and reports/. "
                       "ehkit run in that folder (or with EHKIT_HOME set to it) uses its files "
                       "before its own. A file already there is never overwritten.")
    p.add_argument("folder", nargs="?", default=".", metavar="DIR",
                   help="the folder (default: this one)")
    p.add_argument("--check", action="store_true",
                   help="list the folder's files that differ from this ehkit's (after an "
                   "upgrade); exit 1 when any does")
    p.set_defaults(run=_run_init)


def _run_init(args) -> int:

    if args.check:
        found = home.differences(args.folder)
        for d in found:
            print(f"{d.path}: {d.why}")
        if not found:
            print(f"{args.folder}: every file is as ehkit {__version__} ships it")
        return 1 if found else 0
    added = home.init(args.folder)
    print(f"{args.folder}: the working folder for ehkit {__version__}; "
          + (f"added {', '.join(added)}" if added else "nothing to add (your files are kept)"))
    return 0


def _add_upgrade(sub) -> None:
    p = sub.add_parser("upgrade", help="upgrade the store to this ehkit (after a backup)",
                       description="Apply the store's pending migrations after backing it up "
                       "(backups/ beside it), and say what changed. Any command does this the "
                       "first time it opens the store after ehkit is upgraded; a store written "
                       "by a newer ehkit is refused.")
    _db_arg(p)
    p.set_defaults(run=_run_upgrade)


def _run_upgrade(args) -> int:
    from . import db as store

    path = store.location(args.db)
    database = store.connect(path, must_exist=True, migrate=False)
    try:
        print(store.upgrade(database, path))
    finally:
        database.close()
    folder = home.home()
    differ = home.differences(folder) if folder else []
    if differ:
        print(f"{len(differ)} file(s) in the working folder {folder} differ from ehkit "
              f"{__version__}'s: `ehkit init --check {folder}` lists them")
    return 0


def _add_recount(sub) -> None:
    p = sub.add_parser("recount", help="count the episodes' monthly counts afresh",
                       description="The reports read the episodes' figures from monthly counts "
                       "the store keeps as episodes change. When `ehkit check` finds them "
                       "differ from the episodes (DB-COUNTS: the store changed outside ehkit), "
                       "this makes their triggers again and counts every episode afresh. It "
                       "changes no data, and the change log not at all.")
    _db_arg(p)
    p.set_defaults(run=_run_recount)


def _run_recount(args) -> int:
    from . import db as store
    from . import episode_counts

    database = store.connect(store.location(args.db), must_exist=True)
    try:
        print(f"counted afresh: {episode_counts.afresh(database):,} episodes")
    finally:
        database.close()
    return 0


# -- ehkit rules ---------------------------------------------------------------------------
def _add_rules(sub) -> None:
    p = sub.add_parser("rules", help="list every rule: its code and the message a person reads",
                       description="Every rule ehkit applies (the audit form, the action "
                       "tracker, the imports, service-user feedback, ehkit check) and the "
                       "council's own (settings [rules] modules), one a line: "
                       "code<TAB>applies to<TAB>message.")
    p.add_argument("--markdown", action="store_true", help="as the README's table")
    p.set_defaults(run=_run_rules)


def _run_rules(args) -> int:
    from . import rules

    print(rules.markdown() if args.markdown else "\n".join(map(str, rules.all_rules())))
    return 0


# -- ehkit users -----------------------------------------------------------------------------
def _add_users(sub) -> None:
    p = sub.add_parser("users", help="logins: who may use ehkit, as which practitioner, in "
                       "which roles", description="Map logins to practitioners and roles "
                       "(README, Logins and roles). The first user added must be an admin; "
                       "after that only an admin may change users.")
    acts = p.add_subparsers(title="users commands", metavar="ACTION", required=True)
    a = acts.add_parser("add", help="add a login (again: change its practitioner and roles)")
    _db_arg(a)
    a.add_argument("login", metavar="LOGIN")
    a.add_argument("--practitioner", type=int, metavar="ID",
                   help="the practitioner the login acts as (needed for auditor, moderator)")
    a.add_argument("--role", action="append", required=True, metavar="ROLE",
                   help="a role from settings [roles]; give --role again for another")
    a.set_defaults(run=_run_users_add)
    lst = acts.add_parser("list", help="print every login, its practitioner and roles")
    _db_arg(lst)
    lst.set_defaults(run=_run_users_list)
    i = acts.add_parser("import", help="add or change users from a CSV or .xlsx file",
                        description="Columns login, practitioner, roles (roles separated by "
                        "spaces). Every row is checked first; if any is wrong, none is added.")
    _db_arg(i)
    i.add_argument("file", metavar="FILE")
    i.set_defaults(run=_run_users_import)
    r = acts.add_parser("remove", help="stop a login using ehkit (its history is kept)")
    _db_arg(r)
    r.add_argument("login", metavar="LOGIN")
    r.set_defaults(run=_run_users_remove)


def _users_db(args):
    from . import db as store

    return store.connect(args.db, must_exist=True)


def _run_users_add(args) -> int:
    from . import access

    access.add_user(_users_db(args), args.login, roles=args.role,
                    practitioner_id=args.practitioner)
    print(f"{args.login}: {' '.join(args.role)}")
    return 0


def _run_users_list(args) -> int:
    from . import access

    for u in access.list_users(_users_db(args)):
        who = f"{u['practitioner']} (no. {u['practitioner_id']})" if u["practitioner_id"] else "-"
        print(f"{u['login']}\t{who}\t{u['roles']}" + ("" if u["active"] else "\tremoved"))
    return 0


def _run_users_import(args) -> int:
    from . import access

    n = access.import_users(_users_db(args), args.file)
    print(f"{n} user{'s' if n != 1 else ''} added or changed")
    return 0


def _run_users_remove(args) -> int:
    from . import access

    access.remove_user(_users_db(args), args.login)
    print(f"{args.login} removed (kept in the history)")
    return 0


COMMANDS = [
    _add_init,
    _add_upgrade,
    _add_recount,
    _add_demo,
    _add_report,
    _add_actions,
    _add_letter,
    _add_feedback,
    _add_check,
    _add_backup,
    _add_copy,
    _add_history,
    _add_serve,
    _add_audit,
    _add_import,
    _add_sample,
    _add_rules,
    _add_users,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ehkit",
        description="Early Help case-audit toolkit: audits, selection, reports.",
    )
    parser.add_argument("--version", action="version", version=f"ehkit {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True,
                                dest="command")
    for add in COMMANDS:
        add(sub)
    return parser


def _postgresql_errors() -> tuple:
    """psycopg's errors, once a PostgreSQL store has loaded it (else none can arise)."""
    psycopg = sys.modules.get("psycopg")
    return (psycopg.Error,) if psycopg else ()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (EhkitError, sqlite3.DatabaseError, *_postgresql_errors()) as e:
        if not isinstance(e, EhkitError):
            from .db import person_error

            e = person_error(e)
            if not isinstance(e, EhkitError):
                raise  # not a person's to fix: a bug, keeps its traceback
        print(f"ehkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ehkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
