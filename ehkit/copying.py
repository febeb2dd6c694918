"""``ehkit copy``: move a council's store from its SQLite file into PostgreSQL, change log
included, so the copy's chain verifies as the original's did.

The copy is one PostgreSQL transaction: every table's rows as they are (their ids kept,
loaded with COPY), the change log row for row with its hashes, and the change log's counter
where SQLite's stood. The tables' change-log triggers are set aside for the load (the
rows are logged already: the log copied is their history), and the foreign keys are checked
at the end. Before it commits, the copy's change-log chain is verified and every table's
row count compared with the source's; anything wrong and nothing is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import access, check, episode_counts
from . import db as store
from .errors import EhkitError


class CopyError(EhkitError):
    pass


@dataclass(frozen=True)
class Copied:
    target: str  # the URL as shown (no password)
    rows: dict[str, int]  # {table: rows copied}, the change log's among them
    chain_head: str | None

    def __str__(self) -> str:
        data = sum(n for t, n in self.rows.items() if t != "change_log")
        return (f"copied to {self.target}: {data:,} rows in {len(self.rows) - 1} tables, change "
                f"log {self.rows['change_log']:,} rows, chain head {self.chain_head or '-'} "
                "(verified). Point EHKIT_DB at it, and run `ehkit check --db URL`")


def copy(source, target: str) -> Copied:
    """Copy the SQLite store ``source`` into the empty PostgreSQL database ``target``."""
    from . import postgres

    if not store.postgres_url(target):
        raise CopyError(f"--to {target!r} is not a PostgreSQL URL: give postgresql://LOGIN@HOST/"
                        "DATABASE (an empty database, or one `ehkit copy` left empty)")
    if store.postgres_url(source):
        raise CopyError("--from must be a SQLite store file: copying out of PostgreSQL is not "
                        "yet possible")
    src = store.connect(source, read_only=True)
    try:
        access.require(src, "backup")  # the whole store, names and all: a backup's permission
        if pending := check._pending(src):
            raise CopyError(f"{store.db_path(source)} is {len(pending)} migration(s) behind this "
                            f"ehkit: bring it up to date first (ehkit upgrade --db "
                            f"{store.db_path(source)}), then copy")
        dst = store.connect(target)
        try:
            return _copy_into(src, dst, postgres.shown(target))
        finally:
            dst.close()
    finally:
        src.close()


def _copy_into(src, dst, shown: str) -> Copied:
    tables = store.logged_tables(src)
    missing = sorted(set(tables) - set(dst.table_names()))
    if missing:
        raise CopyError(f"{shown} has no table {', '.join(missing)}: it is not this ehkit's "
                        "schema; copy into an empty database")
    with store.transaction(dst):
        held = [t for t in [*tables, "change_log"] if
                dst.execute(f"SELECT EXISTS (SELECT 1 FROM {store._q(t)})").fetchone()[0]]
        if held:
            raise CopyError(f"{shown} already holds data ({', '.join(held[:3])}): copy only into "
                            "an empty database, so nothing there is overwritten or mixed")
        dst.execute("SET CONSTRAINTS ALL DEFERRED")
        for t in tables:
            dst.execute(f"ALTER TABLE {store._q(t)} DISABLE TRIGGER USER")
        rows = {t: _copy_table(src, dst, t) for t in [*tables, "change_log"]}
        dst.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys, checked now
        for t in tables:
            dst.execute(f"ALTER TABLE {store._q(t)} ENABLE TRIGGER USER")
        episode_counts.recount(dst)  # loaded with their triggers aside, as the log's
        _move_counters(src, dst)
        if findings := check.chain_checks(dst):
            raise CopyError(f"the copy's change log does not verify ({findings[0]}): nothing "
                            "was copied. Run `ehkit check` on the source")
        for t, n in rows.items():
            (there,) = dst.execute(f"SELECT count(*) FROM {store._q(t)}").fetchone()
            if there != n:
                raise CopyError(f"{t}: {n} rows read but {there} in the copy: nothing was copied")
        head = check.head(dst)[1]
    from . import postgres

    postgres.gather_statistics(dst)  # a bulk load: the reports that follow are planned by them
    return Copied(shown, rows, head)


def _copy_table(src, dst, table: str) -> int:
    """Load ``table``'s rows in the source's order; the number copied."""
    import psycopg
    from psycopg.types.json import Jsonb

    names = store.table_columns(dst, table)[0]
    have = store.table_columns(src, table)[0]
    if set(names) != set(have):
        raise CopyError(f"{table} has the columns {', '.join(sorted(set(have) ^ set(names)))} "
                        "on one side only: the two ehkit versions differ; copy with the "
                        "ehkit that made the PostgreSQL schema")
    listed = ", ".join(map(store._q, names))
    as_json = [c in ("old", "new") and table == "change_log" for c in names]  # jsonb there
    n = 0
    try:
        with dst.conn.raw.cursor().copy(
                f"COPY {store._q(table)} ({listed}) FROM STDIN") as load:
            for row in src.conn.execute(f"SELECT {listed} FROM {store._q(table)} ORDER BY rowid"):
                load.write_row([Jsonb(v) if j and v is not None else v
                                for v, j in zip(row, as_json, strict=True)])
                n += 1
    except psycopg.Error as e:
        raise CopyError(f"{table}: PostgreSQL refused row {n + 1} ({e.diag.message_primary}"
                        f"{'; ' + e.diag.message_detail if e.diag.message_detail else ''}): "
                        "nothing was copied. Run `ehkit check` on the source") from None
    return n


def _move_counters(src, dst) -> None:
    """The change log's counter where SQLite's stood (AUTOINCREMENT's sqlite_sequence), so
    rows removed from the end of the log before the copy are still found missing. (A data
    table's next id needs nothing: it is one past the largest, as in SQLite.)"""
    row = src.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'").fetchone()
    if row and row[0]:
        dst.execute("UPDATE change_log_counter SET seq = ?", [row[0]])
