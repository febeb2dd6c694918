"""Chain heads kept outside the database: the anchor file, one line per verified head.

Plain hashes show a change-log row altered by someone who did not recompute the hashes.
Someone who did could rewrite the whole log consistently; an anchor, noted outside the
store, catches that: the log must still hold each anchored (row id, hash). Every ``ehkit
backup`` and every clean ``ehkit check`` appends the head it verified to
``ehkit-anchors.txt`` in the backups folder. A line is::

    2026-11-24T14:30:05Z, 3f2a...(store), 1234, 9b1c...(hash)[, restore]

The store is named by its first change-log row's hash, which its backups share. A restore
starts a new line of that store's heads (``restore``): anchors before it no longer bind. A
new store made where there are anchors (``ehkit demo``, an import into a new store) adds its
first head (``new``), so a check does not take it for a log rewritten from the start.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

FILE_NAME = "ehkit-anchors.txt"
RESTORE, NEW = "restore", "new"  # notes that start a new line of heads


@dataclass(frozen=True)
class Anchor:
    when: str
    store: str
    row_id: int
    hash: str
    note: str = ""

    def line(self) -> str:
        return ", ".join([self.when, self.store, str(self.row_id), self.hash,
                          *([self.note] if self.note else [])])


def default_file(store_path: str | os.PathLike) -> Path:
    """The anchor file a plain ``ehkit check`` reads: in ``backups/`` beside the store."""
    return Path(store_path).parent / "backups" / FILE_NAME


def identity(db: sqlite_utils.Database) -> str | None:
    """The store's identity: its first change-log row's hash (None while the log is empty)."""
    row = db.conn.execute("SELECT hash FROM change_log ORDER BY id LIMIT 1").fetchone()
    return row[0] if row else None


def head_of(db: sqlite_utils.Database, note: str = "") -> Anchor | None:
    row = db.conn.execute("SELECT id, hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()
    if not row:
        return None
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Anchor(when, identity(db), row[0], row[1], note)


def append(file: Path, anchor: Anchor) -> None:
    """Add one line (opened for appending only, flushed to disk before returning)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (anchor.line() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read(file: Path) -> tuple[list[Anchor], list[int]]:
    """The anchors in ``file``, and the numbers of lines that are not anchors."""
    anchors, bad = [], []
    for n, text in enumerate(file.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        parts = [p.strip() for p in text.split(",")]
        if not text.strip():
            continue
        if len(parts) in (4, 5) and parts[2].isdigit() and parts[1] and parts[3]:
            anchors.append(Anchor(parts[0], parts[1], int(parts[2]), parts[3],
                                  parts[4] if len(parts) == 5 else ""))
        else:
            bad.append(n)
    return anchors, bad


def binding(anchors: list[Anchor], store: str | None) -> list[Anchor]:
    """This store's anchors that still bind it: those since its line last began anew."""
    mine = [a for a in anchors if a.store == store]
    starts = [i for i, a in enumerate(mine) if a.note in (RESTORE, NEW)]
    return mine[starts[-1]:] if starts else mine


def start_anew(db: sqlite_utils.Database, store_path, note: str = NEW) -> None:
    """A store made or restored where another was: its heads start a new line."""
    head = head_of(db, note)
    if head and (note == RESTORE or default_file(store_path).is_file()):
        append(default_file(store_path), head)
