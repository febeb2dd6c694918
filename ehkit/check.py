"""``ehkit check``: is the store whole, is its change log untouched, is the data sound?

Each finding has a rule code (so a data officer can look it up), where it is, and what is
wrong. The groups:

- ``DB-*``  the file readable as an ehkit store, SQLite's own checks (``integrity_check``,
  ``foreign_key_check``), and every migration's record in place;
- ``LOG-*`` the change log: its triggers in place and the schema as ehkit left it, its hash
  chain unbroken (a row altered or removed outside ehkit; with a log key, a row added without
  it), every anchored head still held, and the data equal to what the log says happened (a
  change made with the triggers dropped);
- ``DQ-*``  data-quality rules in the spirit of REDCap's: dates out of order, episodes with no
  children, actions past due with no owner, moderations of grades since changed; and the
  audit form's own rules (:mod:`ehkit.rules.audit`: required fields blank on submitted
  audits, grades off the template's scale, audit and action dates), and the council's, each
  under its own code;
- ``FS-*``  where the file lives (a network drive).
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from . import access, anchors, history, netfs, rules
from . import db as store
from . import template as templates
from .dates import uk
from .errors import EhkitError
from .rules import audit as rule
from .settings import get as setting

# The store's own rules; the audit rules this check also asks are in ehkit.rules.audit.
rules.register_all({
    "DB-UNREADABLE": "the file is not readable as an ehkit store (its start overwritten, cut "
                     "short, a text file, an empty file, another program's database)",
    "DB-INTEGRITY": "the database's own integrity check fails (SQLite's integrity_check, "
                    "PostgreSQL's amcheck or page checksums): restore the latest good backup",
    "DB-FOREIGN-KEY": "a row refers to a row of another table that does not exist",
    "DB-MIGRATION": "a migration's change is in the store but its record is missing, so ehkit "
                    "would refuse to open it",
    "DB-COUNTS": "the episodes' monthly counts the reports read differ from the episodes, or "
                 "their triggers are missing or altered: `ehkit recount` counts them afresh",
    "LOG-TRIGGER": "a change-log trigger is missing or altered, or the schema was changed "
                   "outside ehkit",
    "LOG-ALTERED": "a change-log row, or its hash, was changed or added outside ehkit",
    "LOG-REMOVED": "change-log rows were removed outside ehkit",
    "LOG-REWRITTEN": "the change log no longer holds a head anchored or noted before",
    "LOG-ANCHOR": "a line of the anchor file is not an anchor",
    "LOG-KEY": "the change log is sealed with the service's key, which this check cannot read",
    "LOG-UNLOGGED": "data changed outside ehkit: it differs from the change log",
    "DQ-TEMPLATE": "an audit uses a template ehkit cannot load",
    "DQ-DATE-ORDER": "dates out of order: submitted, discussed or moderated before the audit "
                     "date; a child born after the episode ended",
    "DQ-EPISODE-NO-CHILDREN": "an episode has no children",
    "DQ-SECTOR": "an agency's sector is not one of the settings' sectors (renamed or removed "
                 "there), so the figures by sector leave it out",
    "DQ-ACTION-NO-OWNER": "an action is past due, not completed and nobody owns it",
    "DQ-MODERATION-STALE": "a moderated audit's counting moderation was of a grade the audit no "
                           "longer holds",
    "FS-NETWORK": "the store is on a network drive, where SQLite's locking is not safe",
}, kind="check")


@dataclass(frozen=True)
class Finding:
    code: str  # a declared rule's (ehkit rules lists them)
    where: str
    message: str

    def __post_init__(self):
        rules.get(self.code)  # KeyError: a finding of an undeclared rule is a bug

    def __str__(self) -> str:
        return f"{self.code}  {self.where}: {self.message}"


def check(db: sqlite_utils.Database, *, today: dt.date | None = None,
          replay: bool = True, notes: list[str] | None = None) -> list[Finding]:
    """Every finding for the store (empty when all is well).

    ``replay`` also rebuilds every row from the change log and compares it with the data
    (thorough; reads the whole log). ``today`` decides what is past due. ``notes`` (a list)
    gets a line on what PostgreSQL's own checks covered and what they could not.
    """
    try:
        access.require(db, "check")
    except sqlite3.DatabaseError:  # a damaged store: the checks below say so
        pass
    steps = [database_checks, lambda d: postgresql_own_checks(
        d, [] if notes is None else notes, thorough=replay), migration_checks, trigger_checks,
        chain_checks] if store.is_postgres(db) else [
        database_checks, migration_checks, trigger_checks, chain_checks]
    steps += [replay_checks] if replay else []
    # The data-quality rules ask for today's columns: a store an older ehkit left has not all.
    steps += [] if _pending(db) else [counts_checks, lambda d: data_quality(d, today=today)]
    findings: list[Finding] = []
    damaged: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
    if store.is_postgres(db):  # a damaged page of a table or index (SQLSTATE XX001, XX002)
        from psycopg import errors as pg

        damaged += (pg.DataCorrupted, pg.IndexCorrupted)
    for step in steps:
        try:
            findings += step(db)
        except damaged as e:  # a damaged file or page: say so, and go on with the rest
            # On PostgreSQL a step's plan may read an index amcheck has named damaged
            # already (which plan depends on the server's costs): the same damage, not new.
            named = store.is_postgres(db) and any(f.code == "DB-INTEGRITY" for f in findings)
            if _damaged(e) not in findings and not named:
                findings.append(_damaged(e))
    path = None if store.is_postgres(db) else db_file(db)
    if path and (fstype := netfs.network_filesystem(path)):
        findings.append(Finding("FS-NETWORK", path, netfs.warning_text(path, fstype)))
    return findings


def db_file(db: sqlite_utils.Database) -> str | None:
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return row[2] or None if row else None


# -- SQLite's own checks ---------------------------------------------------------------
def _damaged(e: Exception) -> Finding:
    return Finding("DB-INTEGRITY", "database file",
                   f"{e} (restore the latest good backup: see README, Backup)")


def database_checks(db: sqlite_utils.Database) -> list[Finding]:
    if store.is_postgres(db):
        return _postgresql_foreign_key_checks(db)
    out = []
    try:
        problems = [r[0] for r in db.conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as e:
        return [_damaged(e)]
    out += [_damaged(Exception(msg)) for msg in problems if msg != "ok"]
    for table, rowid, parent, _fk in db.conn.execute("PRAGMA foreign_key_check"):
        out.append(Finding("DB-FOREIGN-KEY", f"{table} rowid {rowid}",
                           f"refers to a row of {parent} that does not exist"))
    return out


def _postgresql_foreign_key_checks(db) -> list[Finding]:
    """PostgreSQL keeps its own files whole; what its foreign keys cannot stop is a
    superuser loading rows with their triggers off (session_replication_role). So every
    foreign key is asked, as SQLite's foreign_key_check asks, for rows it does not find."""
    keys = db.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text,"
        " ARRAY(SELECT attname FROM unnest(conkey) WITH ORDINALITY AS k(n, i) JOIN pg_attribute"
        " ON attrelid = conrelid AND attnum = k.n ORDER BY k.i),"
        " ARRAY(SELECT attname FROM unnest(confkey) WITH ORDINALITY AS k(n, i) JOIN pg_attribute"
        " ON attrelid = confrelid AND attnum = k.n ORDER BY k.i)"
        " FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
        " ORDER BY 1, 2").fetchall()
    out = []
    for table, parent, columns, refers_to in keys:
        pk = store.table_columns(db, table)[1]
        given = " AND ".join(f"c.{store._q(c)} IS NOT NULL" for c in columns)
        same = " AND ".join(f"p.{store._q(r)} = c.{store._q(c)}"
                            for c, r in zip(columns, refers_to, strict=True))
        for (key,) in db.execute(
                f"SELECT concat_ws('/', {', '.join(f'c.{store._q(c)}' for c in pk)}) FROM"
                f" {store._q(table)} AS c WHERE {given} AND NOT EXISTS (SELECT 1 FROM"
                f" {store._q(parent)} AS p WHERE {same}) ORDER BY 1"):
            out.append(Finding("DB-FOREIGN-KEY", f"{table} {key}",
                               f"refers to a row of {parent} that does not exist"))
    return out


# -- PostgreSQL's own checks (where SQLite's integrity_check has no meaning) -------------
# amcheck is not a trusted extension: only a superuser may create it, and it revokes its
# functions from PUBLIC, so a login that owns its database but is not a superuser (ehkit's)
# runs it only once the DBA has done both. pg_amcheck, the command, calls the same functions.
AMCHECK = {"bt_index_check": "regclass, boolean",
           "verify_heapam": "regclass, boolean, boolean, text, bigint, bigint"}


def _amcheck_grant(login: str) -> str:
    return ("CREATE EXTENSION IF NOT EXISTS amcheck; " + " ".join(
        f"GRANT EXECUTE ON FUNCTION {f}({args}) TO {login};" for f, args in AMCHECK.items()))


def postgresql_own_checks(db, notes: list[str], *, thorough: bool = True) -> list[Finding]:
    """PostgreSQL's page checksums (failures it recorded) and amcheck: every table's rows
    (verify_heapam) and every B-tree index of ehkit's tables (bt_index_check; ``thorough``:
    each row found in each index too). Adds to ``notes`` what was checked and what could not
    be, and why; a damaged table or index is a finding, never a raw error."""
    from .postgres import _psycopg

    out: list[Finding] = []
    (checksums,) = db.execute("SHOW data_checksums").fetchone()
    (failed,) = db.execute("SELECT coalesce(checksum_failures, 0) FROM pg_stat_database"
                           " WHERE datname = current_database()").fetchone()
    if failed:
        out.append(Finding("DB-INTEGRITY", "database", f"PostgreSQL found {failed} page(s) "
                           "whose checksum failed (restore the latest good backup, and ask "
                           "IT to check the server's disk)"))
    pages = f"page checksums {checksums}" + (", none failed" if checksums == "on" else (
        " (IT can turn them on: pg_checksums --enable, the server stopped)"))
    (login,) = db.execute("SELECT quote_ident(current_user)").fetchone()
    found = db.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid ="
                       " e.extnamespace WHERE e.extname = 'amcheck'").fetchone()
    if found is None:
        notes.append(f"PostgreSQL's own checks: {pages}; the tables and indexes not checked: "
                     "amcheck is not installed in this database. Ask your DBA to run, as a "
                     f"superuser in it: {_amcheck_grant(login)}")
        return out
    schema = store._q(found[0])
    barred = [f for f, args in AMCHECK.items() if not db.execute(
        "SELECT has_function_privilege(?, 'EXECUTE')",
        [f"{schema}.{f}({args})"]).fetchone()[0]]
    if barred:
        notes.append(f"PostgreSQL's own checks: {pages}; the tables and indexes not checked: "
                     f"amcheck is installed but ehkit's login {login} may not run "
                     f"{' or '.join(barred)}. Ask your DBA to run: {_amcheck_grant(login)}")
        return out
    tables = [r[0] for r in db.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
        " AND relkind = 'r' ORDER BY 1")]
    indexes = [r[0] for r in db.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class"
        " t ON t.oid = i.indrelid JOIN pg_am am ON am.oid = c.relam WHERE t.relnamespace ="
        " current_schema()::regnamespace AND t.relkind = 'r' AND am.amname = 'btree'"
        " ORDER BY 1")]
    checks = [(t, f"SELECT blkno, offnum, msg FROM {schema}.verify_heapam(?::regclass)", [])
              for t in tables] + [  # an index's check gives nothing, or raises naming it
        (i, f"SELECT {schema}.bt_index_check(?::regclass, ?)", [thorough]) for i in indexes]
    for name, sql, more in checks:
        try:
            with db.conn.raw.transaction():
                damage = [r for r in db.execute(sql, [store._q(name), *more]) if len(r) == 3]
        except _psycopg().Error as e:
            damage = [(None, None, " ".join(str(e).split())[:300])]
        out += [Finding("DB-INTEGRITY", name + ("" if blk is None else
                                                f" page {blk} item {item}"),
                        f"{msg} (PostgreSQL's amcheck: restore the latest good backup)")
                for blk, item, msg in damage]
    notes.append(f"PostgreSQL's own checks: {pages}; amcheck checked {len(tables)} tables and "
                 f"{len(indexes)} indexes" + (" (and every row in each index)" if thorough else
                                              " (--quick: not every row in each index)"))
    return out


# -- the change log --------------------------------------------------------------------
GUARDS = ("change_log_no_update", "change_log_no_delete")


def trigger_checks(db: sqlite_utils.Database) -> list[Finding]:
    if store.is_postgres(db):
        return _postgresql_trigger_checks(db)
    live = dict(db.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    out = []
    for name in GUARDS:
        if name not in live:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}",
                               "the guard that keeps the change log unchangeable is missing"))
    # A store not yet migrated has the triggers its own ehkit wrote: only their presence counts.
    current = not _pending(db)
    for name, sql in store.change_log_trigger_sql(db).items():
        if name not in live:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}",
                               "missing: changes to that table are not being logged"))
        elif live[name] != sql and current:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}",
                               "altered outside ehkit: the change log may be incomplete"))
    sealed, now = store.schema_sealed(db.conn)
    if not out and sealed and sealed != now:
        out.append(Finding("LOG-TRIGGER", "schema", (
            f"changed outside ehkit (schema version {now}, ehkit left it at {sealed}): a "
            "trigger may have been dropped and recreated, so changes made meanwhile went "
            "unlogged; a full `ehkit check` (no --quick) finds them")))
    return out


def counts_checks(db) -> list[Finding]:
    """The episodes' monthly counts the reports read (:mod:`ehkit.episode_counts`): kept by
    their triggers, and equal to a recount of the episodes."""
    from . import episode_counts

    fix = "`ehkit recount` counts them afresh"
    out = [Finding("DB-COUNTS", f"trigger {name}", f"{state}: the monthly counts the reports "
                   f"read are not kept as episodes change; {fix}")
           for name, state in episode_counts.triggers_amiss(db)]
    for table, key, more in episode_counts.differences(db):
        out.append(Finding("DB-COUNTS", f"{table} {' / '.join(map(str, key))}", (
            f"{abs(more)} episode(s) {'more' if more > 0 else 'fewer'} than the episodes count "
            f"for (changed outside ehkit?): the reports' figures of episodes are wrong; {fix}")))
    return out


def _postgresql_trigger_checks(db) -> list[Finding]:
    """PostgreSQL's triggers compared by what they do (table, function, events, arguments):
    the catalogue keeps no CREATE text. One disabled (ALTER TABLE ... DISABLE TRIGGER) logs
    nothing, as one dropped."""
    from . import postgres

    live, out = postgres.live_triggers(db), []
    for name, made in postgres.expected_triggers(db).items():
        guard = made[1] == "ehkit_log_is_kept"
        lost = ("the change log can be changed" if guard else
                "rows cut from the end of the change log would go unseen"
                if name == postgres.COUNTER_TRIGGER else
                "changes to that table are not being logged")
        if name not in live:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}", f"missing: {lost}"))
        elif live[name][0] != made:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}",
                               "altered outside ehkit: the change log may be incomplete"))
        elif not live[name][1]:
            out.append(Finding("LOG-TRIGGER", f"trigger {name}", f"disabled outside ehkit: {lost}"))
    return out


# -- migrations ------------------------------------------------------------------------
def _pending(db: sqlite_utils.Database) -> list[tuple[int, str, Path]]:
    done = store.recorded_migrations(db.conn)
    return [m for m in store.migrations() if m[0] not in done]


def migration_checks(db: sqlite_utils.Database) -> list[Finding]:
    """A migration not recorded must still apply: try each where nothing is kept (SQLite: on
    a copy of the schema alone; PostgreSQL: in a transaction rolled back).

    One that fails (``duplicate column name``) is in the store without its record, and
    ehkit would refuse to open the store to migrate it.
    """
    pending = _pending(db)
    if not pending:
        return []
    tried = _tried_on_postgresql if store.is_postgres(db) else _tried_on_sqlite
    if failed := tried(db, pending):
        (number, name), why = failed
        return [Finding("DB-MIGRATION", f"migration {number:04d} ({name})", (
            f"not recorded as applied, yet it cannot be applied ({why}): its change is "
            "in the store without its record, and ehkit will refuse to open it. "
            f"{store.RESTORE_ADVICE.capitalize()}"))]
    return []


def _tried_on_sqlite(db, pending) -> tuple[tuple[int, str], str] | None:
    schema = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for (sql,) in db.conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
                "'sqlite_%' ORDER BY type = 'table' DESC, rowid"):
            schema.execute(sql)
        for number, name, f in pending:
            try:
                for statement in store._statements(f.read_text(encoding="utf-8")):
                    schema.execute(statement)
            except sqlite3.DatabaseError as e:
                return (number, name), str(e)
    finally:
        schema.close()
    return None


def _tried_on_postgresql(db, pending) -> tuple[tuple[int, str], str] | None:
    """Its DDL is transactional: each twin run in one transaction that is then rolled back
    (``ehkit check`` opens the store read-only; this transaction alone may write)."""
    import psycopg

    from . import postgres

    for number, name, f in pending:
        twin = postgres.SCHEMA_DIR / f.name
        if not twin.exists():
            return (number, name), (
                "the schema PostgreSQL stores are made from holds it already"
                if number <= postgres.baseline_number() else "it has no PostgreSQL version")
    failed = None
    try:
        with db.conn.raw.transaction():
            db.execute("SET TRANSACTION READ WRITE")
            for number, name, f in pending:
                try:
                    db.execute((postgres.SCHEMA_DIR / f.name).read_text(encoding="utf-8"))
                except psycopg.Error as e:
                    failed = (number, name), " ".join(str(e).split())
                    break
            raise psycopg.Rollback()  # always: nothing tried is kept
    except psycopg.Error as e:  # the transaction itself refused (a standby, say)
        failed = failed or ((pending[0][0], pending[0][1]), " ".join(str(e).split()))
    return failed


def chain_checks(db: sqlite_utils.Database) -> list[Finding]:
    """Recompute the hash chain; find rows altered or removed outside ehkit.

    Once the service keeps a log key, every row after the first keyed one must be keyed:
    a row added later with a plain hash, however well computed, is found.
    """
    out: list[Finding] = []
    prev_id, prev_hash, broken_by_gap = 0, None, False
    key, keyed = store.log_key(), False
    rows = db.conn.execute(
        'SELECT id, at, "user", actor, table_name, row_key, audit_id, field, old, new, reason,'
        " hash FROM change_log ORDER BY id")
    for row in rows:
        rid, fields, stored = row[0], row[1:11], row[11]
        if rid != prev_id + 1:
            out.append(_removed(prev_id + 1, rid - 1))
            broken_by_gap = True
        now_keyed = str(stored).startswith(store.KEYED)
        if now_keyed and key is None:
            return [*out, Finding("LOG-KEY", f"change_log id {rid}", (
                "from here the log is sealed with the service's key, which this check cannot "
                "read: run `ehkit check` as the service account (EHKIT_LOG_KEY)"))]
        if keyed and not now_keyed and not broken_by_gap:
            out.append(Finding("LOG-ALTERED", f"change_log id {rid}", (
                "added outside ehkit: its hash is not sealed with the service's key, as every "
                "row after the first sealed one is")))
        elif not _hash_ok(prev_hash, fields, stored, key) and not broken_by_gap:
            out.append(Finding("LOG-ALTERED", f"change_log id {rid}",
                               "this row, or its hash, was changed outside ehkit (its hash does "
                               "not follow from its content and the row before)"))
        keyed = keyed or now_keyed
        prev_id, prev_hash, broken_by_gap = rid, stored, False
    seq = _log_counter(db)
    if seq and seq > prev_id:
        out.append(_removed(prev_id + 1, seq))
    elif seq is None and prev_id:
        counter = "change_log_counter" if store.is_postgres(db) else "sqlite_sequence"
        out.append(Finding("LOG-REMOVED", counter,
                           "the change log's row counter was removed outside ehkit"))
    return out


def _log_counter(db) -> int | None:
    """The ids the change log has given out (None: its counter is gone). AUTOINCREMENT keeps
    it in sqlite_sequence; PostgreSQL in change_log_counter."""
    if store.is_postgres(db):
        from . import postgres

        return postgres.log_counter(db)
    row = db.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'").fetchone()
    return row[0] if row else None


def _hash_ok(prev: str | None, fields: tuple, stored: str, key: bytes | None) -> bool:
    key = key if str(stored).startswith(store.KEYED) else None
    if store.chain_hash(prev, *fields, key=key) == stored:
        return True
    # Stores made before migration 0040 hashed a one-column key as the number it was.
    row_key = fields[4]
    return (isinstance(row_key, str) and row_key.isdigit() and row_key == str(int(row_key))
            and store.chain_hash(prev, *fields[:4], int(row_key), *fields[5:], key=key) == stored)


def _removed(first: int, last: int) -> Finding:
    ids = f"id {first}" if first == last else f"ids {first}-{last}"
    return Finding("LOG-REMOVED", f"change_log {ids}",
                   f"{last - first + 1} change-log row(s) removed outside ehkit")


def against_head(db: sqlite_utils.Database, row_id: int, expected: str, source: str
                 ) -> list[Finding]:
    """The log must still hold ``expected`` at ``row_id`` (a chain head noted elsewhere).

    Without a secret key anyone who knows the hashing could rewrite the whole log
    consistently; a head kept outside the database (a backup, an email) catches that.
    """
    row = db.conn.execute("SELECT hash FROM change_log WHERE id = ?", [row_id]).fetchone()
    if row is None:
        return [Finding("LOG-REWRITTEN", f"change_log id {row_id}",
                        f"missing, but {source} has it: the log was cut back")]
    if row[0] != expected:
        return [Finding("LOG-REWRITTEN", f"change_log id {row_id}",
                        f"its hash differs from {source}: the log was rewritten since")]
    return []


def against_backup(db: sqlite_utils.Database, backup_file) -> list[Finding]:
    """The live log must extend the log in an earlier copy of the database."""
    if not Path(backup_file).is_file():
        raise EhkitError(f"no backup file at {backup_file} (give a file `ehkit backup` made, "
                         "or a chain head as ID:HASH)")
    try:
        con = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT id, hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise EhkitError(f"{backup_file} is not an ehkit database ({e})") from None
    return against_head(db, row[0], row[1], f"the backup {backup_file}") if row else []


def anchor_checks(db: sqlite_utils.Database, file: Path) -> list[Finding]:
    """The log must still hold every head anchored for this store in ``file``."""
    if not file.is_file():
        return []
    found, bad = anchors.read(file)
    out = [Finding("LOG-ANCHOR", f"{file} line {n}", "not an anchor (when, store, row id, "
                   "hash): the anchor file was edited; keep it append-only") for n in bad]
    mine = anchors.identity(db)
    binding = anchors.binding(found, mine)
    if found and not binding:
        return [*out, Finding("LOG-REWRITTEN", "change_log id 1", (
            f"{file} anchors heads of this store's log, but not of a log that begins with "
            "this first row: the log was rewritten from the start (or the file belongs to "
            "another store)"))]
    failing = [a for a in binding if against_head(db, a.row_id, a.hash, "")]
    if failing:
        first = min(failing, key=lambda a: a.row_id)
        more = f" ({len(failing) - 1} later anchor(s) fail too)" if len(failing) > 1 else ""
        out += [Finding(f.code, f.where, f.message + more) for f in
                against_head(db, first.row_id, first.hash,
                             f"the anchor of {first.when} in {file}")]
    return out


def head(db: sqlite_utils.Database) -> tuple[int, str | None]:
    """The chain head (last id, its hash): note it elsewhere to detect a rewritten log."""
    row = db.conn.execute("SELECT id, hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, None)


def replay(db: sqlite_utils.Database, table: str) -> tuple[dict[str, dict], list[Finding]]:
    """Rebuild ``table``'s rows {row_key: row} from the change log alone."""
    rebuilt = history.Replay(db)
    problems: list[Finding] = []
    for rid, key, field, old, new in db.conn.execute(
            "SELECT id, row_key, field, old, new FROM change_log WHERE table_name = ?"
            " ORDER BY id", (table,)):
        if not rebuilt.apply(table, key, field, old, new):
            problems.append(Finding("LOG-UNLOGGED", f"change_log id {rid}",
                                    f"an update of {table} {key} whose insert is not logged"))
    return rebuilt.state.get(table, {}), problems


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        # json_object keeps 15 significant digits of a REAL
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-14)
        except (TypeError, ValueError):
            return False
    return a == b and type(a) is type(b)


def replay_checks(db: sqlite_utils.Database) -> list[Finding]:
    """Compare each table with the change log's account of it (changes made unlogged)."""
    out: list[Finding] = []
    for table in store.logged_tables(db):
        state, problems = replay(db, table)
        out += problems
        cols = store.table_columns(db, table)[0]
        pk = history.primary_key(db, table)
        select = ", ".join(store._q(c) for c in dict.fromkeys([*pk, *cols]))
        key_sql = " || '/' || ".join(store._q(c) for c in pk)
        for row in _rows(db, f"SELECT CAST({key_sql} AS TEXT), {select} FROM {store._q(table)}"):
            key, values = row[0], dict(zip(dict.fromkeys([*pk, *cols]), row[1:], strict=True))
            logged = state.pop(key, None)
            if logged is None:
                out.append(Finding("LOG-UNLOGGED", f"{table} {key}",
                                   "this row is not in the change log (added outside ehkit)"))
                continue
            # Columns a migration added later have no logged value for older rows.
            changed = [c for c in cols if c in logged and not _same(logged[c], values[c])]
            if changed:
                out.append(Finding("LOG-UNLOGGED", f"{table} {key}",
                                   f"{', '.join(changed)} changed outside ehkit (differs "
                                   "from the change log)"))
        for key in state:
            out.append(Finding("LOG-UNLOGGED", f"{table} {key}",
                               "this row was removed outside ehkit (the change log still has it)"))
    return out


def _rows(db: sqlite_utils.Database, sql: str, args=()) -> Iterator[tuple]:
    yield from db.conn.execute(sql, args)


# -- data quality ----------------------------------------------------------------------
def data_quality(db: sqlite_utils.Database, *, today: dt.date | None = None) -> list[Finding]:
    today = today or dt.date.today()
    out: list[Finding] = []
    out += _required_on_submitted(db)
    out += _grades_on_scale(db)
    out += _dates_in_order(db, today)
    for (eid, ehm) in db.conn.execute(
            "SELECT id, ehm_number FROM episodes e WHERE NOT EXISTS"
            " (SELECT 1 FROM children c WHERE c.episode_id = e.id) ORDER BY id"):
        out.append(Finding("DQ-EPISODE-NO-CHILDREN", f"episodes id {eid} ({ehm})",
                           "an episode with no children: add the child(ren) in the case "
                           "system and import again"))
    out += _agencies_in_sectors_of_the_settings(db)
    out += _moderations_of_grades_since_changed(db)
    out += _council_rules(db)
    for _id, audit_id, number, due in db.conn.execute(
            "SELECT id, audit_id, number, due_date FROM actions WHERE completed_date IS NULL"
            " AND due_date < ? AND owner_id IS NULL AND trim(coalesce(by_whom, '')) = ''"
            " ORDER BY id", (today.isoformat(),)):
        out.append(Finding("DQ-ACTION-NO-OWNER", f"audit {audit_id} action {number}",
                           f"past due ({due}), not completed and nobody owns it: name who "
                           "will do it"))
    return out


def _agencies_in_sectors_of_the_settings(db: sqlite_utils.Database) -> list[Finding]:
    """The settings are the one list of sectors: one renamed there leaves stored agencies in
    the old one until they are imported again."""
    sectors = setting("agencies", "sectors")
    return [Finding("DQ-SECTOR", f"agencies id {aid} ({name})",
                    f"sector {sector!r} is not one of the settings' sectors "
                    f"({', '.join(sectors)}): import the agencies again with their sector "
                    "now, or add it back to the settings")
            for aid, name, sector in db.conn.execute(
                "SELECT id, name, sector FROM agencies ORDER BY id") if sector not in sectors]


def _moderations_of_grades_since_changed(db: sqlite_utils.Database) -> list[Finding]:
    """A moderated audit whose counting moderation agreed with (or changed) a grade the audit
    no longer holds: the moderation was written over a change it never saw (stores written
    before every moderation checked the version the moderator loaded)."""
    sql = """
    WITH latest AS (
      SELECT m.audit_id, m.key, m.original_grade,
             row_number() OVER (PARTITION BY m.audit_id, m.key
                                ORDER BY m.moderated_on DESC, m.id DESC) AS n
      FROM moderations m JOIN audits a ON a.id = m.audit_id WHERE a.status = 'moderated')
    SELECT l.audit_id, l.key, l.original_grade,
           CASE WHEN l.key = 'overall' THEN a.overall_grade ELSE an.grade END AS now
    FROM latest l JOIN audits a ON a.id = l.audit_id
    LEFT JOIN answers an ON an.audit_id = l.audit_id AND an.key = l.key
    WHERE l.n = 1 AND coalesce(l.original_grade, 0) <>
          coalesce(CASE WHEN l.key = 'overall' THEN a.overall_grade ELSE an.grade END, 0)
    ORDER BY l.audit_id, l.key"""  # 0: no grade (SQLite's IS NOT, in words both read)
    return [Finding("DQ-MODERATION-STALE", f"audit {audit_id}, {key}",
                    f"moderated as if the auditor's grade were {was}, but the audit holds "
                    f"{now}: reopen the audit and moderate it again")
            for audit_id, key, was, now in db.conn.execute(sql)]


def _templates(db: sqlite_utils.Database) -> dict[str, templates.Template | None]:
    out = {}
    for (key,) in db.conn.execute("SELECT DISTINCT template FROM audits"):
        try:
            out[key] = templates.load(key)
        except (templates.TemplateError, OSError, KeyError):
            out[key] = None
    return out


def _required_on_submitted(db: sqlite_utils.Database) -> list[Finding]:
    """The audit rules a submitted audit must keep, asked of every submitted audit."""
    out = []
    tpls = _templates(db)
    comments: dict[int, dict[str, str | None]] = {}
    grades: dict[int, dict[str, int | None]] = {}
    for audit_id, key, grade, comment in db.conn.execute(
            "SELECT a.audit_id, a.key, a.grade, a.comment FROM answers a JOIN counted_audits u"
            " ON u.id = a.audit_id"):
        comments.setdefault(audit_id, {})[key] = comment
        grades.setdefault(audit_id, {})[key] = grade
    for audit_id, tkey, grade, reasons in db.conn.execute(
            "SELECT id, template, overall_grade, overall_reasons FROM counted_audits"
            " ORDER BY id"):
        where = f"audit {audit_id}"
        tpl = tpls.get(tkey)
        if tpl is None:
            out.append(Finding("DQ-TEMPLATE", where, f"uses template {tkey!r}, which ehkit "
                               "cannot load: put its file in ehkit/templates"))
            continue
        out += _broken(f"{where}, overall grade", rule.overall_graded, grade)
        out += _broken(f"{where}, overall reasons", rule.overall_reasons_given, reasons)
        for s in tpl.graded_sections:
            section = f"{where}, section {s.key} ({s.title})"
            out += _broken(section, rule.section_graded, grades.get(audit_id, {}).get(s.key))
            out += _broken(section, rule.section_evidenced, tpl, s, comments.get(audit_id, {}))
    return out


def _broken(where: str, check, *args) -> list[Finding]:
    """The finding when ``check`` (a rule of :mod:`ehkit.rules.audit`) is broken here."""
    why = check(*args)
    return [] if why is None else [Finding(check.rule.code, where, why)]


def _grades_on_scale(db: sqlite_utils.Database) -> list[Finding]:
    out = []
    tpls = {k: t for k, t in _templates(db).items() if t}
    queries = [
        ("SELECT u.id, u.template, 'overall grade', u.overall_grade FROM audits u"
         " WHERE u.overall_grade IS NOT NULL"),
        ("SELECT u.id, u.template, 'answer ' || a.key, a.grade FROM answers a"
         " JOIN audits u ON u.id = a.audit_id WHERE a.grade IS NOT NULL"),
        ("SELECT u.id, u.template, 'moderation of ' || m.key, m.moderated_grade"
         " FROM moderations m JOIN audits u ON u.id = m.audit_id"),
    ]
    for sql in queries:
        for audit_id, tkey, what, grade in db.conn.execute(sql + " ORDER BY 1"):
            if tkey in tpls:
                out += _broken(f"audit {audit_id}, {what}", rule.grade_on_scale, tpls[tkey], grade)
    return out
# Dates out of order that only this check asks about; the audit's and its actions' dates
# are rules of ehkit.rules.audit, asked below just as the form and the tracker ask them.
# (where, message, sql returning the where's values, first date, second date, ...)
DATE_ORDER = [
    ("audit {0}", "submitted ({2}) before the audit date ({1})",
     "SELECT id, audit_date, substr(submitted_at, 1, 10) FROM audits"
     " WHERE submitted_at IS NOT NULL AND substr(submitted_at, 1, 10) < audit_date"),
    ("audit {0} action {3}", "discussed ({2}) before the audit date ({1})",
     "SELECT u.id, u.audit_date, a.discussed_date, a.number FROM actions a JOIN audits u"
     " ON u.id = a.audit_id WHERE a.discussed_date < u.audit_date"),
    ("audit {0} moderation of {3}", "moderated ({2}) before the audit date ({1})",
     "SELECT u.id, u.audit_date, m.moderated_on, m.key FROM moderations m JOIN audits u"
     " ON u.id = m.audit_id WHERE m.moderated_on < u.audit_date"),
    ("child {0} (episode {3})", "born ({2}) after the episode ended ({1})",
     "SELECT c.id, e.end_date, c.date_of_birth, e.id FROM children c JOIN episodes e"
     " ON e.id = c.episode_id WHERE c.date_of_birth > e.end_date"),
]


def _dates_in_order(db: sqlite_utils.Database, today: dt.date) -> list[Finding]:
    out = []
    for audit_id, audit_date, start in db.conn.execute(
            "SELECT u.id, u.audit_date, e.start_date FROM audits u JOIN episodes e"
            " ON e.id = u.episode_id ORDER BY u.id"):
        where = f"audit {audit_id}"
        out += _broken(where, rule.audit_date_not_before_episode, audit_date, start)
        out += _broken(where, rule.audit_date_not_in_future, audit_date, today)
    for audit_id, audit_date, number, due, completed in db.conn.execute(
            "SELECT u.id, u.audit_date, a.number, a.due_date, a.completed_date FROM actions a"
            " JOIN audits u ON u.id = a.audit_id ORDER BY u.id, a.number"):
        where = f"audit {audit_id} action {number}"
        out += _broken(where, rule.action_due_after_audit, due, audit_date)
        out += _broken(where, rule.action_completed_not_in_future, completed, today)
        out += _broken(where, rule.action_completed_after_audit, completed, audit_date)
    for where, message, sql in DATE_ORDER:
        for row in db.conn.execute(sql + " ORDER BY 1"):
            out.append(Finding("DQ-DATE-ORDER", where.format(*row),
                               message.format(*map(uk, row))))
    born_later = rules.get("DOB_IN_FUTURE")  # the import's rule, asked of what is stored
    for cid, eid, dob in db.conn.execute(
            "SELECT id, episode_id, date_of_birth FROM children WHERE date_of_birth > ?"
            " ORDER BY id", (today.isoformat(),)):
        out.append(Finding(born_later.code, f"child {cid} (episode {eid})",
                           f"{born_later.message} ({uk(dob)})"))
    return out


def _council_rules(db: sqlite_utils.Database) -> list[Finding]:
    """The council's own audit rules (settings [rules] modules), asked of submitted audits."""
    from . import audits  # only when the council has rules: loading every audit is slow

    if not rules.council_rules():
        return []
    out = []
    for (audit_id,) in db.conn.execute(
            "SELECT id FROM counted_audits ORDER BY id"):
        out += [Finding(r.code, f"audit {audit_id}", why)
                for r, why in rules.council_problems(audits.whole(db, audit_id))]
    return out


# -- for the command -------------------------------------------------------------------
def run(path=None, *, replay: bool = True, today: dt.date | None = None,
        against: list | None = None, out=print) -> int:
    """Check the database at ``path``; print findings; return the number found.

    Opens it read-only and changes nothing in it. ``against``: earlier backups, or noted
    chain heads ``ID:HASH``, the log must extend; the anchors in the backups folder beside
    it are always verified, and a clean log's head is anchored there (if that folder
    exists: a backup made it).
    """
    try:
        database = store.connect(path, read_only=True)
    except store.NotAStore as e:
        out(str(Finding("DB-UNREADABLE", "database file", str(e))))
        out("1 problem(s) found")
        return 1
    try:
        notes: list[str] = []
        findings = check(database, today=today, replay=replay, notes=notes)
        # A PostgreSQL store has no folder beside it for anchors: note its head elsewhere.
        anchor_file = None if store.is_postgres(database) else anchors.default_file(
            store.db_path(path))
        sources = [anchor_file] if anchor_file else []
        for earlier in against or []:
            row_id, _, digest = str(earlier).partition(":")
            if row_id.isdigit() and len(digest.removeprefix(store.KEYED)) == 64:
                findings += against_head(database, int(row_id), digest, f"the noted head {earlier}")
            else:
                findings += against_backup(database, earlier)
                sources.append(Path(earlier).parent / anchors.FILE_NAME)
        for file in dict.fromkeys(p.resolve() for p in sources):
            findings += anchor_checks(database, file)
        for f in findings:
            out(str(f))
        try:
            n, h = head(database)
        except sqlite3.DatabaseError:
            n, h = 0, None
        if pending := _pending(database):
            out(f"(not checked: the data-quality rules. {len(pending)} migration(s) are not yet "
                "applied to this store; any other ehkit command applies them)")
        out(f"change log: {n:,} rows, chain head {n}:{h or '-'} (note it to detect a rewritten "
            "log: ehkit check --against ID:HASH)")
        for note in notes:
            out(f"({note})")
        if not store.is_postgres(database) and not any(f.code.startswith(("DB-", "LOG-")) for f in findings):
            _anchor(database, anchor_file, out)
        out("no problems found" if not findings else f"{len(findings):,} problem(s) found")
        return len(findings)
    finally:
        database.close()


def _anchor(db: sqlite_utils.Database, file: Path, out) -> None:
    """Note the head just verified in the anchor file, when the backups folder is there."""
    anchor = anchors.head_of(db)
    if anchor is None or not file.parent.is_dir():
        return
    try:
        anchors.append(file, anchor)
    except OSError as e:
        out(f"(the verified head could not be added to {file}: {e.strerror})")
