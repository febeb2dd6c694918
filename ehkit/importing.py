"""The import frame every import uses: episodes, practitioners and agencies (:mod:`ehkit.cases`)
and service-user feedback (:mod:`ehkit.service_user_feedback`).

One way for each step, so the imports cannot drift apart: reading a file (a CSV in UTF-8, with
or without BOM, or Windows-1252, with any delimiter; or an ``.xlsx``), finding the header row
(title rows above it skipped, headings matched ignoring case, spaces and punctuation), reading
dates and whole numbers, listing every broken rule of a row (its code from the rules registry)
in ``reports/imports/<file>-rejects.csv``, writing the valid rows in ONE transaction, recording
the import with its file's sha256, and the summary and exit code a person reads.

An import gives :func:`open_file` the columns it knows, checks the rows of the
:class:`File` it gets back (its own named steps), and hands its problems and its write to
:func:`finish`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils

from . import access, importing_pg, rules, spreadsheet
from . import db as store
from .errors import EhkitError

REJECTS_DIR = Path("reports") / "imports"


# -- errors for a person -----------------------------------------------------------------
class ImportFailed(EhkitError):
    """The whole file could not be imported (nothing was written)."""


class WrongColumns(ImportFailed):
    pass


class UnreadableFile(ImportFailed):
    pass


# -- the rules every import asks of a row: code -> what a data officer reads ------------------
rules.register_all({
    "MISSING_VALUE": "a required value is blank",
    "BAD_DATE": "not a date ehkit can read (use 31/01/2026, 31-Jan-2026 or 2026-01-31)",
    "IMPOSSIBLE_DATE": "no such day in the calendar",
    "BAD_NUMBER": "not a whole number",
    "TOO_MANY_CELLS": "a row of the file has more cells than there are columns",
    "DUPLICATE_ROW": "the same as an earlier row, which was imported",
}, kind="import")


# What an import exits with, for scripts and schedulers (the same for every import).
EXIT_IMPORTED, EXIT_SOME_REJECTED = 0, 1  # a file refused whole is an EhkitError: exit 2


REJECT_COLUMNS = ("row", "code", "field", "value", "reason")


@dataclass(frozen=True)
class Problem:
    """One broken rule in one row: what a rejects file lists."""

    row: int
    code: str
    field: str
    value: str
    detail: str = ""

    @property
    def message(self) -> str:
        return rules.get(self.code).message + (f": {self.detail}" if self.detail else "")


class Bad(Exception):
    """A value broke a rule: the import makes it a Problem of its row and field."""

    def __init__(self, code: str, detail: str = ""):
        self.code, self.detail = code, detail


@dataclass
class ImportSummary:
    """What an import did: rows read = inserted + updated + unchanged + rejected, always."""

    kind: str
    file: str
    sha256: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    rejects_file: Path | None = None
    created_agencies: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    import_id: int | None = None

    @property
    def exit_code(self) -> int:
        """0 when every row was imported, 1 when any was rejected (the rest imported)."""
        return EXIT_SOME_REJECTED if self.rejected else EXIT_IMPORTED

    def __str__(self) -> str:
        lines = [f"{self.file}: read {self.read:,} rows = {self.inserted:,} inserted + "
                 f"{self.updated:,} updated + {self.unchanged:,} unchanged + "
                 f"{self.rejected:,} rejected"]
        if self.read and not (self.inserted or self.updated):
            lines.append("nothing changed: every valid row is already in the store"
                         if self.unchanged else "nothing was imported")
        if self.ignored_columns:
            lines.append("columns not used (ignored): " + ", ".join(self.ignored_columns))
        if self.created_agencies:
            lines.append("created agencies: " + ", ".join(self.created_agencies))
        if self.rejects_file:
            codes: dict[str, int] = {}
            for p in self.problems:
                codes[p.code] = codes.get(p.code, 0) + 1
            lines.append(f"rejected rows and why: {self.rejects_file} ("
                         + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) + ")")
        return "\n".join(lines)


_NOT_ALNUM = re.compile(r"[^0-9a-z]")


@functools.lru_cache(maxsize=65536)  # exports repeat the same agencies, names and words
def norm(text) -> str:
    """A header or word as matched: lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", str(text).casefold())

# -- reading a file --------------------------------------------------------------------------
def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        encodings = ["utf-8-sig"]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8", "cp1252"]
    for enc in encodings:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile(f"{name}: the file is neither UTF-8 nor Windows-1252 text: save it "
                         "from Excel as 'CSV UTF-8' and import again")


# What str.strip removes from a cell's ends.
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


def _trimmed(text: str, delimiter: str) -> bool:
    """True when no cell of a CSV's text can begin or end with whitespace, so none needs
    trimming (a sixteenth of a big import): told by a few quick searches of the whole text
    for a space beside a delimiter, quote or line end, and for other whitespace than line
    ends. A quoted cell may hold a line end: a quote beside one says no too."""
    if text.startswith(" ") or text.endswith(" "):
        return False
    if any(c in text for c in _SPACES if c not in (" ", "\r", "\n", delimiter)):
        return False
    quoted = '"' in text
    ends = (delimiter, "\r", "\n", '"') if quoted else (delimiter, "\r", "\n")
    if text.isascii():  # the characters beside each space, by numpy (0.03 s, not 0.2 s)
        b = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        at = np.flatnonzero(b == ord(" "))  # (none at either end of the text: said above)
        if np.isin(b[np.concatenate([at - 1, at + 1])], [ord(e) for e in ends]).any():
            return False
    elif any(end + " " in text or " " + end in text for end in ends):
        return False
    return not quoted or not any(p in text for p in ('"\r', '"\n', '\r"', '\n"'))


def read_rows(path: Path, raw: bytes | None = None
              ) -> tuple[Iterable[tuple[int, list]], bool, tuple | None]:
    """(row number as Excel shows it, cells) for every row of a CSV or .xlsx file (``raw``:
    its bytes, if read already); whether every cell is text trimmed already (a CSV's,
    :func:`_trimmed`); and for a CSV without quotes, its lines and delimiter
    (:func:`_plain_lines`), else None."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises many kinds for a damaged file
            raise UnreadableFile(f"{path.name}: not a readable Excel file ({e})") from None
        try:
            ws = wb.worksheets[0]
            return [(n, list(r)) for n, r in enumerate(ws.iter_rows(values_only=True),
                                                       start=1)], False, None
        finally:
            wb.close()
    if suffix == ".xls":
        raise UnreadableFile(f"{path.name}: old .xls files cannot be read: save it as .xlsx "
                             "or CSV and import again")
    text = _decode(path.read_bytes() if raw is None else raw, path.name)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    trimmed = _trimmed(text, delimiter)
    lines = _plain_lines(text)
    if lines is not None:  # each line a row, split at each delimiter as csv.reader would
        return ((n, line.split(delimiter)) for n, line in enumerate(lines, start=1)), \
            trimmed, (lines, delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return enumerate(reader, start=1), trimmed, None


def _plain_lines(text: str) -> list[str] | None:
    """A CSV's lines when no quote can join or hide a delimiter or line end (most exports),
    so that a line is a row and its cells lie between delimiters; else None."""
    if '"' in text or "\0" in text:  # (csv.reader refuses a NUL: it keeps that error)
        return None
    windows = "\r" in text
    lines = text.split("\r\n" if windows else "\n")  # every line end Windows': no copy made
    ends = len(lines) - 1
    if windows and (text.count("\r") != ends or text.count("\n") != ends):
        # a mix of line ends: each "\r\n" made one "\n" first
        text = text.replace("\r\n", "\n")
        if "\r" in text:  # a line end of its own for csv.reader
            return None
        lines = text.split("\n")
    if lines[-1] == "":  # the file's last line end
        lines.pop()
    return lines


def _plain_columns(lines: list[str], first: int, delimiter: str, width: int
                   ) -> tuple[list[int], list[list[str]], list[str]] | None:
    """The data lines of a plain CSV (:func:`_plain_lines`; the first is row ``first``)
    a column at a time (:func:`_coded_columns`; not a list per row, then transposed: a third
    of a big import), blank lines dropped, and the lines kept;
    None if any line that is not blank has another number of cells than ``width``."""
    ends = _SPACES + delimiter
    blank = {i for i, line in enumerate(lines) if not line or line[0] in ends
             and not line.strip(ends)}  # (a quick look at the first character first)
    if blank:
        numbers = [first + i for i in range(len(lines)) if i not in blank]
        lines = [line for i, line in enumerate(lines) if i not in blank]
    else:
        numbers = list(range(first, first + len(lines)))
    if any(n != width - 1 for n in set(map(str.count, lines, itertools.repeat(delimiter)))):
        return None
    if not lines:
        return [], [[] for _ in range(width)], []
    columns = _coded_columns(lines, delimiter, width)
    return numbers, columns, lines


class Coded(list):
    """A column's cells, each row's one of the column's few distinct strings (the same
    object for equal cells), with those strings in the order first met (``distinct``) and
    each row's index among them (``codes``)."""

    __slots__ = ("distinct", "codes")


def _coded_columns(lines: list[str], delimiter: str, width: int) -> list[Coded]:
    """The cells of lines each with ``width`` cells, a column at a time, by pandas' C reader
    (which makes one string for each distinct cell of a chunk, not one for each of millions
    of cells: making, hashing and freeing them was a sixth of a big import), with each
    column's distinct cells and codes from ``pandas.factorize``. The lines hold no quote
    (:func:`_plain_lines`), so nothing in them is read as anything but a cell."""
    import pandas as pd

    frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=delimiter, header=None,
                        names=range(width), dtype=str, na_filter=False, engine="c",
                        quoting=csv.QUOTE_NONE, skip_blank_lines=False)
    columns = []
    for k in range(width):
        codes, distinct = pd.factorize(frame[k].to_numpy(), sort=False)
        column = Coded(distinct[codes].tolist())
        column.distinct, column.codes = distinct.tolist(), codes
        columns.append(column)
    return columns


def _blank(cells: list) -> bool:
    if cells and type(cells[0]) is str and cells[0].strip():  # most rows: said by one cell
        return False
    try:  # a CSV row: its cells joined and trimmed at once
        return not "".join(cells).strip()
    except TypeError:  # an Excel row: numbers, dates, None
        return not any(c.strip() if type(c) is str else c is not None for c in cells)


def cell_text(value) -> str:
    """A cell as the data officer saw it (for the rejects file and for text fields)."""
    if type(value) is str:  # nearly every cell: the quick way first
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class Columns:
    """The columns an import knows: each field's accepted headings, the fields a file must
    have, and what to do when it lacks them (said after the missing ones are named)."""

    kind: str
    headings: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    advice: str


def _find_header(rows, columns: Columns, name: str):
    """Find the header row (title rows above it are skipped) and map fields to column numbers."""
    accepted = {f: {norm(h) for h in hs} for f, hs in columns.headings.items()}
    first = None
    for n, cells in rows:
        if _blank(cells):
            continue
        headers = [norm(cell_text(c)) for c in cells]
        found: dict[str, int] = {}
        for f, names in accepted.items():
            hits = [i for i, h in enumerate(headers) if h and h in names]
            if len(hits) > 1:
                raise WrongColumns(f"{name}: the column for {f} appears twice (columns "
                                   f"{hits[0] + 1} and {hits[1] + 1}): remove one")
            if hits:
                found[f] = hits[0]
        missing = [f for f in columns.required if f not in found]
        if not missing:
            return n, [cell_text(c) for c in cells], found
        if first is None:
            first = missing
        if n >= 20:
            break
    missing = first or list(columns.required)
    want = "; ".join(f"{f} (as " + " or ".join(repr(h) for h in columns.headings[f][:2])
                     + ")" for f in missing)
    raise WrongColumns(f"{name}: missing columns for {columns.kind}: {want}. {columns.advice}; "
                       "nothing was imported")


# -- values ----------------------------------------------------------------------------------
MONTHS = {m.lower(): i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
MONTHS.update({"sept": 9})
for _i in range(1, 13):
    MONTHS[dt.date(2000, _i, 1).strftime("%B").lower()] = _i
EXCEL_EPOCH = dt.date(1899, 12, 30)
_TIME = re.compile(r"^(.*?)[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_UK = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")
_NAMED = re.compile(r"^(\d{1,2})[ /-]?([A-Za-z]{3,9})[ /,-]*(\d{2}|\d{4})$")
_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")
_date_cache: dict[str, dt.date | Bad] = {}


def parse_date(value) -> dt.date | None:
    """A date from a cell: Excel date cells and serials, 31/01/2026, 31-Jan-2026, ISO."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _serial(value)
    text = str(value).strip()
    if not text:
        return None
    hit = _date_cache.get(text)
    if hit is None:
        try:
            hit = _parse_text_date(text)
        except Bad as bad:
            hit = bad
        if len(_date_cache) < 200_000:
            _date_cache[text] = hit
    if isinstance(hit, Bad):
        raise hit
    return hit


def _serial(n: float) -> dt.date:
    if not 1 <= n < 2958466:
        raise Bad("BAD_DATE", f"{n} is not an Excel date number")
    return EXCEL_EPOCH + dt.timedelta(days=int(n))


def _parse_text_date(text: str) -> dt.date:
    m = _TIME.match(text)
    if m:
        text = m.group(1).strip()
    if _SERIAL.match(text):
        return _serial(float(text))
    if m := _ISO.match(text):
        y, mo, d = (int(g) for g in m.groups())
    elif m := _UK.match(text):
        d, mo, y = (int(g) for g in m.groups())
        if len(m.group(3)) == 2:
            raise Bad("BAD_DATE", "write the year in full (2026, not 26)")
    elif m := _NAMED.match(text):
        d, y = int(m.group(1)), int(m.group(3))
        mo = MONTHS.get(m.group(2).lower())
        if mo is None:
            raise Bad("BAD_DATE", f"{m.group(2)!r} is not a month")
        if len(m.group(3)) == 2:
            raise Bad("BAD_DATE", "write the year in full (2026, not 26)")
    else:
        raise Bad("BAD_DATE")
    try:
        return dt.date(y, mo, d)
    except ValueError:
        raise Bad("IMPOSSIBLE_DATE", "dates are read as day/month/year") from None


def number(text: str) -> int | None:
    """A whole number from a cell's text (None for a blank one)."""
    if not text:
        return None
    try:
        f = float(text)
    except ValueError:
        raise Bad("BAD_NUMBER") from None
    if not f.is_integer():
        raise Bad("BAD_NUMBER")
    return int(f)


YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0"}


def yes_no(text: str, words: dict[str, str]) -> int:
    """1 or 0 from a yes/no cell (blank: no), the mapping's ``words`` first."""
    t = norm(words.get(norm(text), text))
    if t in YES:
        return 1
    if t in NO or t == "":
        return 0
    raise Bad("UNKNOWN_VALUE", "expected yes or no")


# -- a file opened, and an import finished ----------------------------------------------------
@dataclass
class File:
    """A file's data rows under its header row (blank rows dropped), ready to be checked:
    held a row at a time, or a column at a time (a plain CSV's, :func:`_plain_columns`)."""

    name: str
    sha256: str
    header_row: int
    headers: list[str]
    found: dict[str, int]  # field -> column number (from 0)
    numbers: list[int]  # each data row's number as Excel shows it, in file order
    typed: bool  # cells carry types (Excel: dates, numbers), not only text
    trimmed: bool  # every cell is text without whitespace at its ends (most CSVs)
    refused: list[Problem]  # rows refused as read (TOO_MANY_CELLS), not in ``rows``
    by_row: list[list] | None = None  # each data row's cells, or
    by_column: list[list] | None = None  # each column's cells, one for each data row
    originals: dict[int, list] = field(default_factory=dict)  # refused rows' cells
    lines: list[str] | None = None  # a plain CSV's data lines, each row's cells as read
    _index: dict[int, int] | None = field(default=None, repr=False)  # row number -> index

    @property
    def read(self) -> int:
        return len(self.numbers) + len({p.row for p in self.refused})

    @property
    def rows(self) -> list[tuple[int, list]]:
        """(row number as Excel shows it, cells) for each data row, to be checked."""
        if self.by_row is None:
            self.by_row = [list(c) for c in zip(*self.by_column, strict=True)]
        return list(zip(self.numbers, self.by_row, strict=True))

    def columns(self, width: int) -> list[list]:
        """The first ``width`` columns' cells, one for each data row (blank for a short row)."""
        if self.by_column is None or len(self.by_column) < width:
            pad = [None if self.typed else ""] * width
            self.by_column = [list(c) for c in zip(*[
                c[:width] if len(c) >= width else [*c, *pad[len(c):]] for c in self.by_row],
                strict=True)] or [[] for _ in range(width)]
        return self.by_column[:width]

    def original(self, n: int) -> list:
        """Row ``n``'s cells as read (for the rejects file)."""
        if n in self.originals:
            return self.originals[n]
        if self._index is None:  # made once, when the first rejected row is written
            self._index = dict(zip(self.numbers, itertools.count()))
        i = self._index[n]
        return self.by_row[i] if self.by_row is not None else [c[i] for c in self.by_column]

    def whole_rows(self) -> list | None:
        """Each data row as one value equal for two rows exactly when every cell of the
        fields found is: a plain CSV's line when its cells need no trimming and every
        column is a field's (one string hashed, not a tuple of cells); else None."""
        if self.lines is None or not self.trimmed or set(self.found.values()) != set(
                range(len(self.headers))):
            return None
        return self.lines

    @property
    def ignored_columns(self) -> list[str]:
        """Headed columns no field uses: said in the summary, so nothing goes unnoticed."""
        used = set(self.found.values())
        return [h for i, h in enumerate(self.headers) if h and i not in used]


def open_file(path: str | Path, columns: Columns) -> File:
    """Read a CSV or .xlsx file, find its header row and its columns; a row with cells beyond
    the last heading is refused (TOO_MANY_CELLS: a stray delimiter shifts its values)."""
    path = Path(path)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file; nothing was imported")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    rows, trimmed, plain = read_rows(path, raw)
    del raw  # (a big file's bytes, not kept beside its text)
    rows = iter(rows)
    head: list = []
    for n, cells in rows:  # keep the top rows so the header search can look at them again
        head.append((n, cells))
        if n >= 20:
            break
    header_row, headers, found = _find_header(head, columns, path.name)
    typed = path.suffix.lower() in (".xlsx", ".xlsm")
    # beyond the last heading (an Excel row is as wide as the sheet: blank headings follow)
    width = max((i + 1 for i, h in enumerate(headers) if h), default=0)
    if plain and width == len(headers):
        lines, delimiter = plain
        split = _plain_columns(lines[header_row:], header_row + 1, delimiter, width)
        if split:
            return File(path.name, digest, header_row, headers, found, split[0], typed,
                        trimmed, [], by_column=split[1], lines=split[2])
    data = [(n, c) for n, c in head if n > header_row and not _blank(c)]
    data += [(n, c) for n, c in rows if not _blank(c)]
    refused = []
    for n, c in [(n, c) for n, c in data if len(c) > width]:  # few rows, if any
        extra = [cell_text(v) for v in c[width:]]
        if any(extra):
            refused.append(Problem(n, "TOO_MANY_CELLS", "", ",".join(x for x in extra if x),
                                   f"{width} headed columns"))
    gone = {p.row for p in refused}
    kept = [(n, c) for n, c in data if n not in gone] if gone else data
    return File(path.name, digest, header_row, headers, found, [n for n, _ in kept], typed,
                trimmed, refused, by_row=[c for _, c in kept],
                originals={n: c for n, c in data if n in gone})


def by_field(f: File, row: list) -> dict[str, object]:
    """The row's raw cells by field (missing trailing cells are blank)."""
    n = len(row)
    return {k: (row[i] if i < n else None) for k, i in f.found.items()}


def _write_rejects(f: File, problems: list[Problem], rejects_dir: Path) -> Path | None:
    out = Path(rejects_dir) / f"{Path(f.name).stem}-rejects.csv"
    if not problems:
        out.unlink(missing_ok=True)  # an old rejects file would describe another import
        return None
    width = len(f.headers)

    def rows():
        for p in problems:
            original = [cell_text(c) for c in f.original(p.row)]
            yield [p.row, p.code, p.field, p.value, p.message,
                   *original, *[""] * (width - len(original))]

    headers = [h or f"column {i + 1}" for i, h in enumerate(f.headers)]
    return spreadsheet.write_csv(out, [*REJECT_COLUMNS, *headers], rows())


def _record(db, summary: ImportSummary) -> None:
    db["imports"].insert({
        "id": summary.import_id, "kind": summary.kind, "file_name": summary.file,
        "sha256": summary.sha256, "rows_read": summary.read, "inserted": summary.inserted,
        "updated": summary.updated, "unchanged": summary.unchanged,
        "rejected": summary.rejected, "imported_by": store.current_actor().user,
    })


def finish(db: sqlite_utils.Database, f: File, summary: ImportSummary,
           problems: list[Problem], rejects_dir: str | Path, write: Callable[[], None],
           progress: Callable[[int, int], None] | None = None, *,
           permission: str = "import") -> ImportSummary:
    """Write the valid rows (``write`` sets the summary's inserted, updated and unchanged),
    record the import and write the rejects file: all or nothing. ``write`` may read the
    import's number (``summary.import_id``) to stamp the rows it writes. The person must
    hold ``permission`` (:mod:`ehkit.access`); the change log names them."""
    if progress:
        progress(summary.read, summary.read)  # every row checked: writing starts
    problems = [*f.refused, *problems]
    summary.problems = sorted(problems, key=lambda p: (p.row, p.field))
    summary.rejected = len({p.row for p in problems})
    summary.ignored_columns = f.ignored_columns
    pg = store.is_postgres(db)
    # A big import touches many index pages (episodes, children, change log): a larger page
    # cache for this connection while it writes saves a sixth of the time at 200,000 rows.
    # (PostgreSQL's cache is the server's.)
    cache = None if pg else db.conn.execute("PRAGMA cache_size").fetchone()[0]
    if not pg:
        db.conn.execute("PRAGMA cache_size = -262144")  # up to 256 MiB, only as pages are used
    try:
        who = store.current_actor()
        with access.acting(db, permission, label=who.actor or f"ehkit import {summary.kind}",
                           reason=f"import of {f.name} ({f.sha256[:12]})"), \
                store.transaction(db):
            # the import's number, taken inside the write lock (no one else can take it);
            # rows stamped with it are written before its record: foreign keys are checked
            # at the commit (SQLite ends the deferral there)
            summary.import_id = db.conn.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM imports").fetchone()[0]
            if pg:
                importing_pg.defer_import_stamps(db)
            else:
                db.conn.execute("PRAGMA defer_foreign_keys = ON")
            write()
            # every row read is counted once (the imports table checks it too)
            assert summary.read == (summary.inserted + summary.updated + summary.unchanged
                                    + summary.rejected), summary
            _record(db, summary)
    except store.integrity_errors(db) as e:
        summary.import_id = None
        raise ImportFailed(f"{f.name}: the store refused the import ({e}); nothing was "
                           "imported. Please report this with the file.") from e
    finally:
        if cache is not None:
            db.conn.execute(f"PRAGMA cache_size = {int(cache)}")
    if pg:
        importing_pg.after_import(db, summary.inserted + summary.updated)
    summary.rejects_file = _write_rejects(f, summary.problems, rejects_dir)
    return summary
