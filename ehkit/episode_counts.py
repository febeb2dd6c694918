"""Episodes counted by month, kept as the episodes change, so a report adds up a few hundred
monthly counts instead of counting every episode of every period it shows.

At a million episodes the quarterly report counted about 80,000 episodes a quarter, seven
times over for each of its trend's five quarters: half of its queries' time, and the one
part of the report that grew with the store (issues 18 and 19, bench/RESULTS.md). Every
period a report shows is whole months (:mod:`ehkit.periods`), so its figures of episodes
are sums of months:

- ``episode_counts``: episodes begun (by how they began) and ended (by how they ended) in
  each month, and the month's change in those open (``open_change``: begun less ended), so
  open at a month's end is the sum of the changes up to it (an episode ends on or after its
  start: a CHECK), a row a month.
- ``episode_days``: how many days closed episodes lasted (by the month they ended) and took
  to their first review (by its month), a count per number of days, for the medians.

The counts have no lead agency or referral reason: the quarter's tables by those read the
quarter's episodes once, where the trend's five quarters of headline figures are sums of
counts; a key of four columns made a bulk load's counting three times dearer (SQLite groups
by sorting).

What an episode counts for is said once, here (:data:`KINDS`). The same
statements keep the counts in both dialects: SQLite's triggers run them for each episode
written (its old values taken away, its new added), PostgreSQL's once a statement over its
transition tables, so a COPY of a million is counted in one pass. A bulk insert on SQLite
sets the insert trigger aside and counts its rows together (:func:`ehkit.db.logged_together`).
A count that comes to nought stays as a row of 0: readers add up, so it counts for nothing.
The counts are bookkeeping, not data (not change-logged: the episodes' rows are); after a
migration or a copy they are counted afresh, and ``ehkit check`` compares them with a recount
(DB-COUNTS); ``ehkit recount`` counts them again.
"""

from __future__ import annotations

import sqlite_utils

from . import db as store

# The columns an episode's counts are made of (generated ones among them).
COLUMNS = ("start_date", "end_date", "began_as", "ended_as", "first_review_date", "length_days",
           "days_to_first_review")
# What an episode counts for, in each table: each count's name, the date whose month it falls
# in (none: not counted), and the rest of its key. A blank ending is '' in a key (NULL would
# never match a row already there).
KEYS = {"episode_counts": "counted, month, how", "episode_days": "counted, month, days"}
KINDS = {
    "episode_counts": (("began", "start_date", "began_as AS how"),
                       ("ended", "end_date", "coalesce(ended_as, '')")),
    "episode_days": (("length", "end_date", "length_days AS days"),
                     ("to_first_review", "first_review_date", "days_to_first_review")),
}
# The month's change in those open: begun less ended, from the two.
OPEN_CHANGE = ("SELECT 'open_change', month, '', "
               "sum(CASE counted WHEN 'began' THEN n ELSE -n END) FROM g GROUP BY 2")


def counted(table: str, changed: list[tuple[str, int]]) -> str:
    """The rows of ``table`` that the episodes in ``changed`` ((source, what each counts: 1,
    or -1 taken away)) count for, summed by key, as (key..., n); none that sum to 0. Each
    kind is grouped apart and open_change made from the grouped: SQLite groups by sorting, and
    a bulk load's rows are sorted twice, not four times."""
    width = KEYS[table].count(",") + 1
    kinds = " UNION ALL ".join(
        f"SELECT '{name}' AS counted, substr({date}, 1, 7) AS month, {rest}, {n} * count(*) "
        f"AS n FROM {e} WHERE {date} IS NOT NULL GROUP BY {', '.join(map(str, range(2, width + 1)))}"
        for name, date, rest in KINDS[table] for e, n in changed)
    grouped = f"SELECT {KEYS[table]}, sum(n) AS n FROM ({kinds}) AS k GROUP BY {KEYS[table]}"
    derived = f" UNION ALL {OPEN_CHANGE}" if table == "episode_counts" else ""
    return (f"SELECT * FROM (WITH g AS ({grouped}) SELECT * FROM g{derived}) AS c "
            "WHERE n <> 0")


def changes(changed: list[tuple[str, int]]) -> list[str]:
    """The statements that add the episodes in ``changed`` to the counts (and take away
    those counted -1): a key's count made or moved by the sum, keys that sum to 0 untouched
    (an episode saved with its counted columns as they were changes nothing)."""
    return [f"INSERT INTO {table} ({key}, episodes) {counted(table, changed)} "
            f"ON CONFLICT ({key}) DO UPDATE SET episodes = {table}.episodes + excluded.episodes"
            for table, key in KEYS.items()]


def one(alias: str) -> str:
    """One episode as a source of rows: a trigger's ``NEW`` or ``OLD`` (SQLite)."""
    return "(SELECT " + ", ".join(f"{alias}.{c} AS {c}" for c in COLUMNS) + ") AS e"


def after(rowid: int) -> str:
    """The episodes a bulk insert added, after ``rowid`` (SQLite)."""
    return f"(SELECT {', '.join(COLUMNS)} FROM episodes WHERE rowid > {int(rowid)}) AS e"


EVERY = "episodes AS e"

# -- the triggers -----------------------------------------------------------------------------
INSERT_TRIGGER = "count_episodes_insert"  # SQLite's: set aside by a bulk insert


def trigger_sql(db) -> dict[str, str]:
    """The triggers that keep the counts: {name: CREATE sql}. PostgreSQL's call one function
    (:func:`function_sql`) once a statement."""
    if store.is_postgres(db):
        return {f"count_episodes_{op.lower()}": (
            f"CREATE TRIGGER count_episodes_{op.lower()} AFTER {op} ON episodes REFERENCING "
            f"{tables} FOR EACH STATEMENT EXECUTE FUNCTION ehkit_count_episodes()")
            for op, tables in (("INSERT", "NEW TABLE AS new_rows"),
                               ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                               ("DELETE", "OLD TABLE AS old_rows"))}
    sides = {"insert": [(one("NEW"), 1)], "update": [(one("OLD"), -1), (one("NEW"), 1)],
             "delete": [(one("OLD"), -1)]}
    moved = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COLUMNS)  # else nothing to count
    return {f"count_episodes_{op}": (
        f"CREATE TRIGGER count_episodes_{op} AFTER {op.upper()} ON episodes "
        + (f"WHEN {moved} " if op == "update" else "") + "BEGIN "
        + " ".join(s + ";" for s in changes(changed)) + " END")
        for op, changed in sides.items()}


def function_sql() -> str:
    """PostgreSQL's trigger function: a statement's old rows taken away, its new added."""
    def block(changed):
        return " ".join(s + ";" for s in changes(changed))
    return ("CREATE OR REPLACE FUNCTION ehkit_count_episodes() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN "
            f"IF TG_OP = 'INSERT' THEN {block([('new_rows AS e', 1)])} "
            f"ELSIF TG_OP = 'UPDATE' THEN {block([('old_rows AS e', -1), ('new_rows AS e', 1)])} "
            f"ELSE {block([('old_rows AS e', -1)])} END IF; RETURN NULL; END $$")


def triggers_amiss(db) -> list[tuple[str, str]]:
    """The triggers that keep the counts and are not as made: (name, what is wrong)."""
    if store.is_postgres(db):
        from . import postgres

        live = postgres.live_triggers(db)
        return [(name, "missing" if name not in live else "altered"
                 if live[name][0][:2] != ("episodes", "ehkit_count_episodes") else "disabled")
                for name in trigger_sql(db) if name not in live or not live[name][1]
                or live[name][0][:2] != ("episodes", "ehkit_count_episodes")]
    live = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    return [(name, "missing" if name not in live else "altered")
            for name, sql in trigger_sql(db).items() if live.get(name) != sql]


def install(db) -> None:
    """(Re)make the triggers and count every episode afresh: after a migration (its own
    write)."""
    if store.is_postgres(db):
        db.execute(function_sql())
    for name, sql in trigger_sql(db).items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON episodes" if store.is_postgres(db)
                                                         else ""))
        db.execute(sql)
    recount(db)


def afresh(db) -> int:
    """``ehkit recount``: the triggers made again and every episode counted afresh, by one
    who may check the store (it changes no data); how many episodes were counted."""
    from . import access

    access.require(db, "check")
    with store.transaction(db):
        install(db)
    return db.execute("SELECT coalesce(sum(episodes), 0) FROM episode_counts "
                      "WHERE counted = 'began'").fetchone()[0]


def recount(db) -> None:
    """Count every episode afresh (inside a write)."""
    for table in KEYS:
        db.execute(f"DELETE FROM {table}")
    for sql in changes([(EVERY, 1)]):
        db.execute(sql)


def add_bulk(db: sqlite_utils.Database, rowid: int) -> None:
    """Count the episodes a bulk insert added after ``rowid`` (SQLite; inside its write)."""
    for sql in changes([(after(rowid), 1)]):
        db.execute(sql)


def differences(db, most: int = 5) -> list[tuple[str, tuple, int]]:
    """Where the counts differ from a recount: (table, key, kept less counted), at most
    ``most`` of them; empty when they agree."""
    out: list[tuple[str, tuple, int]] = []
    for table, key in KEYS.items():
        rows = db.execute(
            f"SELECT {key}, sum(n) FROM (SELECT {key}, episodes AS n FROM {table} UNION ALL "
            f"SELECT {key}, -n FROM ({counted(table, [(EVERY, 1)])}) AS r) AS d "
            f"GROUP BY {key} HAVING sum(n) <> 0 ORDER BY {key} LIMIT {int(most)}").fetchall()
        out += [(table, tuple(r[:-1]), r[-1]) for r in rows]
    return out[:most]
