"""The store: one connection factory, numbered migrations, one way to write, and the change log.

Every connection comes from :func:`connect` (WAL, foreign keys, busy timeout, synchronous
FULL). Every write goes through :func:`transaction` (a short ``BEGIN IMMEDIATE``). Every
insert, update and delete on a data table writes change-log rows from SQLite triggers in the
same transaction, so no code path can skip them; each change-log row carries a hash chained
to the row before it (keyed, an HMAC, when the service keeps a log key: :func:`log_key`).
A bulk load (:func:`bulk_insert`) logs its rows together: one change-log row holds a chunk
of them. A write that changes the schema notes the schema's version in the file header
(:func:`seal_schema`), so ``ehkit check`` can tell a change made with another tool.

``connect(read_only=True)`` opens a store as it is, changing nothing in the file, for the
commands that only read. Only a missing or empty file becomes a new store; anything else
that is not an ehkit store, or a store a newer ehkit migrated, is refused in one line.

Migrations are the files ``ehkit/migrations/NNNN_name.sql``, applied in order and recorded
in ``schema_migrations``. A new store is made from ``baseline.sql`` instead (the schema as of
a migration, in one step) and then any later migrations; a store made earlier is backed up
before it is migrated (:func:`upgrade`). After migrating, the change-log triggers are rebuilt
from the live columns, so a migration that adds a column is logged with no further work.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import hmac
import itertools
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from . import __version__, home, netfs
from .errors import EhkitError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DEFAULT_DB = Path("data") / "ehkit.db"
BUSY_TIMEOUT_MS = 30_000
# 8 KiB pages, not SQLite's 4: a region's store of millions of rows builds and scans faster
# (bench/: the million-episode demo in 15% less time); saving is bound by fsync either way.
PAGE_SIZE = 8192
# Tables that are bookkeeping, not data: not change-logged.
# The episodes' monthly counts are kept from the episodes (ehkit.episode_counts).
UNLOGGED = {"change_log", "schema_migrations", "change_log_counter",  # the last: PostgreSQL's
            "episode_counts", "episode_days"}


class StoreError(EhkitError):
    """A problem with the database a person can act on; the message says what to do."""


class DatabaseMissing(StoreError):
    pass


class StoreFull(StoreError):
    pass


# -- who is acting ---------------------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    user: str  # the login (ehkit.access.login: the server's EHKIT_LOGIN, else the OS account)
    actor: str | None = None  # the person acting: the login's practitioner (ehkit.access)
    reason: str | None = None  # e.g. why a submitted audit was reopened


def login_name() -> str:
    from .access import login  # access asks the store for roles: imported when needed

    return login()


_acting: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("ehkit_actor", default=None)


def current_actor() -> Actor:
    return _acting.get() or Actor(login_name())


@contextlib.contextmanager
def acting_as(actor: str | None = None, reason: str | None = None):
    """Name the person making the changes inside the block, and why, for the change log.
    The login is always the process's own (ehkit.access.login): no caller can claim another."""
    token = _acting.set(Actor(login_name(), actor, reason))
    try:
        yield
    finally:
        _acting.reset(token)


# json.dumps with these options, built once: the triggers call chain_hash for every row.
_encode = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode


def is_bulk(row_key, field, new) -> bool:
    """Is this change-log row a bulk insert's (:func:`logged_together`): rows, no row key?"""
    return row_key is None and field is None and new is not None


KEYED = "hmac:"  # a keyed hash's prefix: HMAC-SHA256 with the service's log key


class LogKeyError(StoreError):
    pass


def log_key() -> bytes | None:
    """The change-log key, if the service keeps one: the file $EHKIT_LOG_KEY names (else
    the setting ``store.log_key_file``). Only its owner may read it (mode 0600)."""
    from . import settings

    name = os.environ.get("EHKIT_LOG_KEY") or settings.settings().get("store", {}).get(
        "log_key_file")
    if not name:
        return None
    p = Path(name)
    try:
        mode = p.stat().st_mode
        key = p.read_bytes().strip()
    except OSError as e:
        raise LogKeyError(f"the change-log key file {p} cannot be read ({e.strerror}): run "
                          "ehkit as the service account, or fix EHKIT_LOG_KEY") from None
    if mode & 0o077:
        raise LogKeyError(f"the change-log key file {p} may be read by others (mode "
                          f"{mode & 0o777:o}): make it the service account's only (chmod 600 "
                          f"{p}), then try again")
    if len(key) < 16:
        raise LogKeyError(f"the change-log key file {p} holds under 16 bytes: put a long "
                          "random key in it (e.g. `openssl rand -hex 32`)")
    return key


def chain_hash(prev, *fields, key: bytes | None = None) -> str:
    """The change-log hash: sha256 over the previous row's hash and this row's fields.

    With the service's ``key`` it is an HMAC (``hmac:`` and the hex), which nobody without
    the key can forge.

    ``fields`` are the row's (at, user, actor, table_name, row_key, audit_id, field, old,
    new, reason). A bulk insert's rows (no row key, no field: see :func:`logged_together`)
    enter as the sha256 of their JSON, so megabytes of it are not JSON-encoded again; any
    change to them still changes the hash.
    """
    if is_bulk(fields[4], fields[6], fields[8]):
        digest = "sha256:" + hashlib.sha256(fields[8].encode("utf-8")).hexdigest()
        fields = (*fields[:8], digest, *fields[9:])
    data = _encode([prev, *fields]).encode("utf-8")
    if key:
        return KEYED + hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def _text(value) -> str | None:
    # change_log's user/actor/reason are TEXT columns: hash exactly what they will store.
    return None if value is None else str(value)


def _register_functions(conn: sqlite3.Connection, key: bytes | None) -> None:
    conn.create_function("ehkit_user", 0, lambda: _text(current_actor().user))
    conn.create_function("ehkit_actor", 0, lambda: _text(current_actor().actor))
    conn.create_function("ehkit_reason", 0, lambda: _text(current_actor().reason))
    conn.create_function("ehkit_hash", -1, functools.partial(chain_hash, key=key),
                         deterministic=True)


# -- connections -------------------------------------------------------------------------
def db_path(path: str | os.PathLike | None = None) -> Path:
    """The database file: the argument, else $EHKIT_DB, else data/ehkit.db (in the working
    folder, where there is one: :mod:`ehkit.home`)."""
    if path or os.environ.get("EHKIT_DB"):
        return Path(path or os.environ["EHKIT_DB"])
    folder = home.home()
    return folder / DEFAULT_DB if folder else DEFAULT_DB


def postgres_url(path=None) -> str | None:
    """The PostgreSQL URL the argument, else $EHKIT_DB, gives (None: a SQLite file)."""
    target = str(path or os.environ.get("EHKIT_DB") or "")
    return target if target.startswith(("postgresql://", "postgres://")) else None


def location(path=None) -> str | Path:
    """The store the argument, else $EHKIT_DB, else the default names: its PostgreSQL URL as
    it is (a Path would fold its ``//``), else the file (:func:`db_path`)."""
    return postgres_url(path) or db_path(path)


def is_postgres(db) -> bool:
    """Is ``db`` a PostgreSQL store (:mod:`ehkit.postgres`), not SQLite?"""
    return getattr(db, "dialect", "sqlite") == "postgresql"


def unindexed(db, column: str) -> str:
    """``column`` kept off its index: SQLite's unary ``+`` steers its planner to a better
    index; PostgreSQL's planner needs no hint (and has no unary + for text)."""
    return column if is_postgres(db) else f"+{column}"


def integrity_errors(db) -> tuple[type[Exception], ...]:
    """The errors by which ``db``'s store refuses a row that breaks a constraint."""
    if is_postgres(db):
        import psycopg

        return (sqlite3.IntegrityError, psycopg.IntegrityError)
    return (sqlite3.IntegrityError,)


SQLITE_HEADER = b"SQLite format 3\x00"
RESTORE_ADVICE = "restore the latest good backup (README, Backup)"


class NotAStore(StoreError):
    """The file given is not an ehkit store (empty, text, someone else's database, damaged)."""


class StoreReadOnly(StoreError):
    pass


class StoreTooNew(StoreError):
    pass


def _describe(p: Path, head: bytes) -> str:
    """What a file that is not a SQLite database looks like, for the one-line error."""
    text = _text_of(head)
    if text is not None:
        return (f"{p} is a text file (it begins {text[:30]!r}), not an ehkit store: point "
                "--db at the store")
    return (f"{p} is not a SQLite database (it begins {head[:16]!r}): if it was the ehkit "
            f"store, its start was overwritten, so {RESTORE_ADVICE}; otherwise point --db at "
            "the store")


def _text_of(head: bytes) -> str | None:
    """The start of a text file as text (None if it is not text)."""
    for cut in range(4):  # the 100 bytes read may end inside a character
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text if all(c.isprintable() or c in "\r\n\t" for c in text) else None
    return None


def _check_file(p: Path, *, must_exist: bool) -> bool:
    """Is ``p`` a file to make a new store in? Raise, saying what it is, if it is not a
    store either way (a missing file with ``must_exist``, an empty file, a text file)."""
    if not p.exists():
        if must_exist:
            raise DatabaseMissing(
                f"no database at {p}: create one with `ehkit demo` or `ehkit import`, "
                "or point --db / EHKIT_DB at an existing file")
        return True
    if p.is_dir():
        raise NotAStore(f"{p} is a folder, not an ehkit store: give the store's file")
    try:
        with open(p, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"{p} cannot be read ({e.strerror}): run ehkit as a user who may "
                         "read the store") from None
    if not head:
        if must_exist:
            raise NotAStore(f"{p} is an empty file, not an ehkit store: give the store's path, "
                            "or create a store there with `ehkit demo` or `ehkit import`")
        return True
    if not head.startswith(SQLITE_HEADER) or len(head) < 100:
        raise _not_sqlite(p, head)
    return False


def _not_sqlite(p: Path, head: bytes) -> NotAStore:
    if head.startswith(SQLITE_HEADER):
        return NotAStore(f"{p} is cut short ({p.stat().st_size} bytes): the store was "
                         f"truncated, so {RESTORE_ADVICE}")
    return NotAStore(_describe(p, head))


def read_only_media(p: Path) -> bool:
    """Can nothing be written beside ``p`` (a read-only mount, or no permission)?"""
    return not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK))


def connect(path: str | os.PathLike | None = None, *, must_exist: bool = False,
            migrate: bool = True, read_only: bool = False) -> sqlite_utils.Database:
    """Open (and migrate) the store. ``must_exist`` refuses to create a new empty file.
    A ``postgresql://`` URL opens a PostgreSQL store instead (:mod:`ehkit.postgres`).

    ``read_only`` opens it as it is, changing nothing in the file (no WAL switch, no
    migration): for commands that only read, such as ``ehkit check`` of a backup. Only a
    missing or empty file becomes a new store, and only without ``must_exist``; a text file,
    someone else's SQLite database or a damaged one is refused, saying what it is.
    """
    if postgres_url(path):
        from . import postgres

        return postgres.connect(postgres_url(path), must_exist=must_exist, migrate=migrate,
                                read_only=read_only)
    p = db_path(path)
    key = log_key()  # a key file others may read is refused before any file is made
    memory = str(p) == ":memory:"
    new = memory or _check_file(p, must_exist=must_exist or read_only)
    if not memory:
        if new:
            p.parent.mkdir(parents=True, exist_ok=True)
        elif not read_only and read_only_media(p):
            raise StoreReadOnly(
                f"{p} is read-only (read-only media, or you may not write there): this "
                "command changes the store. `ehkit check`, `history` and `backup` work "
                "on it as it is; to change it, copy it somewhere writable")
        netfs.warn_if_network(p)
    try:
        db = _open(p, new=new, read_only=read_only, key=key)
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and not any(
                d in str(e).lower() for d in DAMAGE):
            raise person_error(e) from e  # busy, full or read-only, as for any write
        raise NotAStore(f"{p} could not be read as an ehkit store ({e}): if it is the store, "
                        f"it is damaged, so {RESTORE_ADVICE}") from None
    try:
        refuse_newer(db)
        if migrate and not read_only:
            done = upgrade(db, p)
            if done.backup:  # the first command after an upgrade of ehkit says so
                print(f"ehkit: {done}", file=sys.stderr)
    except BaseException:
        db.close()
        raise
    return db


def _open(p: Path, *, new: bool, read_only: bool, key: bytes | None) -> sqlite_utils.Database:
    if read_only:  # immutable: on read-only media there is no -shm for WAL's readers
        uri = p.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if read_only_media(p) else "")
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                             "'table' AND name NOT LIKE 'sqlite_%'")}
        if tables and "schema_migrations" not in tables:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise NotAStore(f"{p} is a SQLite database but not an ehkit store (its tables: "
                            f"{shown}): give the ehkit store's path")
        if not tables and not new:
            raise NotAStore(f"{p} is an empty SQLite database, not an ehkit store: give the "
                            "store's path, or create one with `ehkit demo` or `ehkit import`")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            if new:  # before anything is written; fixed for the file's life
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            if str(p) != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # INSERT OR REPLACE deletes the old row; only with recursive triggers is that delete logged.
        conn.execute("PRAGMA recursive_triggers = ON")
    except BaseException:
        conn.close()
        raise
    _register_functions(conn, key)
    # No sqlite-utils plugins: a store's connection runs ehkit's functions only, and
    # looking for plugins reads every installed package's entry points (5 ms a process).
    return sqlite_utils.Database(conn, execute_plugins=False)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One short write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, all or nothing.

    Nested use joins the outer transaction (via a savepoint). A full disk becomes a
    :class:`StoreFull` with a message for a person; nothing is half-written.
    """
    if is_postgres(db):
        from . import postgres

        with postgres.transaction(db):
            yield db
        return
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise person_error(e) from e
    try:
        (schema,) = conn.execute("PRAGMA schema_version").fetchone()
        yield db
        seal_schema(conn, since=schema)
        conn.execute("COMMIT")
    except BaseException as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.OperationalError):
            raise person_error(e) from e
        raise


def seal_schema(conn: sqlite3.Connection, since: int | None = None) -> None:
    """Note the schema's version (SQLite's count of schema changes) as ehkit left it.

    The header's ``user_version`` keeps it: a trigger dropped and recreated with another
    tool moves ``schema_version`` on, and ``ehkit check`` (quick too) sees the two differ.
    Called inside a write; with ``since``, only when this write changed the schema.
    """
    (now,) = conn.execute("PRAGMA schema_version").fetchone()
    if since is None or now != since:
        conn.execute(f"PRAGMA user_version = {int(now)}")


def schema_sealed(conn: sqlite3.Connection) -> tuple[int, int]:
    """(the schema version ehkit last left, the schema version now); 0 first: never sealed."""
    return (conn.execute("PRAGMA user_version").fetchone()[0],
            conn.execute("PRAGMA schema_version").fetchone()[0])


DAMAGE = ("malformed", "not a database", "disk i/o error")


def person_error(e: sqlite3.DatabaseError) -> Exception:
    """SQLite's error as one a person can act on, where there is one (else ``e`` itself).
    PostgreSQL's (psycopg's) are :func:`ehkit.postgres.person_error`'s."""
    if type(e).__module__.startswith("psycopg"):
        from . import postgres

        return postgres.person_error(e)
    msg = str(e).lower()
    if any(d in msg for d in DAMAGE):
        return StoreError(f"the store could not be read ({e}): it is damaged; run `ehkit "
                          f"check` to see where, and {RESTORE_ADVICE}")
    if "readonly" in msg or "read-only" in msg:
        return StoreReadOnly("the database is read-only (read-only media, or you may not write "
                             "to it): nothing was saved. Copy it somewhere writable first.")
    if "full" in msg:
        return StoreFull("the database is full (no space left for it): nothing was saved. "
                         "Free disk space or ask IT to, then save again.")
    if "locked" in msg or "busy" in msg:
        return StoreError("the database stayed busy with other saves for "
                          f"{BUSY_TIMEOUT_MS // 1000} s: nothing was saved. Try again.")
    return e


# -- migrations --------------------------------------------------------------------------
def migrations() -> list[tuple[int, str, Path]]:
    out = []
    for f in sorted(MIGRATIONS_DIR.glob("[0-9]*.sql")):
        number, _, name = f.stem.partition("_")
        out.append((int(number), name, f))
    numbers = [n for n, _, _ in out]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number in {MIGRATIONS_DIR}")
    return sorted(out)


def recorded_migrations(conn: sqlite3.Connection) -> set[int]:
    try:
        return {r[0] for r in conn.execute("SELECT number FROM schema_migrations")}
    except sqlite3.OperationalError:  # a new store: no table yet
        return set()


def refuse_newer(db: sqlite_utils.Database) -> None:
    """A store a newer ehkit migrated may hold what this one does not know how to keep."""
    unknown = recorded_migrations(db.conn) - {n for n, _, _ in migrations()}
    if unknown:
        raise StoreTooNew(f"this store was written by a newer ehkit (migration "
                          f"{max(unknown):04d}); upgrade ehkit")


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did to a store made by an earlier ehkit."""
    path: Path | str  # a PostgreSQL store's URL as shown (no password)
    applied: list[tuple[int, str, str]]  # (number, name, what it changes)
    backup: Path | None  # the store as it was before

    def __str__(self) -> str:
        if not self.applied:
            last = max((n for n, _, _ in migrations()), default=0)
            return f"{self.path} is up to date (ehkit {__version__}, migration {last:04d})"
        kept = f"; the store as it was is kept in {self.backup}" if self.backup else ""
        lines = [f"upgraded {self.path} for ehkit {__version__}{kept}. What changed:"]
        lines += [f"  {n:04d} {name}: {what}" for n, name, what in self.applied]
        return "\n".join(lines)


def describe(migration: Path) -> str:
    """What a migration changes: the first line of its leading comment."""
    for line in migration.read_text(encoding="utf-8").splitlines():
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return ""


def upgrade(db: sqlite_utils.Database, path: Path | str) -> Upgrade:
    """Bring a store up to this ehkit's schema. A store an earlier ehkit made is backed up
    first (``backups/`` beside a SQLite file; for a PostgreSQL store, ``pg_dump`` into the
    working folder's ``backups/``); a backup that fails leaves it unchanged."""
    recorded = recorded_migrations(db.conn)
    pending = [m for m in migrations() if m[0] not in recorded]
    kept, shown = None, path
    if is_postgres(db):
        from . import postgres

        shown, apply = postgres.shown(str(path)), postgres.apply_migrations
        # A PostgreSQL store has no folder beside it; its migrations run in one transaction,
        # so where there is no working folder the upgrade goes ahead unbacked-up (said so).
        folder = home.home() / "backups" if home.home() else None
    else:
        apply, folder = apply_migrations, None
    if pending and recorded and str(path) != ":memory:" and (folder or not is_postgres(db)):
        from . import backup  # backup uses this module

        try:
            kept = backup.backup(path, folder).path
        except EhkitError as e:
            raise StoreError(f"{shown} needs upgrading for ehkit {__version__}, which first "
                             f"backs it up, and the backup failed ({e}). Nothing was "
                             "changed") from None
    applied = set(apply(db))
    return Upgrade(shown, [(n, name, describe(f)) for n, name, f in pending if n in applied],
                   kept)


# -- the baseline: a new store's schema in one step --------------------------------------
BASELINE = MIGRATIONS_DIR / "baseline.sql"
_BASELINE_HEAD = "-- ehkit baseline: the schema as of migration "


def baseline_number() -> int:
    """The migration the baseline schema stands at (0: no baseline)."""
    if not BASELINE.exists():
        return 0
    head = BASELINE.read_text(encoding="utf-8").partition("\n")[0]
    return int(head.removeprefix(_BASELINE_HEAD).split()[0]) if head.startswith(
        _BASELINE_HEAD) else 0


def baseline_sql(db: sqlite_utils.Database) -> str:
    """The schema of a migrated store as one SQL file: what :data:`BASELINE` holds.

    Tables first, then indexes, views and triggers, each in the order they were made; the
    change-log triggers are left out (they are rebuilt from the live columns).
    """
    (number,) = db.conn.execute("SELECT max(number) FROM schema_migrations").fetchone()
    logged = set(change_log_trigger_sql(db))
    rows = db.conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
        "'sqlite_%' AND name != 'schema_migrations' ORDER BY CASE type WHEN 'table' THEN 0 "
        "WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid").fetchall()
    body = "\n\n".join(sql + ";" for _, name, sql in rows if name not in logged)
    return (f"{_BASELINE_HEAD}{number:04d} (`make baseline` writes it).\n"
            "-- A new store is made from this file and records migrations up to that one as\n"
            "-- applied; a store made earlier is brought here by the numbered files, which\n"
            "-- stay. A later migration goes in a new numbered file, on top of both.\n\n"
            f"{body}\n")


def write_baseline() -> Path:
    """Write :data:`BASELINE` from the numbered migrations (``make baseline``)."""
    database = connect(":memory:", migrate=False)
    try:
        apply_migrations(database, baseline=False)
        BASELINE.write_text(baseline_sql(database), encoding="utf-8")
    finally:
        database.close()
    return BASELINE


SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")


def apply_migrations(db: sqlite_utils.Database, *, upto: int | None = None,
                     baseline: bool = True) -> list[int]:
    """Apply every migration not yet recorded (up to ``upto``); rebuild change-log triggers
    if any ran. A new store is made from the baseline schema (unless ``baseline`` is False,
    as an earlier ehkit made it), then any later migrations."""
    conn = db.conn
    conn.execute(SCHEMA_MIGRATIONS)
    done = {r[0] for r in conn.execute("SELECT number FROM schema_migrations")}
    pending = [m for m in migrations() if m[0] not in done and (upto is None or m[0] <= upto)]
    if not pending:
        if schema_sealed(conn)[0] == 0:  # a store from before the seal: seal it once
            with transaction(db):
                seal_schema(conn)
        return []
    with transaction(db):
        # Re-read inside the write lock: another process may have migrated meanwhile.
        done = {r[0] for r in conn.execute("SELECT number FROM schema_migrations")}
        applied = []
        base = baseline_number() if baseline and not done else 0
        if base and (upto is None or upto >= base):  # a new store: its schema in one step
            for statement in _statements(BASELINE.read_text(encoding="utf-8")):
                conn.execute(statement)
        else:
            base = 0
        for number, name, f in pending:
            if number in done:
                continue
            try:
                if number > base:  # else the baseline made it: it is only recorded
                    for statement in _statements(f.read_text(encoding="utf-8")):
                        conn.execute(statement)
            except sqlite3.OperationalError as e:
                if "full" in str(e) or "locked" in str(e) or "readonly" in str(e):
                    raise
                raise StoreError(
                    f"migration {number:04d} ({name}) cannot be applied ({e}): its change "
                    "seems to be in the store already without its record. Nothing was "
                    "changed; run `ehkit check`, and restore the latest good backup") from None
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                (number, name),
            )
            applied.append(number)
        if applied:
            install_change_log_triggers(db)
            counts_made_afresh(db)
    return applied


def counts_made_afresh(db) -> None:
    """After migrations: the triggers that keep the episodes' monthly counts made again, and
    the counts counted afresh (ehkit.episode_counts), once the store has them."""
    if "episode_counts" in db.table_names():
        from . import episode_counts

        episode_counts.install(db)


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements (sqlite3.complete_statement knows triggers)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buf[:80]!r}")
    return out


# -- the change log ----------------------------------------------------------------------
def logged_tables(db: sqlite_utils.Database) -> list[str]:
    return [t for t in db.table_names() if t not in UNLOGGED and not t.startswith("sqlite_")]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def install_change_log_triggers(db: sqlite_utils.Database) -> None:
    """(Re)create the insert/update/delete triggers that write change_log rows."""
    for name, sql in change_log_trigger_sql(db).items():
        db.conn.execute(f"DROP TRIGGER IF EXISTS {_q(name)}")
        db.conn.execute(sql)


def table_columns(db: sqlite_utils.Database, table: str) -> tuple[list[str], list[str], str | None]:
    """(column names, primary key, the column naming the audit a row belongs to, if any)."""
    if is_postgres(db):
        from . import postgres

        return postgres.table_columns(db, table)
    cols = [(r[1], r[5]) for r in db.conn.execute(f"PRAGMA table_info({_q(table)})")]
    names = [c for c, _ in cols]
    pk = [c for c, n in sorted(cols, key=lambda c: c[1]) if n] or ["rowid"]
    audit_col = "id" if table == "audits" else ("audit_id" if "audit_id" in names else None)
    return names, pk, audit_col


# The hash must cover exactly what change_log stores, so each value takes the column's type
# first: row_key is TEXT, audit_id INTEGER (anything else: NULL).
def _audit_of(alias: str, audit_col: str | None) -> str:
    if not audit_col:
        return "NULL"
    v = f"{alias}.{_q(audit_col)}"
    return (f"(CASE WHEN typeof({v}) = 'integer' THEN {v} WHEN CAST(CAST({v} AS INTEGER)"
            f" AS TEXT) = CAST({v} AS TEXT) THEN CAST({v} AS INTEGER) END)")


def _as_json(alias: str, names: list[str]) -> str:
    return "json_object(" + ", ".join(f"'{c}', {alias}.{_q(c)}" for c in names) + ")"


def change_log_trigger_sql(db: sqlite_utils.Database) -> dict[str, str]:
    """The change-log triggers every logged table should have: {trigger name: CREATE sql}.

    ``ehkit check`` compares these with the live schema to find a trigger dropped or altered.
    """
    out: dict[str, str] = {}
    for table in logged_tables(db):
        names, pk, audit_col = table_columns(db, table)

        def row_key(alias: str, pk=pk) -> str:
            return "CAST(" + " || '/' || ".join(f"{alias}.{_q(c)}" for c in pk) + " AS TEXT)"

        def log(alias: str, field: str, old: str, new: str, table=table,
                audit_col=audit_col) -> str:
            audit = _audit_of(alias, audit_col)
            literal = "'" + table.replace("'", "''") + "'"
            return (
                "INSERT INTO change_log (at, user, actor, table_name, row_key, audit_id, field,"
                " old, new, reason, hash) SELECT at, u, a, t, k, au, f, o, n, r,"
                " ehkit_hash((SELECT hash FROM change_log ORDER BY id DESC LIMIT 1),"
                " at, u, a, t, k, au, f, o, n, r) FROM (SELECT"
                " strftime('%Y-%m-%dT%H:%M:%fZ','now') AS at, ehkit_user() AS u,"
                f" ehkit_actor() AS a, {literal} AS t, {row_key(alias)} AS k, {audit} AS au,"
                f" {field} AS f, {old} AS o, {new} AS n, ehkit_reason() AS r);"
            )

        out[f"log_{table}_insert"] = (
            f"CREATE TRIGGER {_q(f'log_{table}_insert')} AFTER INSERT ON {_q(table)} BEGIN "
            + log("NEW", "NULL", "NULL", _as_json("NEW", names)) + " END"
        )
        out[f"log_{table}_delete"] = (
            f"CREATE TRIGGER {_q(f'log_{table}_delete')} AFTER DELETE ON {_q(table)} BEGIN "
            + log("OLD", "NULL", _as_json("OLD", names), "NULL") + " END"
        )
        body = " ".join(
            log("NEW", f"'{c}'", f"OLD.{_q(c)}", f"NEW.{_q(c)}").replace(
                "ehkit_reason() AS r);",
                f"ehkit_reason() AS r) WHERE OLD.{_q(c)} IS NOT NEW.{_q(c)};",
            )
            for c in names
        )
        out[f"log_{table}_update"] = (
            f"CREATE TRIGGER {_q(f'log_{table}_update')} AFTER UPDATE ON {_q(table)} BEGIN "
            + body + " END"
        )
    return out


BULK_CHUNK = 20_000  # rowids a bulk insert's change-log row covers (at most so many rows)
_LOG_COLUMNS = 'at, "user", actor, table_name, row_key, audit_id, field, old, new, reason, hash'


def _insert_many(conn: sqlite3.Connection, table: str, columns: Sequence[str],
                 rows: Iterable[Sequence]) -> int:
    """INSERT with many rows to a statement: a statement's fixed costs (building the
    CHECKs' IN lists, for one) are paid once per batch instead of once per row."""
    head = f"INSERT INTO {_q(table)} ({', '.join(map(_q, columns))}) VALUES "
    one = f"({', '.join('?' * len(columns))})"
    per = max(1, min(200, 30_000 // len(columns)))  # well under SQLite's variable limit
    rows, n = iter(rows), 0
    while batch := list(itertools.islice(rows, per)):
        conn.execute(head + ", ".join([one] * len(batch)), list(itertools.chain(*batch)))
        n += len(batch)
    return n


def bulk_insert(db: sqlite_utils.Database, table: str, columns: Sequence[str],
                rows: Iterable[Sequence], *, checks_met: bool = False) -> int:
    """Insert many rows as one change, logged together (:func:`logged_together`).
    On PostgreSQL the rows go in by COPY (a table keyed by more than ``id`` through a staging
    table whose numbering stands for SQLite's rowid: :func:`ehkit.postgres.copy_staged`).

    ``checks_met``: the caller has held every row to each of the table's CHECKs itself (an
    import's rules, which a test holds to the schema's CHECKs one by one), so SQLite's own
    are set aside for this insert alone (half its time at 200,000 rows); on for everything
    else, this connection's later writes too."""
    if is_postgres(db):
        from . import postgres

        if table_columns(db, table)[1] != ["id"]:
            return postgres.copy_staged(db, table, columns, rows)
        with logged_together(db, table):
            return postgres.copy_rows(db, table, columns, rows)
    with logged_together(db, table):
        if not checks_met:
            return _insert_many(db.conn, table, columns, rows)
        db.conn.execute("PRAGMA ignore_check_constraints = ON")
        try:
            return _insert_many(db.conn, table, columns, rows)
        finally:
            db.conn.execute("PRAGMA ignore_check_constraints = OFF")


@contextlib.contextmanager
def logged_together(db: sqlite_utils.Database, table: str) -> Iterator[None]:
    """Rows inserted into ``table`` inside the block are logged together, not one by one.

    The insert trigger logs a row at a time, at about 20 µs a row (a chained hash in Python
    for each). A load of thousands of rows (demo data, a case-system import) instead writes
    one change-log row per ``BULK_CHUNK`` rows: its ``row_key`` and ``audit_id`` are NULL
    and its ``new`` holds the rows as ``{"columns": [...], "rows": [[...], ...]}`` (the
    names once, not in every row). History, replay and ``ehkit check`` read both kinds.

    Runs inside :func:`transaction`, and the block only inserts into ``table``, after its
    last rowid (new ids ascending, or none given). The insert trigger is set aside for the
    block and put back in the same transaction, so no other connection sees it missing
    (episodes' monthly counts' too: their rows are counted in one pass, ehkit.episode_counts).
    On PostgreSQL (:func:`ehkit.postgres.inserts_set_aside`) the table is keyed by ``id``.
    """
    conn = db.conn
    if not conn.in_transaction:
        raise RuntimeError("logged_together runs inside store.transaction()")
    names, pk, _ = table_columns(db, table)
    if table in UNLOGGED or pk == ["rowid"]:
        raise RuntimeError(f"a bulk insert logs rows by primary key: {table} has none")
    if is_postgres(db):
        from . import postgres

        with postgres.inserts_set_aside(db, table) as before:
            yield
        _log_together(db, table, names, before)
        return
    from . import episode_counts

    # The log's insert trigger; on episodes, their counts' too (counted together after).
    triggers = [f"log_{table}_insert", *([episode_counts.INSERT_TRIGGER] if table == "episodes"
                                         else [])]
    (before,) = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {_q(table)}").fetchone()
    saved = {name: row[0] for name in triggers for row in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,))}
    for name in saved:
        conn.execute(f"DROP TRIGGER {_q(name)}")
    changes = conn.total_changes
    try:
        yield
        inserted = conn.total_changes - changes
    finally:
        if conn.in_transaction:
            for sql in saved.values():
                conn.execute(sql)
    (landed,) = conn.execute(f"SELECT count(*) FROM {_q(table)} WHERE rowid > ?",
                             (before,)).fetchone()
    if landed != inserted:
        raise RuntimeError(f"a bulk insert into {table} may only add rows after its last rowid")
    _log_together(db, table, names, before)
    if episode_counts.INSERT_TRIGGER in saved:
        episode_counts.add_bulk(db, before)


def _log_together(db, table: str, names: list[str], after: int,
                  staged: str | None = None) -> None:
    """The change-log rows of a bulk insert: its rows after ``after`` in rowid order (on
    PostgreSQL, by id, or by the ``staged`` table's numbering, ``ehkit.postgres.copy_staged``)."""
    conn, pg = db.conn, is_postgres(db)
    if pg:  # the same steps in PostgreSQL's words: its rows by id (it has no rowid)
        from .postgres import BULK_LOG_ROW, NOW_MS, bulk_rows_sql
    (at,) = conn.execute(NOW_MS if pg else "SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                         ).fetchone()
    who = current_actor()
    head = conn.execute("SELECT hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()
    prev = head[0] if head else None
    t, key, rowid = _q(table), log_key(), "id" if pg else "rowid"
    # The JSON written as text: json_group_array would parse each row's JSON again.
    columns = json.dumps(names, separators=(",", ":")).replace("'", "''")
    payload = bulk_rows_sql(db, table, names, columns, staged) if pg else (
        f"""SELECT '{{"columns":{columns},"rows":[' || group_concat(json_array("""
        f"""{', '.join(f't.{_q(c)}' for c in names)}), ',') || ']}}' """
        f"FROM {t} AS t WHERE t.rowid > ? AND t.rowid <= ?")
    if staged:  # the numbering to read the rows in
        t, rowid = staged, "ehkit_n"
    (last,) = conn.execute(f"SELECT max({rowid}) FROM {t}").fetchone()
    while last is not None and after < last:  # a range of rowids at a time, read in order
        (first,) = conn.execute(f"SELECT min({rowid}) FROM {t} WHERE {rowid} > ?",
                                (after,)).fetchone()  # over any gap in the ids
        upto = first - 1 + BULK_CHUNK
        (new,) = conn.execute(payload, (after, upto)).fetchone()
        fields = (at, _text(who.user), _text(who.actor), table, None, None, None, None, new,
                  _text(who.reason))
        prev = chain_hash(prev, *fields, key=key)
        conn.execute(f"INSERT INTO change_log ({_LOG_COLUMNS}) VALUES "
                     f"({BULK_LOG_ROW if pg else ', '.join('?' * 11)})", (*fields, prev))
        after = upto


def data_fingerprint(db: sqlite_utils.Database) -> str:
    """A short hash of the data's state: the change-log chain head and its length.

    Every write adds a chained change-log row, so this changes whenever any data changes,
    at O(1) cost however big the store is.
    """
    row = db.conn.execute("SELECT id, hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()
    head = row or (0, "")
    return hashlib.sha256(f"{head[0]}:{head[1]}".encode()).hexdigest()[:16]
