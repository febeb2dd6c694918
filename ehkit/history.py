"""An audit's history from the change log, and its state at an earlier time rebuilt from it.

The log holds a whole row (as JSON) for each insert and delete, the rows of a bulk insert
together (no row key), and one row per changed field for each update, so
replaying it in order rebuilds any row as it stood at any moment.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlite_utils

from . import access, dates, records
from . import db as store
from .errors import AuditNotFound, EhkitError


def primary_key(db: sqlite_utils.Database, table: str) -> list[str]:
    return store.table_columns(db, table)[1]


def bulk_rows(new: str) -> list[dict]:
    """The rows a bulk insert's change-log row holds (``ehkit.db.logged_together``)."""
    data = json.loads(new)
    return [dict(zip(data["columns"], r, strict=True)) for r in data["rows"]]


class Replay:
    """Rows rebuilt from change-log rows fed in id order: ``state[table][row_key] = row``."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.state: dict[str, dict[str, dict]] = {}
        self._pk: dict[str, list[str]] = {}

    def pk(self, table: str) -> list[str]:
        if table not in self._pk:
            self._pk[table] = primary_key(self.db, table) if table in self.db.table_names() \
                else []
        return self._pk[table]

    def apply(self, table: str, key: str, field: str | None, old, new) -> bool:
        """Apply one change-log row; False when it updates a row the log never inserted."""
        rows = self.state.setdefault(table, {})
        if store.is_bulk(key, field, new):  # the rows, each keyed by its primary key
            pk = self.pk(table)
            for row in bulk_rows(new):
                rows["/".join(str(row[c]) for c in pk)] = row
            return True
        if field is None:  # a whole-row insert (new) or delete (old)
            if new is None:
                rows.pop(key, None)
            else:
                rows[key] = json.loads(new)
            return True
        row = rows.get(key)
        if row is None and field in self.pk(table):
            # The key itself changed: move the row that had the old value.
            pk = self.pk(table)
            old_key = next((k for k, r in rows.items() if r.get(field) == old
                            and "/".join(str({**r, field: new}.get(c)) for c in pk) == key), None)
            if old_key is not None:
                row = rows[key] = rows.pop(old_key)
        if row is None:
            return False
        row[field] = new
        return True


COLUMNS = 'id, at, "user", actor, table_name, row_key, field, old, new, reason'
# A bulk insert's change-log row, cut down to the rows of one audit (those whose column
# {i} is :audit; the second of each is a format string), in each dialect's JSON functions.
# PostgreSQL's ``new`` is a jsonb string holding the JSON text, as SQLite's column holds it.
_MINE = {
    "sqlite": ("json_object('columns', json_extract(new, '$.columns'), 'rows', json(mine))",
               "(SELECT json_group_array(json(r.value)) FROM json_each(new, '$.rows') r"
               " WHERE json_extract(r.value, '$[{i}]') = :audit)", "mine <> '[]'"),
    "postgresql": ("to_jsonb(json_build_object('columns', (new #>> '{}')::json -> 'columns',"
                   " 'rows', mine)::text)",
                   "(SELECT json_agg(r.value) FROM json_array_elements((new #>> '{{}}')::json"
                   " -> 'rows') r WHERE (r.value ->> {i})::bigint = :audit)", "mine IS NOT NULL"),
}


def _about(db: sqlite_utils.Database, audit_id: int, at: str | None = None) -> list[dict]:
    """The change-log rows about an audit, in order, up to ``at``: its own rows, and each
    bulk insert holding rows of it, cut down to those rows (picked out by SQLite's JSON
    functions, so a load of a million rows is not rebuilt in Python to find them)."""
    audit_id = records.record_id(audit_id, "audit", AuditNotFound)
    # Its free text and who wrote it: only for those who may open the audit.
    access.require_audit(db, audit_id, f"The history of audit no. {audit_id}")
    when = " AND at <= :at" if at else ""
    args: dict = {"audit": audit_id, "at": at}
    parts = [f"SELECT {COLUMNS} FROM change_log WHERE audit_id = :audit{when}"]
    for i, table in enumerate(db.table_names()):
        names, _pk, audit_col = store.table_columns(db, table)
        if not audit_col or table in store.UNLOGGED:
            continue
        args[f"t{i}"] = table
        rows, mine, some = _MINE["postgresql" if store.is_postgres(db) else "sqlite"]
        parts.append(
            f'SELECT id, at, "user", actor, table_name, row_key, field, old, {rows} AS new,'
            f" reason FROM (SELECT *, {mine.format(i=names.index(audit_col))} AS mine FROM"
            f" change_log WHERE table_name = :t{i} AND row_key IS NULL AND field IS NULL AND"
            f" new IS NOT NULL{when}) AS bulk WHERE {some}")
    return [dict(r) for r in db.query(" UNION ALL ".join(parts) + " ORDER BY id", args)]


def history(db: sqlite_utils.Database, audit_id: int) -> list[dict]:
    """Every change-log row about this audit (its own row and the rows hanging off it)."""
    return _about(db, audit_id)


def state_at(db: sqlite_utils.Database, audit_id: int, at: str | None = None
             ) -> dict[str, dict[str, dict]]:
    """The audit's rows as they stood at ``at`` (UTC ISO time; None: now), from the log alone.

    Returns ``{table: {row_key: row}}``; tables with no rows at that time are left out.
    """
    at = log_time(at) if at else None
    replay = Replay(db)
    for r in _about(db, audit_id, at):
        replay.apply(r["table_name"], r["row_key"], r["field"], r["old"], r["new"])
    return {t: rows for t, rows in replay.state.items() if rows}


def log_time(text: str) -> str:
    """A time as the change log writes it (UTC, milliseconds). A time with no zone is the
    clock here (Europe/London), as ``ehkit history`` prints it and a person reads it, so a
    line's time can be given back as it was printed (24/11/2026 14:30:05). A time given in
    whole seconds runs to the end of that second: the changes printed at it are included."""
    when = None
    for shape in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            when = dt.datetime.strptime(text.strip(), shape)
            break
        except ValueError:
            pass
    try:
        when = when or dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EhkitError(f"{text!r} is not a time like 24/11/2026 14:30 (the clock here, as "
                         "ehkit history prints it) or 2026-11-24T14:30:00Z (UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dates.UK_CLOCK)
    when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if "." not in text:
        when = when.replace(microsecond=999_000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _short(value, width: int = 60) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _safe(value) -> str:
    # Free text goes to a terminal: show control and direction characters, never obey them.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def format_history(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        who = _safe(r["user"]) + (f" as {_safe(r['actor'])}" if r["actor"] else "")
        if store.is_bulk(r["row_key"], r["field"], r["new"]):
            change = f"{r['table_name']}: {len(json.loads(r['new'])['rows']):,} row(s) added"
        elif r["field"] is None:
            what = "added" if r["new"] is not None else "removed"
            change = f"{r['table_name']} {_safe(r['row_key'])} {what}"
        else:
            change = (f"{r['table_name']} {_safe(r['row_key'])} {r['field']}: "
                      f"{_short(r['old'])!r} -> {_short(r['new'])!r}")
        reason = f"  (reason: {_safe(r['reason'])})" if r["reason"] else ""
        out.append(f"{dates.uk_time(r['at'], seconds=True)}  {who}  {change}{reason}")
    return out


def run(path, audit_id: int, *, at: str | None = None, out=print) -> int:
    database = store.connect(path, read_only=True)  # it only reads: works on read-only media
    try:
        if at:
            state = state_at(database, audit_id, at)
            if not state:
                raise AuditNotFound(f"audit {audit_id} did not exist at {at}")
            out(json.dumps(state, indent=2, ensure_ascii=True, sort_keys=True))
            return 0
        rows = history(database, audit_id)
        if not rows:
            raise AuditNotFound(f"the change log has nothing about audit {audit_id}: check the "
                                "number (ehkit history AUDIT_ID)")
        for line in format_history(rows):
            out(line)
        return 0
    finally:
        database.close()
