"""``ehkit backup``: a dated copy of the live database, safe while auditors are saving.

SQLite's online backup API copies a consistent snapshot: in WAL mode a reader never blocks
the writers, and copying in one step means no save can slip in half-way. The copy is
written under a temporary name, checked (``integrity_check`` and the change-log chain),
flushed to disk and only then renamed, so a file with a backup's name is always whole.

A PostgreSQL store is backed up with ``pg_dump`` and restored with ``pg_restore``, with the
same checks (:func:`_backup_postgresql`, :func:`_restore_postgresql`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from . import access, anchors, check
from . import db as store
from .errors import EhkitError


class BackupError(EhkitError):
    pass


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    change_log_rows: int
    chain_head: str | None
    leftovers_removed: list[Path] = field(default_factory=list)


def backup_name(source: Path, when: dt.datetime) -> str:
    return f"{source.stem}-{when:%Y-%m-%dT%H%M%SZ}.db"


def backup(path=None, dest_dir=None, *, now: dt.datetime | None = None) -> Backup:
    """Copy the database at ``path`` to ``dest_dir`` (default: a ``backups`` folder beside it).

    Reads the store read-only (a store on read-only media can be backed up), anchors the
    copy's chain head in the folder's anchor file (and the one a plain ``ehkit check``
    reads), and removes copies an interrupted backup left half-written.
    """
    if url := store.postgres_url(path):
        return _backup_postgresql(url, dest_dir, now)
    source = store.db_path(path)
    live = store.connect(source, read_only=True)
    try:
        access.require(live, "backup")
    except access.NotAllowed:
        live.close()
        raise
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    folder = Path(dest_dir) if dest_dir else source.parent / "backups"
    target = folder / backup_name(source, when)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        leftovers = _remove_leftovers(folder)
        n = 1
        while target.exists():
            n += 1
            target = folder / f"{target.stem.rsplit('~', 1)[0]}~{n}.db"
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(str(partial), isolation_level=None)
        try:
            live.conn.execute("BEGIN")  # one read: the seal and the copy see the same moment
            sealed = store.schema_sealed(live.conn)
            live.conn.backup(copy)  # one step: a consistent snapshot
            live.conn.execute("COMMIT")
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            _carry_seal(sealed, copy)
            database = sqlite_utils.Database(copy)
            problems = _problems(copy)
            rows = copy.execute("SELECT count(*) FROM change_log").fetchone()[0]
            head = anchors.head_of(database)
        finally:
            copy.close()
    except (sqlite3.Error, OSError) as e:
        with contextlib.suppress(OSError, UnboundLocalError):
            partial.unlink(missing_ok=True)
        raise BackupError(f"could not back up {source} to {folder}: {e}. Check there is room "
                          "and you may write there, then try again.") from e
    finally:
        live.close()
    if problems:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its checks ({problems[0]}): the live "
                          "database may be damaged; run `ehkit check` and keep your older backups")
    _fsync(partial)
    os.replace(partial, target)
    _fsync_dir(folder)
    if head:
        _anchor(head, folder, source)
    return Backup(target, target.stat().st_size, rows, head.hash if head else None, leftovers)


PARTIAL_AGE = dt.timedelta(hours=1)  # untouched so long: no backup is still writing it


def _remove_leftovers(folder: Path) -> list[Path]:
    """Half-written copies an interrupted backup left (``*.partial``): removed."""
    old = dt.datetime.now().timestamp() - PARTIAL_AGE.total_seconds()
    gone = [p for p in folder.glob("*.partial") if p.stat().st_mtime < old]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def _anchor(head: anchors.Anchor, folder: Path, source: Path) -> None:
    for file in dict.fromkeys([folder / anchors.FILE_NAME, anchors.default_file(source)]):
        try:
            anchors.append(file, head)
        except OSError:
            if file.parent == folder:
                raise
            # beside a store on read-only media there is nowhere to write: the copy's folder has it


def _carry_seal(sealed: tuple[int, int], copy: sqlite3.Connection) -> None:
    """SQLite's backup starts the copy's count of schema changes again: seal the copy anew
    if the source's schema was as ehkit left it (else the copy keeps showing it was not)."""
    if sealed[0] and sealed[0] == sealed[1]:
        store.seal_schema(copy)


def _problems(con: sqlite3.Connection) -> list[str]:
    out = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
    if not out:
        out = [str(f) for f in check.chain_checks(sqlite_utils.Database(con))]
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:
        pass  # not every system can fsync a directory


def restore(backup_file, path=None, *, force: bool = False) -> Path | None:
    """Put a backup back as the database at ``path``.

    Refuses a backup that fails its checks. An existing database is only replaced with
    ``force``, and is first backed up itself (returned), so a restore can be undone.
    """
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise BackupError(f"no backup file at {backup_file}")
    if url := store.postgres_url(path):
        return _restore_postgresql(backup_file, url)
    target = store.db_path(path)
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True, isolation_level=None)
    try:
        problems = _problems(src)
        if problems:
            raise BackupError(f"{backup_file} failed its checks ({problems[0]}): choose an "
                              "older backup")
        before = None
        if target.exists():
            if not force:
                raise BackupError(f"{target} exists: add --force to replace it (it is backed "
                                  "up first)")
            before = backup(target, target.parent / "backups").path
        live = store.connect(target, migrate=False)
        try:
            sealed = store.schema_sealed(src)
            src.backup(live.conn)  # takes the write lock: others wait, then see the restore
            with store.transaction(live):
                _carry_seal(sealed, live.conn)
        finally:
            live.close()
    finally:
        src.close()
    restored = store.connect(target)  # bring an older backup up to the current schema
    try:  # anchors of later heads no longer bind this store: its heads start anew here
        anchors.start_anew(restored, target, anchors.RESTORE)
    finally:
        restored.close()
    return before


# -- PostgreSQL: pg_dump and pg_restore, with the same checks ------------------------------
def _backup_postgresql(url: str, dest_dir, now: dt.datetime | None) -> Backup:
    """pg_dump's custom format, of the very moment whose change log was verified: the check
    reads a snapshot, and pg_dump dumps that snapshot (``--snapshot``). Written under a
    temporary name, its archive read back (``pg_restore --list``), then named."""
    from . import postgres

    if not dest_dir:
        raise BackupError("a PostgreSQL store has no folder beside it for backups: give one "
                          "with --to")
    command, env = postgres.tool("pg_dump", url)
    live = store.connect(url, read_only=True)
    try:
        access.require(live, "backup")
        (name,) = live.execute("SELECT current_database()").fetchone()
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        folder = Path(dest_dir)
        folder.mkdir(parents=True, exist_ok=True)
        leftovers = _remove_leftovers(folder)
        target, n = folder / f"{name}-{when:%Y-%m-%dT%H%M%SZ}.dump", 1
        while target.exists():
            n += 1
            target = folder / f"{name}-{when:%Y-%m-%dT%H%M%SZ}~{n}.dump"
        partial = target.with_name(target.name + ".partial")
        live.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            (snapshot,) = live.execute("SELECT pg_export_snapshot()").fetchone()
            problems = [str(f) for f in check.chain_checks(live) + check.trigger_checks(live)]
            (rows,) = live.execute("SELECT count(*) FROM change_log").fetchone()
            head = anchors.head_of(live)
            if not problems:
                _run([*command, "--format=custom", f"--snapshot={snapshot}", "--file",
                      str(partial)], env, f"could not back up {postgres.shown(url)}", partial)
        finally:
            live.execute("ROLLBACK")
    finally:
        live.close()
    if problems:
        raise BackupError(f"{postgres.shown(url)} failed its checks ({problems[0]}): nothing "
                          "was backed up; run `ehkit check` and keep your older backups")
    _run([postgres.tool("pg_restore", url)[0][0], "--list", str(partial)], env,
         f"the backup {partial} cannot be read back", partial)
    _fsync(partial)
    os.replace(partial, target)
    _fsync_dir(folder)
    if head:
        anchors.append(folder / anchors.FILE_NAME, head)
    return Backup(target, target.stat().st_size, rows, head.hash if head else None, leftovers)


def _restore_postgresql(backup_file: Path, url: str) -> None:
    """pg_restore into an empty database, in one transaction; then the same checks as a
    backup's. Nothing is replaced: make a new database, restore there, point EHKIT_DB at it."""
    from . import postgres

    command, env = postgres.tool("pg_restore", url)
    _run([command[0], "--list", str(backup_file)], env, f"{backup_file} is not a backup "
         "`ehkit backup` made of a PostgreSQL store")
    target = store.connect(url, migrate=False)
    try:
        if target.table_names():
            raise BackupError(f"{postgres.shown(url)} is not empty: restore into a new, empty "
                              "database, then point EHKIT_DB at it (nothing was replaced)")
    finally:
        target.close()
    _run([*command, "--single-transaction", "--exit-on-error", "--no-owner", str(backup_file)],
         env, f"could not restore {backup_file}")
    restored = store.connect(url, read_only=True)
    try:
        problems = [str(f) for f in check.trigger_checks(restored) + check.chain_checks(restored)]
    finally:
        restored.close()
    if problems:
        raise BackupError(f"{backup_file} was restored into {postgres.shown(url)} but fails "
                          f"its checks ({problems[0]}): do not use it; choose an older backup")


def _run(command: list[str], env: dict, failed: str, partial: Path | None = None) -> None:
    """Run PostgreSQL's tool; if it fails, say why in one line (and remove ``partial``)."""
    import subprocess

    from . import postgres

    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        if partial:
            partial.unlink(missing_ok=True)
        why = " ".join(done.stderr.split())[:300] or f"exit code {done.returncode}"
        raise BackupError(f"{failed} ({postgres.shown(why)}). Nothing was changed")
