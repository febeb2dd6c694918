"""An import's write on a PostgreSQL store (issue 18): where its SQL differs from SQLite's.

The checks, the counts and the rejects are :mod:`ehkit.importing`'s, the same on both; only
these steps of the write say it in PostgreSQL's words.
"""

from __future__ import annotations

from . import db as store


def defer_import_stamps(db) -> None:
    """Rows stamped with the import's number are written before its record (SQLite defers its
    foreign keys to the commit for this): the keys on ``imports`` checked at the commit. Only
    those: a deferred check of any other table would stop the bulk log setting its trigger
    aside (PostgreSQL alters no table with checks pending)."""
    names = [r[0] for r in db.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND confrelid = 'imports'::regclass"
        " AND condeferrable ORDER BY conname")]
    if names:
        db.execute(f"SET CONSTRAINTS {', '.join(map(store._q, names))} DEFERRED")


# At least this many rows written and the planner's statistics are gathered at once, as
# SQLite's import rebuilds its indexes from 1,000 new rows on.
BULK = 1000


def after_import(db, written: int) -> None:
    """A big import leaves PostgreSQL's statistics gathered (autovacuum's come a minute or so
    later): a report run straight after is planned for the rows there."""
    from . import postgres

    if written >= BULK:
        postgres.gather_statistics(db)
