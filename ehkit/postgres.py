"""PostgreSQL as the store (issue 18): the connection, its schema, its change log.

SQLite stays the embedded default; ``EHKIT_DB`` / ``--db`` given a ``postgresql://`` URL
opens a PostgreSQL store instead (psycopg 3). The design, chosen for the least churn:

- **One adapter, the same calls.** The store code talks to a sqlite-utils ``Database``
  through a few calls. The survey of ``ehkit/`` as this work began (54 modules, 21 of them
  importing sqlite3 or sqlite-utils), by kind: ``conn.execute``/``executemany`` 148,
  ``db.execute`` 80, ``db.query`` 44, ``db[table]`` insert/update/upsert/delete/count 42,
  ``table_names()`` 3. :class:`Database` gives a PostgreSQL connection the same shape:
  ``db.conn.execute`` and ``db.execute`` (``?`` and ``:name`` placeholders become psycopg's
  ``%s`` and ``%(name)s``), ``db.query`` (rows as dicts), ``db[table]`` (:class:`Table`),
  ``db.table_names()``, ``db.view_names()``, ``db.conn.in_transaction``, ``db.close()``.
  So the plain SQL both dialects read alike (most of it: the figures, the views) runs as it
  is. SQLite's own words to replace, counted the same way: ``PRAGMA`` 47,
  ``sqlite_master``/``sqlite_sequence`` 9, ``rowid`` 15, temp tables 12, SQL date functions
  (``strftime``, ``date(x, '+n days')``, ``julianday``) 4, ``json_*``/``group_concat`` 10,
  ``INSERT OR`` 2 (``ON CONFLICT`` 1), ``COLLATE NOCASE``/``LIKE`` 6, ``sqlite3`` errors
  caught 18.
- **Where the SQL must differ, the two versions side by side**, in the function that needs
  them, chosen by :func:`ehkit.db.is_postgres` (e.g. ``ehkit.check``'s change-log counter:
  ``sqlite_sequence`` beside ``change_log_counter``; ``ehkit.db._log_together``'s rows as
  JSON). ``PRAGMA table_info`` becomes ``information_schema.columns``
  (:func:`ehkit.db.table_columns` answers for both); ``rowid`` becomes ``id``.
- **Otherwise, SQL both read alike** (the rule for the slices to come): a condition is a
  comparison, not a bare integer (``WHERE TRUE``, not ``WHERE 1``; ``is_auditor = 1``);
  ``NULLS FIRST`` where a NULL may sort (SQLite puts NULLs first, PostgreSQL last);
  ``"user"`` quoted (in PostgreSQL, bare ``user`` is the database login); ``ON CONFLICT``,
  not ``INSERT OR``; ``lower(x) = lower(?)`` where SQLite's ``NOCASE`` or ``LIKE`` ignore
  case (PostgreSQL's do not); no ``+column`` planner hints in shared SQL.
- **The schema** is ``migrations/postgresql/baseline.sql``: SQLite's as of the newest
  migration, in PostgreSQL's words (dates stay ISO text, checked by ``ehkit_is_date``); the
  views are not copied there but taken from SQLite's migrations (:func:`sqlite_views`).
  A later SQLite migration gets a twin of the same name in that folder; a new PostgreSQL
  store records every migration up to the baseline's as applied. A later migration that
  makes a view again: its twin drops the old, and the view is made from SQLite's words.
- **The change log** is written by one PL/pgSQL trigger function, ``ehkit_log``, on every
  logged table (its columns passed as the trigger's arguments, rebuilt from the live columns
  as SQLite's are), with the same hash chain as :func:`ehkit.db.chain_hash`, so ``ehkit
  check`` verifies both with the same Python. The log refuses UPDATE, DELETE and TRUNCATE.
  The person comes from :func:`transaction`, which names them in the transaction's settings
  (``ehkit.user``, ``ehkit.actor``, ``ehkit.reason``), and again before a write made in an
  ``acting_as`` block inside it (SQLite's triggers ask at each write); ehkit connects with a
  login of its own, and a change made outside ehkit is logged under the database login.
  A bulk insert is logged together in the same JSON as on SQLite, into a table keyed by
  ``id`` (:func:`inserts_set_aside`).
- **A dropped connection** (the server restarted, an idle connection closed) is opened
  again before the next statement outside a transaction (:meth:`Connection.ready`): a form
  left open overnight works on the next click; the click that found it is told in words.
- **Writers take turns** as SQLite's ``BEGIN IMMEDIATE`` makes them: a transaction-scoped
  advisory lock, so the chain never forks and the version checks read what they guard. A
  new row's id is one past the largest, as SQLite gives it (``ehkit_next_id``); the change
  log's, one past its counter or its largest (``ehkit_log_id_after``), and the counter
  (``change_log_counter``) rolls back with its save as SQLite's ``sqlite_sequence`` does (an
  identity sequence does not: a save rolled back left a gap ``ehkit check`` read as rows
  removed). It is written twice a save, not once a log row (migration 0133 says why).
- **The database's collation is C** (text sorts by code point, as SQLite's BINARY does), so
  an ORDER BY gives the same order on both: a new store is made only in such a database.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator

from . import db as store

SCHEMA_DIR = store.MIGRATIONS_DIR / "postgresql"
BASELINE = SCHEMA_DIR / "baseline.sql"
# One view's statement in a migration (view bodies hold no semicolon).
_CREATE_VIEW = re.compile(r"CREATE VIEW (?P<name>\w+) AS\b[^;]*;")
WRITER_LOCK = 4523786  # the advisory lock writers take turns on (the schema's, too)
# PostgreSQL's own indexes, which SQLite has no need of (each made in a migration's twin):
# episodes by end and start date alone, for the open counts (migration 0132); by end date
# and how they ended, by start date and how they began, for the closed and begun counts
# (0134).
OWN_INDEXES = frozenset({"episodes_open_on", "episodes_closed_as", "episodes_began_as"})


_PASSWORD = re.compile(r"(://[^/:@]*):([^/@]*)@")  # a URL's password: after the login


def shown(url: str) -> str:
    """The URL as a person may see it: never its password."""
    return _PASSWORD.sub(r"\1:***@", url)


def password_apart(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (None: it has none), e.g. for
    PGPASSWORD, which libpq reads, where the URL itself is kept somewhere."""
    from urllib.parse import unquote

    m = _PASSWORD.search(url)
    if not m:
        return url, None
    return url[:m.start()] + m[1] + "@" + url[m.end():], unquote(m[2])


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise store.StoreError("a postgresql:// store needs psycopg: pip install "
                               "'ehkit[postgresql]'") from None
    return psycopg


# -- placeholders ----------------------------------------------------------------------
# A literal, quoted name or comment is kept whole (its % doubled); outside them ? and :name
# are ehkit's placeholders (sqlite3's), % is an operator; :: is PostgreSQL's cast.
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::|\?|%|(?<![\w:]):[A-Za-z_]\w*""")


def placeholders(sql: str, named: bool) -> str:
    """sqlite3's placeholders (``?``, ``:name``) as psycopg's (``%s``, ``%(name)s``)."""
    def swap(m: re.Match) -> str:
        t = m.group()
        if t == "?":
            return "%s"
        if t[0] == ":" and t != "::":
            return f"%({t[1:]})s" if named else t
        return t.replace("%", "%%")
    return _TOKENS.sub(swap, sql)


class Connection:
    """A psycopg connection with sqlite3's calls (autocommit outside :func:`transaction`)."""

    def __init__(self, raw, reopen=None):
        self.raw, self.reopen = raw, reopen
        self.named: store.Actor | None = None  # who the open transaction names, if one is open

    def ready(self) -> None:
        """Before a statement: a connection the server dropped (restarted, or an idle
        connection closed) is opened again, outside a transaction, so a form left open
        overnight works on the next click; then :meth:`as_acting`."""
        if self.raw.closed and self.named is None and self.reopen is not None:
            self.raw = self.reopen()
        self.as_acting()

    def name(self, who: store.Actor) -> None:
        """Name the person for the change log, for the rest of the transaction."""
        self.raw.execute("SELECT set_config('ehkit.user', %s, true), set_config('ehkit.actor',"
                         " %s, true), set_config('ehkit.reason', %s, true)",
                         (store._text(who.user), store._text(who.actor) or "",
                          store._text(who.reason) or ""))
        self.named = who

    def as_acting(self) -> None:
        """A write names whoever acts at that moment, as SQLite's triggers ask at each write:
        an ``acting_as`` block entered inside the transaction (a reopen's reason) counts."""
        if self.named is not None and (who := store.current_actor()) != self.named:
            self.name(who)

    def execute(self, sql: str, params=None):
        self.ready()
        if not params:
            return self.raw.execute(sql)
        return self.raw.execute(placeholders(sql, isinstance(params, dict)), params)

    def executemany(self, sql: str, rows):
        """sqlite3's executemany: psycopg sends the rows in a pipeline, not one round trip each."""
        rows = list(rows)
        self.ready()
        cur = self.raw.cursor()
        if rows:
            first = rows[0]
            cur.executemany(placeholders(sql, isinstance(first, dict)), rows)
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


class Database:
    """A PostgreSQL store with the calls ehkit makes of a sqlite-utils Database."""

    dialect = "postgresql"

    def __init__(self, raw, url: str, reopen=None):
        self.conn = Connection(raw, reopen)
        self.url = url
        self._keys: dict[str, list[str]] = {}  # table -> primary key, read once

    def primary_key(self, table: str) -> list[str]:
        """A table's primary key, read from the catalogue once a connection (two catalogue
        queries, about a millisecond: a sixth of what a save costs beyond its rows)."""
        if table in self._keys:
            return self._keys[table]
        key = store.table_columns(self, table)[1]
        if key:  # a table not made yet is asked again
            self._keys[table] = key
        return key

    def execute(self, sql: str, params=None):
        return self.conn.execute(sql, params)

    def query(self, sql: str, params=None) -> Iterator[dict]:
        from psycopg.rows import dict_row

        self.conn.ready()
        cur = self.conn.raw.cursor(row_factory=dict_row)
        if params:
            cur.execute(placeholders(sql, isinstance(params, dict)), params)
        else:
            cur.execute(sql)
        # Made into dicts a batch at a time, not one call per row (at 20,000 rows, half a
        # second of a report's CPU); batches, so a caller streaming a million rows does not
        # hold them all as dicts at once.
        while rows := cur.fetchmany(5000):
            yield from rows

    def __getitem__(self, table: str) -> Table:
        return Table(self, table)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema ="
            " current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")]

    def view_names(self) -> list[str]:
        return [r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema ="
            " current_schema() ORDER BY table_name")]

    def close(self) -> None:
        self.conn.close()


class Table:
    """The calls ehkit makes of a sqlite-utils Table: insert (giving ``last_pk``),
    insert_all, get, rows, update and delete by primary key, upsert and upsert_all, count."""

    def __init__(self, db: Database, name: str):
        self.db, self.name, self.last_pk = db, name, None

    @property
    def _pk(self) -> list[str]:
        return self.db.primary_key(self.name)

    @property
    def count(self) -> int:
        return self.db.execute(f"SELECT count(*) FROM {store._q(self.name)}").fetchone()[0]

    @property
    def rows(self) -> Iterator[dict]:
        """Every row, in primary key order."""
        yield from self.db.query(f"SELECT * FROM {store._q(self.name)} ORDER BY "
                                 f"{', '.join(map(store._q, self._pk))}")

    def insert(self, row: dict, replace: bool = False) -> Table:
        """One row; ``last_pk`` is its primary key (one column: the value). ``replace``
        deletes the row with its primary key first, as SQLite's INSERT OR REPLACE does (and
        so is logged: a delete, then an insert)."""
        pk = self._pk
        if replace and all(c in row for c in pk):
            self.delete([row[c] for c in pk])
        self.db.conn.ready()
        key = self.db.conn.raw.execute(
            self._sql(list(row), f" RETURNING {', '.join(map(store._q, pk))}"),
            list(row.values())).fetchone()
        self.last_pk = key[0] if len(pk) == 1 else tuple(key)
        return self

    def insert_all(self, rows, batch_size: int | None = None) -> Table:
        """Rows as dicts; a key missing from a row is NULL there, as with sqlite-utils
        (``batch_size`` is SQLite's concern: psycopg sends them all in a pipeline)."""
        self._many(list(rows))
        return self

    def upsert(self, row: dict, pk) -> Table:
        return self.upsert_all([row], pk)

    def upsert_all(self, rows, pk) -> Table:
        """Insert each row, or update the row with its primary key: the update is logged as
        one (only the fields that changed), as sqlite-utils' upsert is on SQLite."""
        rows, pk = list(rows), [pk] if isinstance(pk, str) else list(pk)
        columns = [c for c in dict.fromkeys(c for r in rows for c in r) if c not in pk]
        sets = ", ".join(f"{store._q(c)} = EXCLUDED.{store._q(c)}" for c in columns)
        self._many(rows, f" ON CONFLICT ({', '.join(map(store._q, pk))}) DO " +
                     (f"UPDATE SET {sets}" if sets else "NOTHING"))
        return self

    def get(self, pk_values) -> dict:
        """The row with this primary key (a KeyError if none, as sqlite-utils' NotFoundError is)."""
        rows = list(self.db.query(f"SELECT * FROM {store._q(self.name)} WHERE {self._where}",
                                  self._key(pk_values)))
        if not rows:
            raise KeyError(f"no row of {self.name} with key {pk_values!r}")
        return rows[0]

    def update(self, pk_values, updates: dict) -> Table:
        if updates:
            self.db.execute(f"UPDATE {store._q(self.name)} SET "
                            f"{', '.join(f'{store._q(c)} = ?' for c in updates)} WHERE "
                            f"{self._where}", [*updates.values(), *self._key(pk_values)])
        self.last_pk = pk_values
        return self

    def delete(self, pk_values) -> Table:
        self.db.execute(f"DELETE FROM {store._q(self.name)} WHERE {self._where}",
                        self._key(pk_values))
        return self

    @property
    def _where(self) -> str:
        return " AND ".join(f"{store._q(c)} = ?" for c in self._pk)

    @staticmethod
    def _key(pk_values) -> list:
        return list(pk_values) if isinstance(pk_values, list | tuple) else [pk_values]

    def _sql(self, columns: list[str], tail: str = "") -> str:
        return (f"INSERT INTO {store._q(self.name)} ({', '.join(map(store._q, columns))})"
                f" VALUES ({', '.join(['%s'] * len(columns))}){tail}")

    def _many(self, rows: list[dict], tail: str = "") -> None:
        columns = list(dict.fromkeys(c for r in rows for c in r))
        self.db.conn.ready()
        if rows:
            self.db.conn.raw.cursor().executemany(self._sql(columns, tail),
                                                  [[r.get(c) for c in columns] for r in rows])


# -- connecting --------------------------------------------------------------------------
def connect(url: str, *, must_exist: bool = False, migrate: bool = True,
            read_only: bool = False) -> Database:
    """Open (and make or migrate) the PostgreSQL store at ``url``; see :func:`ehkit.db.connect`."""
    key = store.log_key()
    db = Database(_session(url, key, read_only), url,
                  reopen=lambda: _session(url, key, read_only))
    try:
        tables = set(db.table_names())
        if tables and "schema_migrations" not in tables:
            listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise store.NotAStore(f"{shown(url)} is a PostgreSQL database but not an ehkit "
                                  f"store (its tables: {listed}): give the ehkit store's URL")
        if not tables and (must_exist or read_only):
            raise store.DatabaseMissing(
                f"no ehkit store in {shown(url)}: make one there with `ehkit copy --from "
                "data/ehkit.db --to URL`, or point --db / EHKIT_DB at the store")
        if not tables:  # a store is to be made here (or restored)
            _refuse_other_collations(db)
        if tables:
            store.refuse_newer(db)
        if migrate and not read_only and not tables:
            apply_migrations(db)  # a new store, from the baseline
        elif migrate and not read_only:
            done = store.upgrade(db, url)
            if done.applied:  # the first command after an upgrade of ehkit says so
                print(f"ehkit: {done}", file=sys.stderr)
    except BaseException:
        db.close()
        raise
    return db


def _session(url: str, key: bytes | None, read_only: bool):
    """A connection to the store's server, set up for ehkit (autocommit outside
    :func:`transaction`)."""
    psycopg = _psycopg()
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise store.StoreError(
            f"the PostgreSQL store {shown(url)} cannot be reached ({shown(' '.join(str(e).split()))}"
            "): check the URL in --db / EHKIT_DB, that the server is running, and ehkit's "
            "login and password") from None
    try:
        # Session settings (no DBA needed), for ehkit's many small queries (bench/RESULTS.md):
        # no JIT (a view over a million episodes' audits spent seconds compiling to save
        # milliseconds running); no parallel workers (a worker's start costs more CPU than
        # it saves at these sizes); pages read as cached (random_page_cost 1.1, not the
        # spinning disk's 4: the store fits in memory, and an index is then chosen where a
        # hash join read every audit or episode).
        raw.execute("SELECT set_config('jit', 'off', false), set_config("
                    "'max_parallel_workers_per_gather', '0', false), "
                    "set_config('random_page_cost', '1.1', false)")
        if key:  # the triggers seal the log with it (hmac); set for this session only
            raw.execute("SELECT set_config('ehkit.log_key', %s, false)", (key.hex(),))
        if read_only:
            raw.execute("SET default_transaction_read_only = on")
    except BaseException:
        raw.close()
        raise
    return raw


# PostgreSQL's error codes (SQLSTATE) a person can act on: the class (two characters) or
# the code, and what ehkit tells them.
_BUSY = ("the PostgreSQL store stayed busy with other saves: nothing was saved. Try again.")
PERSON_ERRORS = {
    "08": (store.StoreError, "the connection to the PostgreSQL store was lost ({}): nothing "
           "was saved. Try again; if it goes on, ask IT whether the database server is up"),
    "57P01": (store.StoreError, "the PostgreSQL server was shut down ({}): nothing was saved. "
              "Try again when IT has it running"),
    "25006": (store.StoreReadOnly, "the PostgreSQL store is read-only ({}): nothing was saved. "
              "Point --db / EHKIT_DB at the primary server, not a read-only copy"),
    "53": (store.StoreFull, "the PostgreSQL server has no room ({}): nothing was saved. Ask IT "
           "to free space, then save again"),
    "42501": (store.StoreError, "ehkit's login may not do this in the PostgreSQL store ({}): "
              "nothing was saved. Ask IT to make ehkit's login the owner of its database"),
    "40001": (store.StoreError, _BUSY), "40P01": (store.StoreError, _BUSY),
    "55P03": (store.StoreError, _BUSY), "57014": (store.StoreError, _BUSY),
    # SQLite keeps a NUL character (U+0000) in text; PostgreSQL cannot (psycopg refuses it
    # before sending: that error has no code, so it is given this one, the server's own).
    "22021": (store.StoreError, "the text has a NUL character (an invisible control "
              "character, U+0000), which a PostgreSQL store cannot keep ({}): nothing was "
              "saved. Take it out (type the text again, or paste it as plain text) and save "
              "again"),
}


def person_error(e) -> Exception:
    """psycopg's error as one a person can act on, where there is one (else ``e`` itself)."""
    code = getattr(e, "sqlstate", None) or ("08" if isinstance(
        e, _psycopg().OperationalError) else "")
    if not code and isinstance(e, _psycopg().DataError) and "NUL (0x00)" in str(e):
        code = "22021"
    found = PERSON_ERRORS.get(code) or PERSON_ERRORS.get(code[:2])
    if found is None:
        return e
    kind, message = found
    return kind(message.format(shown(" ".join(str(e).split())[:200])))


C_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}  # code point order, as SQLite's BINARY


def _refuse_other_collations(db: Database) -> None:
    """A new store sorts text as SQLite does, or is not made: the same lists, the same order."""
    provider, collation = db.execute(
        "SELECT datlocprovider, datcollate FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    if provider != "c" or collation not in C_COLLATIONS:
        (name,) = db.execute("SELECT current_database()").fetchone()
        rules = collation if provider == "c" else "ICU"
        raise store.StoreError(
            f"the database {name} sorts text by a language's rules ({rules}), so lists would "
            "not come out in the order SQLite gives them: make it "
            f"with the C collation (createdb --locale=C --template=template0 {name}), then try "
            "again. Nothing was changed")


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One write, all or nothing, naming the person for the change log; writers take turns.
    Nested use joins the outer transaction (a savepoint)."""
    db.conn.ready()  # a dropped connection opened again before the write begins
    raw = db.conn.raw
    if db.conn.in_transaction:
        with raw.transaction():
            yield db
        return
    try:
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
            db.conn.name(store.current_actor())
            try:
                yield db
            finally:
                db.conn.named = None
    except _psycopg().Error as e:
        if (mapped := person_error(e)) is e:
            raise  # not a person's to fix: a bug, keeps its traceback
        raise mapped from e


def tool(name: str, url: str) -> tuple[list[str], dict]:
    """PostgreSQL's own tool ``name`` (pg_dump, pg_restore) for the store at ``url``: its
    command's start and environment; the password goes in the environment, not on the
    command line where others may see it."""
    import os
    import shutil

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    found = shutil.which(name)
    if not found:
        raise store.StoreError(f"{name} is not installed: install PostgreSQL's client tools "
                               "(Debian: postgresql-client), then try again")
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    return ([found, "--dbname", make_conninfo(**params)],
            {**os.environ, **({"PGPASSWORD": password} if password else {})})


# -- a bulk insert, logged together (ehkit.db.logged_together) ---------------------------
NOW_MS = "SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
BULK_LOG_ROW = ", ".join(["?"] * 8 + ["to_jsonb(?::text)"] + ["?"] * 2)  # new: jsonb


def bulk_rows_sql(db: Database, table: str, names: list[str], columns_json: str,
                  staged: str | None = None) -> str:
    """SQLite's json_array of each row, by id: the rows with ids in (?, ?] as one text; or,
    ``staged``, the rows that staging table numbered (its ``ehkit_n``) in (?, ?]."""
    listed = "ARRAY[" + ", ".join("'" + c.replace("'", "''") + "'" for c in names) + "]"
    head = (f"""SELECT '{{"columns":{columns_json},"rows":[' || string_agg(ehkit_row_array("""
            f"""to_jsonb(t), {listed}), ',' ORDER BY {'s.ehkit_n' if staged else 't.id'})"""
            f""" || ']}}' FROM {store._q(table)} AS t """)
    if not staged:
        return head + "WHERE t.id > ? AND t.id <= ?"
    same = " AND ".join(f"s.{store._q(c)} = t.{store._q(c)}"
                        for c in store.table_columns(db, table)[1])
    return head + f"JOIN {staged} AS s ON {same} WHERE s.ehkit_n > ? AND s.ehkit_n <= ?"


def copy_rows(db: Database, table: str, columns, rows, *, number: bool = True) -> int:
    """Rows in by COPY, PostgreSQL's bulk load (one stream, not a statement a batch); its
    triggers fire as for INSERT. Rows of a table keyed by ``id`` without one are numbered
    here, one past the largest, as the column's default (``ehkit_next_id``) would number
    them: asked row by row, that default costs nine tenths of the COPY."""
    columns = list(columns)
    if number and "id" not in columns and store.table_columns(db, table)[1] == ["id"]:
        (last,) = db.execute(f"SELECT coalesce(max(id), 0) FROM {store._q(table)}").fetchone()
        columns = ["id", *columns]
        rows = ((last + n, *row) for n, row in enumerate(rows, start=1))
    listed = ", ".join(map(store._q, columns))
    n = 0
    db.conn.ready()  # the person acting named, as for every other write
    with db.conn.raw.cursor().copy(f"COPY {store._q(table)} ({listed}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def copy_staged(db: Database, table: str, columns, rows) -> int:
    """A bulk insert into a table keyed by more than ``id`` (an audit's answers), logged
    together as on SQLite: the rows COPied into a staging table that numbers them in order
    (as SQLite's rowid does), then inserted with the table's trigger set aside, then logged
    in that order (the stored rows, defaults and all, found by their key)."""
    listed = ", ".join(map(store._q, columns))
    db.execute(f"CREATE TEMP TABLE ehkit_staged AS SELECT {listed} FROM {store._q(table)} "
               "WITH NO DATA")
    db.execute("ALTER TABLE ehkit_staged ADD COLUMN ehkit_n bigint GENERATED ALWAYS AS "
               "IDENTITY PRIMARY KEY")
    n = copy_rows(db, "ehkit_staged", columns, rows, number=False)
    with inserts_set_aside(db, table, staged=n):
        db.execute(f"INSERT INTO {store._q(table)} ({listed}) SELECT {listed} FROM "
                   "ehkit_staged ORDER BY ehkit_n")
    store._log_together(db, table, store.table_columns(db, table)[0], 0, staged="ehkit_staged")
    db.execute("DROP TABLE ehkit_staged")
    return n


@contextlib.contextmanager
def inserts_set_aside(db: Database, table: str, staged: int | None = None) -> Iterator[int]:
    """PostgreSQL's side of :func:`ehkit.db.logged_together`: the table's log trigger off for
    the block (ALTER TABLE, which only the table's owner may do, inside the transaction, so
    no other connection sees it off); gives the last id before it. The transaction's own
    counts of the table's changes (pg_stat_xact) show the block only inserted, after it:
    rows after that id, or the ``staged`` number of rows (:func:`copy_staged`)."""
    if staged is None and store.table_columns(db, table)[1] != ["id"]:
        raise RuntimeError(f"a bulk insert on PostgreSQL logs rows by id: {table} has none")
    t, trigger = store._q(table), store._q(f"log_{table}")
    counts = ("SELECT pg_stat_get_xact_tuples_inserted(c), pg_stat_get_xact_tuples_updated(c),"
              " pg_stat_get_xact_tuples_deleted(c) FROM (SELECT ?::regclass AS c) AS x")
    (before,) = (0,) if staged is not None else db.execute(
        f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()
    start = db.execute(counts, [t]).fetchone()
    db.execute(f"ALTER TABLE {t} DISABLE TRIGGER {trigger}")
    try:
        yield before
    finally:
        if db.conn.raw.info.transaction_status == _psycopg().pq.TransactionStatus.INTRANS:
            db.execute(f"ALTER TABLE {t} ENABLE TRIGGER {trigger}")
    inserted, updated, deleted = (b - a for a, b in zip(start, db.execute(counts, [t])
                                                        .fetchone(), strict=True))
    (landed,) = (staged,) if staged is not None else db.execute(
        f"SELECT count(*) FROM {t} WHERE id > ?", [before]).fetchone()
    if updated or deleted or landed != inserted:
        raise RuntimeError(f"a bulk insert into {table} may only add rows after its last id")


def gather_statistics(db: Database) -> None:
    """ANALYZE the store's tables after a bulk load (``ehkit copy``, ``ehkit demo``).
    PostgreSQL plans from its statistics, and autovacuum gathers them only a minute or so
    later: a report run first is planned as for empty tables (measured at 100,000 episodes,
    straight after a copy: the figures' CPU a third more, the headline trend's 2.4 times).
    Outside a transaction it VACUUMs too, which marks the loaded pages all-visible: only then
    does PostgreSQL answer from an index alone (the month's draw) without reading the table."""
    tables = ", ".join(map(store._q, db.table_names()))
    db.execute(("ANALYZE " if db.conn.in_transaction else "VACUUM (ANALYZE) ") + tables)


# -- the schema ----------------------------------------------------------------------------
def baseline_number() -> int:
    head = BASELINE.read_text(encoding="utf-8").partition("\n")[0]
    return int(head.removeprefix(store._BASELINE_HEAD).split()[0])


def sqlite_views(up_to: int) -> list[str]:
    """The views as SQLite's migrations up to ``up_to`` leave them: each one's newest
    ``CREATE VIEW``, in the order of those (a view follows the ones it reads). Both dialects
    read them word for word, so the grade that counts and the audits that count are defined
    once, in SQLite's migrations."""
    views: dict[str, str] = {}
    for number, _, f in store.migrations():
        if number <= up_to:
            for m in _CREATE_VIEW.finditer(f.read_text(encoding="utf-8")):
                views.pop(m["name"], None)
                views[m["name"]] = m[0]
    return list(views.values())


def apply_migrations(db: Database) -> list[int]:
    """Make a new store from the baseline, or apply the migrations' PostgreSQL twins; then
    rebuild the change-log triggers if anything ran."""
    # Up to date is known without the writers' lock (which names the person acting): every
    # connection asks, a preheated form's kernel not yet handed its login too.
    if "schema_migrations" in db.table_names() and not (
            {n for n, _, _ in store.migrations()} - store.recorded_migrations(db.conn)):
        return []
    with transaction(db):  # the writers' lock: two first connections do not both make it
        db.execute(store.SCHEMA_MIGRATIONS)
        done = {r[0] for r in db.execute("SELECT number FROM schema_migrations")}
        pending = [m for m in store.migrations() if m[0] not in done]
        base = 0 if done else baseline_number()
        if base:
            db.execute(BASELINE.read_text(encoding="utf-8"))  # one script: no parameters
            for view in sqlite_views(up_to=base):
                db.execute(view)
        for number, name, f in pending:
            if number > base:
                twin = SCHEMA_DIR / f.name
                if not twin.exists():
                    raise store.StoreError(
                        f"migration {number:04d} ({name}) has no PostgreSQL version ({twin} "
                        "is missing): this ehkit cannot upgrade a PostgreSQL store. Nothing "
                        "was changed")
                try:
                    db.execute(twin.read_text(encoding="utf-8"))
                    # a view the migration makes (its twin dropped the old): SQLite's words
                    for view in _CREATE_VIEW.finditer(f.read_text(encoding="utf-8")):
                        db.execute(view[0])
                except _psycopg().Error as e:  # e.g. its change made by hand, unrecorded
                    raise store.StoreError(
                        f"migration {number:04d} ({name}) could not be applied to this "
                        f"PostgreSQL store ({' '.join(str(e).split())[:200]}): nothing was "
                        "changed (the upgrade is one transaction). Its schema is not as this "
                        "ehkit left it (`ehkit check` names what differs): restore the backup "
                        "taken before it was changed, or ask IT what was done to it") from None
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, ehkit_now())", [number, name])
        if pending:
            install_change_log_triggers(db)
            store.counts_made_afresh(db)
            db._keys.clear()  # a migration may have made a table anew
    return [n for n, _, _ in pending]


def table_columns(db: Database, table: str) -> tuple[list[str], list[str], str | None]:
    """As :func:`ehkit.db.table_columns`: (logged columns in order, primary key, audit column).
    Generated columns are left out, as SQLite's ``table_info`` leaves them out."""
    names = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = ? AND is_generated = 'NEVER'"
        " ORDER BY ordinal_position", [table])]
    pk = [r[0] for r in db.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY (i.indkey) WHERE i.indrelid = ?::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)", [store._q(table)])]
    audit_col = "id" if table == "audits" else ("audit_id" if "audit_id" in names else None)
    return names, pk, audit_col


# pg_trigger.tgtype: FOR EACH ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32.
LOG_TRIGGER = 1 + 4 + 8 + 16  # AFTER INSERT OR DELETE OR UPDATE, FOR EACH ROW
GUARDS = {"change_log_no_update": 1 + 2 + 16, "change_log_no_delete": 1 + 2 + 8,
          "change_log_no_truncate": 2 + 32}
COUNTER_TRIGGER = "change_log_counted"  # AFTER INSERT OR UPDATE, FOR EACH ROW (deferred)


def expected_triggers(db: Database) -> dict[str, tuple]:
    """The triggers ehkit keeps: {name: (table, function, pg_trigger.tgtype, arguments)}.
    ``ehkit_log``'s arguments: the audit column ('' if none), the primary key's columns
    (comma-separated), then the logged columns in order."""
    out = {name: ("change_log", "ehkit_log_is_kept", t, ()) for name, t in GUARDS.items()}
    if db.execute("SELECT to_regclass('change_log_counter') IS NOT NULL").fetchone()[0]:
        # The counter's (migration 0133): without it, rows cut from the log's end go unseen.
        out[COUNTER_TRIGGER] = ("change_log_counter", "ehkit_log_counted", 1 + 4 + 16, ())
    for table in store.logged_tables(db):
        names, pk, audit_col = table_columns(db, table)
        out[f"log_{table}"] = (table, "ehkit_log", LOG_TRIGGER,
                               (audit_col or "", ",".join(pk), *names))
    return out


def live_triggers(db: Database) -> dict[str, tuple[tuple, bool]]:
    """The triggers as they are: {name: ((table, function, tgtype, arguments), enabled)}."""
    rows = db.execute("SELECT tgname, tgrelid::regclass::text, tgfoid::regproc::text, tgtype,"
                      " tgenabled <> 'D', tgargs FROM pg_trigger WHERE NOT tgisinternal")
    return {name: ((table, function, kind, tuple(
        a.decode() for a in bytes(args).split(b"\0")[:-1])), enabled)
        for name, table, function, kind, enabled, args in rows}


def change_log_trigger_sql(db: Database) -> dict[str, str]:
    """The change-log trigger every logged table should have: {trigger name: CREATE sql}."""
    out = {}
    for name, (table, function, _, args) in expected_triggers(db).items():
        if function == "ehkit_log":
            listed = ", ".join("'" + a.replace("'", "''") + "'" for a in args)
            out[name] = (f"CREATE TRIGGER {store._q(name)} AFTER INSERT OR UPDATE OR DELETE ON "
                         f"{store._q(table)} FOR EACH ROW EXECUTE FUNCTION ehkit_log({listed})")
    return out


def install_change_log_triggers(db: Database) -> None:
    for name, sql in change_log_trigger_sql(db).items():
        db.execute(f"DROP TRIGGER IF EXISTS {store._q(name)} ON {store._q(name.removeprefix('log_'))}")
        db.execute(sql)


def log_counter(db: Database) -> int | None:
    """The ids the change log's committed saves have given out: its counter (migration
    0133), which rolls back with its save as SQLite's sqlite_sequence does; None if its row
    was removed."""
    row = db.execute("SELECT seq FROM change_log_counter").fetchone()
    return row[0] if row else None
