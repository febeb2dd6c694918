"""What every write checks about the record it acts on: that its number is a record number,
and that the record is still as the person saw it (no lost update).

A record's **version** is the number of the last change-log row about it. The change-log
triggers write a row for every insert, update and delete, in the write's own transaction,
so every write moves the version on, whatever code made it, and that row says who made the
write and when. An audit's version covers the audit and what its form shows: its answers,
checklist, actions and moderations. A record loaded in bulk and not changed since is at
version 0.

A function that acts on what a person saw takes the version they loaded
(``expected_version``) and calls :func:`expect` inside its ``BEGIN IMMEDIATE``
transaction: a later write by anyone refuses it with :class:`StaleRecord`, and nothing is
written. ``None`` means "as it is now", for callers that showed nobody anything.
"""

from __future__ import annotations

import operator

import sqlite_utils

from .dates import uk_time
from .errors import EhkitError

# SQLite stores an INTEGER in 8 bytes; a larger number is no record's number.
LARGEST_ID = 2**63 - 1
AUDIT_TABLES = ("audits", "answers", "checklist_answers", "actions", "moderations")

_LAST = {
    "audit": ("SELECT id, at, \"user\", actor FROM change_log WHERE audit_id = ? AND table_name IN"
              f" ({', '.join(repr(t) for t in AUDIT_TABLES)}) ORDER BY id DESC LIMIT 1"),
    "action": ("SELECT id, at, \"user\", actor FROM change_log WHERE table_name = 'actions'"
               " AND row_key = CAST(? AS TEXT) ORDER BY id DESC LIMIT 1"),
}


class StaleRecord(EhkitError):
    """The record was changed by someone else after the person loaded it; nothing was saved."""

    def __init__(self, kind: str, number: int, who: str, at: str):
        self.kind, self.number, self.who, self.at = kind, number, who, at
        super().__init__(
            f"this {kind} (no. {number}) was changed by {who} at {at} since you opened it, "
            "so nothing you asked was saved: reload it to see their change, then make yours "
            "again")


def record_id(value, what: str, error: type[EhkitError] = EhkitError) -> int:
    """``value`` as the number of a record (a whole number SQLite can hold), or ``error``
    saying what was given; ``what`` names the record, e.g. 'audit'."""
    if value is None:
        raise error(f"no {what} was given: choose one (or give its number)")
    try:
        if isinstance(value, bool | str | bytes):
            raise TypeError
        number = operator.index(value)  # ints (numpy's too), never 2.5 or "2"
    except TypeError:
        raise error(f"{value!r:.40} is not {_a(what)} number: give the number as shown "
                    "in ehkit (a whole number)") from None
    if not 1 <= number <= LARGEST_ID:
        raise error(f"there is no {what} number {number}: check the number "
                    "(ehkit lists the ones there are)")
    return number


def is_id(value) -> bool:
    """Is ``value`` a record number (:func:`record_id` takes it)?"""
    try:
        record_id(value, "record")
    except EhkitError:
        return False
    return True


def _a(what: str) -> str:
    return ("an " if what[:1] in "aeiou" else "a ") + what


def version(db: sqlite_utils.Database, kind: str, number: int) -> int:
    """The record's version now (``kind``: 'audit' or 'action')."""
    row = db.execute(_LAST[kind], [number]).fetchone()
    return row[0] if row else 0


def expect(db: sqlite_utils.Database, kind: str, number: int, expected: int | None) -> None:
    """Refuse with StaleRecord unless the record is still at the ``expected`` version.

    Call it inside the write's transaction, so nobody can write between this check and
    the write.
    """
    if expected is None:
        return
    if not db.conn.in_transaction:
        raise RuntimeError("records.expect runs inside store.transaction()")
    row = db.execute(_LAST[kind], [number]).fetchone()
    if (row[0] if row else 0) == _given_version(expected, kind):
        return
    if row is None:  # its change-log rows are gone: `ehkit check` says more
        raise StaleRecord(kind, number, "someone", "an unknown time")
    _, at, user, actor = row
    who = user if actor in (None, user) else f"{actor} (login {user})"
    raise StaleRecord(kind, number, who, uk_time(at))


def _given_version(value, kind: str) -> int:
    """A version as given back by a caller: what ``load``/``get`` returned, a whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EhkitError(f"{value!r:.40} is not the version of {_a(kind)}: pass back the "
                         "'version' that loading it gave")
    return value
