"""Cases: episodes, children, practitioners and agencies, imported from case-system exports.

An import reads a CSV (UTF-8 with or without BOM, or Windows-1252) or an ``.xlsx`` file, finds
its columns through a mapping file (``ehkit/mappings/*.toml``), checks every row against the
rules in :data:`RULES`, writes the valid rows in ONE transaction (bulk, no query per row) and
every rejected row, with its row number, original values and the rule it broke, to
``reports/imports/<file>-rejects.csv``. Each import is recorded in the ``imports`` table.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import functools
import gc
import hashlib
import io
import re
import sqlite3
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils

from . import access, home, rules, spreadsheet
from . import db as store
from .dates import uk
from .errors import EhkitError
from .settings import get as setting

DEFAULT_MAPPING = "default"
REJECTS_DIR = Path("reports") / "imports"
KINDS = ("episodes", "practitioners", "agencies")


# -- errors for a person -----------------------------------------------------------------
class ImportFailed(EhkitError):
    """The whole file could not be imported (nothing was written)."""


class WrongColumns(ImportFailed):
    pass


class UnreadableFile(ImportFailed):
    pass


class MappingError(EhkitError):
    pass


# -- the rules a row must keep: code -> what a data officer reads -------------------------
RULES: dict[str, str] = {
    "MISSING_VALUE": "a required value is blank",
    "BAD_DATE": "not a date ehkit can read (use 31/01/2026, 31-Jan-2026 or 2026-01-31)",
    "IMPOSSIBLE_DATE": "no such day in the calendar",
    "BAD_NUMBER": "not a whole number",
    "UNKNOWN_VALUE": "a word the mapping file does not know",
    "UNKNOWN_AGENCY": "no agency of this name in the store (import agencies first, "
                      "or use --create-agencies)",
    "UNKNOWN_PRACTITIONER": "no practitioner of this name or id in the store "
                            "(import practitioners first, or correct the name)",
    "AMBIGUOUS_PRACTITIONER": "more than one practitioner has this name: use the id column",
    "DOB_IN_FUTURE": "date of birth is in the future",
    "DOB_AFTER_START": "date of birth is after the episode began",
    "END_BEFORE_START": "episode end is before its start",
    "REVIEW_BEFORE_START": "review date is before the episode began",
    "REVIEW_ORDER": "last review is before the first review",
    "ENDED_WITHOUT_END_DATE": "how the episode ended is given but it has no end date",
    "DUPLICATE_ROW": "the same as an earlier row, which was imported",
    "DUPLICATE_DIFFERS": "same EHM number and start date as an earlier row, but different "
                         "episode details: one episode cannot have two",
    "OWN_LINE_MANAGER": "a practitioner cannot be their own line manager",
}
rules.register_all(RULES, kind="import")


# A rejects file: these columns, then the row's own cells as they were read.
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
        return RULES[self.code] + (f": {self.detail}" if self.detail else "")


class _Bad(Exception):
    """A value broke a rule (internal: becomes a Problem for its row and field)."""

    def __init__(self, code: str, detail: str = ""):
        self.code, self.detail = code, detail


@dataclass
class ImportSummary:
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
    import_id: int | None = None

    def __str__(self) -> str:
        lines = [f"{self.file}: read {self.read:,} rows = {self.inserted:,} inserted + "
                 f"{self.updated:,} updated + {self.unchanged:,} unchanged + "
                 f"{self.rejected:,} rejected"]
        if self.read and not (self.inserted or self.updated):
            lines.append("nothing changed: every valid row is already in the store"
                         if self.unchanged else "nothing was imported")
        if self.created_agencies:
            lines.append("created agencies: " + ", ".join(self.created_agencies))
        if self.rejects_file:
            codes: dict[str, int] = {}
            for p in self.problems:
                codes[p.code] = codes.get(p.code, 0) + 1
            lines.append(f"rejected rows and why: {self.rejects_file} ("
                         + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) + ")")
        return "\n".join(lines)


# -- mapping files ---------------------------------------------------------------------------
# The fields each import understands; which of them must be in the file.
FIELDS = {
    "episodes": (
        "ehm_number", "start_date", "end_date", "lead_agency", "lead_agency_kind",
        "lead_professional", "lead_professional_id", "team_manager", "team_manager_id",
        "referral_reason", "began_as", "ended_as", "cross_authority", "cross_authority_name",
        "cross_authority_contact", "first_review_date", "last_review_date", "child_name",
        "child_first_name", "child_last_name", "child_date_of_birth",
    ),
    "practitioners": ("id", "name", "role", "agency", "team", "line_manager",
                      "line_manager_id", "is_auditor"),
    "agencies": ("name", "kind", "sector"),
}
REQUIRED = {
    "episodes": ("ehm_number", "start_date", "lead_agency"),
    "practitioners": ("name", "agency"),
    "agencies": ("name", "kind", "sector"),
}
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0"}


_NOT_ALNUM = re.compile(r"[^0-9a-z]")


@functools.lru_cache(maxsize=65536)  # exports repeat the same agencies, names and words
def norm(text) -> str:
    """A header or word as matched: lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", str(text).casefold())


@dataclass(frozen=True)
class Mapping:
    name: str
    columns: dict[str, dict[str, tuple[str, ...]]]  # kind -> field -> accepted headers
    values: dict[str, dict[str, dict[str, str]]]  # kind -> field -> norm(word) -> store value
    defaults: dict[str, dict[str, str]]
    create_agencies: dict


def load_mapping(name_or_path: str | Path | None = None) -> Mapping:
    """A mapping by name (``default``, ``example_ehm``) or by path to a TOML file."""
    name_or_path = name_or_path or DEFAULT_MAPPING
    path = Path(name_or_path)
    if not path.exists():
        path = home.find("mappings", f"{name_or_path}.toml")
    if not path.exists():
        known = ", ".join(home.names("mappings", ".toml"))
        raise MappingError(f"no mapping file {name_or_path!r}: give a path to a .toml file "
                           f"or one of: {known}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MappingError(f"{path}: not a readable TOML file ({e})") from None
    columns, values, defaults = {}, {}, {}
    for kind in KINDS:
        section = data.get(kind, {})
        cols = section.get("columns", {})
        for f, headers in cols.items():
            if f not in FIELDS[kind]:
                raise MappingError(f"{path}: [{kind}.columns] has {f!r}, which is not one of: "
                                   + ", ".join(FIELDS[kind]))
            if isinstance(headers, str):
                cols[f] = [headers]
        columns[kind] = {f: tuple(cols.get(f, ())) + (f,) for f in FIELDS[kind]}
        values[kind] = {f: {norm(k): str(v) for k, v in words.items()}
                        for f, words in section.get("values", {}).items()}
        defaults[kind] = {f: str(v) for f, v in section.get("defaults", {}).items()}
    return Mapping(path.stem, columns, values, defaults, data.get("create_agencies", {}))


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


def read_rows(path: Path) -> Iterable[tuple[int, list]]:
    """(row number as Excel shows it, cells) for every row of a CSV or .xlsx file."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises many kinds for a damaged file
            raise UnreadableFile(f"{path.name}: not a readable Excel file ({e})") from None
        try:
            ws = wb.worksheets[0]
            return [(n, list(r)) for n, r in enumerate(ws.iter_rows(values_only=True), start=1)]
        finally:
            wb.close()
    if suffix == ".xls":
        raise UnreadableFile(f"{path.name}: old .xls files cannot be read: save it as .xlsx "
                             "or CSV and import again")
    text = _decode(path.read_bytes(), path.name)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return enumerate(reader, start=1)


def _blank(cells: list) -> bool:
    try:  # a CSV row: its cells joined and trimmed at once
        return not "".join(cells).strip()
    except TypeError:  # an Excel row: numbers, dates, None
        return not any(c.strip() if type(c) is str else c is not None for c in cells)


def _text(value) -> str:
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


def _find_header(rows, kind: str, mapping: Mapping, name: str):
    """Find the header row (title rows above it are skipped) and map fields to column numbers."""
    accepted = {f: {norm(h) for h in hs} for f, hs in mapping.columns[kind].items()}
    first = None
    for n, cells in rows:
        if _blank(cells):
            continue
        headers = [norm(_text(c)) for c in cells]
        found: dict[str, int] = {}
        for f, names in accepted.items():
            hits = [i for i, h in enumerate(headers) if h and h in names]
            if len(hits) > 1:
                raise WrongColumns(f"{name}: the column for {f} appears twice (columns "
                                   f"{hits[0] + 1} and {hits[1] + 1}): remove one")
            if hits:
                found[f] = hits[0]
        missing = [f for f in REQUIRED[kind] if f not in found]
        if not missing:
            return n, [_text(c) for c in cells], found
        if first is None:
            first = missing
        if n >= 20:
            break
    missing = first or list(REQUIRED[kind])
    want = "; ".join(f"{f} (as " + " or ".join(repr(h) for h in mapping.columns[kind][f][:2])
                     + ")" for f in missing)
    raise WrongColumns(f"{name}: missing columns for {kind} with mapping "
                       f"'{mapping.name}': {want}. Add them to the export, or name their "
                       "headings in a mapping file (--mapping)")


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
_date_cache: dict[str, dt.date | _Bad] = {}


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
        except _Bad as bad:
            hit = bad
        if len(_date_cache) < 200_000:
            _date_cache[text] = hit
    if isinstance(hit, _Bad):
        raise hit
    return hit


def _serial(n: float) -> dt.date:
    if not 1 <= n < 2958466:
        raise _Bad("BAD_DATE", f"{n} is not an Excel date number")
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
            raise _Bad("BAD_DATE", "write the year in full (2026, not 26)")
    elif m := _NAMED.match(text):
        d, y = int(m.group(1)), int(m.group(3))
        mo = MONTHS.get(m.group(2).lower())
        if mo is None:
            raise _Bad("BAD_DATE", f"{m.group(2)!r} is not a month")
        if len(m.group(3)) == 2:
            raise _Bad("BAD_DATE", "write the year in full (2026, not 26)")
    else:
        raise _Bad("BAD_DATE")
    try:
        return dt.date(y, mo, d)
    except ValueError:
        raise _Bad("IMPOSSIBLE_DATE", "dates are read as day/month/year") from None


def _number(text: str) -> int | None:
    if not text:
        return None
    try:
        f = float(text)
    except ValueError:
        raise _Bad("BAD_NUMBER") from None
    if not f.is_integer():
        raise _Bad("BAD_NUMBER")
    return int(f)


def _yes_no(text: str, words: dict[str, str]) -> int:
    t = norm(words.get(norm(text), text))
    if t in YES:
        return 1
    if t in NO or t == "":
        return 0
    raise _Bad("UNKNOWN_VALUE", "expected yes or no")


def _choice(text: str, words: dict[str, str], allowed: dict[str, str]) -> str:
    """A word from the export as one of the store's values (keys of ``allowed``)."""
    key = norm(text)
    if key in words:
        return words[key]
    for value, label in allowed.items():
        if key in (norm(value), norm(label)):
            return value
    raise _Bad("UNKNOWN_VALUE", "add it to the mapping file; allowed: " + ", ".join(allowed))


# -- the import frame shared by the three kinds -----------------------------------------------
@dataclass
class _File:
    name: str
    sha256: str
    header_row: int
    headers: list[str]
    found: dict[str, int]
    rows: list[tuple[int, list]]  # data rows, blank ones dropped
    typed: bool  # cells carry types (Excel: dates, numbers), not only text


def _open(path: Path, kind: str, mapping: Mapping) -> _File:
    path = Path(path)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = iter(read_rows(path))
    head: list = []
    for n, cells in rows:  # keep the top rows so the header search can look at them again
        head.append((n, cells))
        if n >= 20:
            break
    header_row, headers, found = _find_header(head, kind, mapping, path.name)
    data = [(n, c) for n, c in head if n > header_row and not _blank(c)]
    data.extend((n, c) for n, c in rows if not _blank(c))
    typed = path.suffix.lower() in (".xlsx", ".xlsm")
    return _File(path.name, digest, header_row, headers, found, data, typed)


def _cells(f: _File, cells: list) -> dict[str, object]:
    """The row's raw cells by field (missing trailing cells are blank)."""
    n = len(cells)
    return {k: (cells[i] if i < n else None) for k, i in f.found.items()}


def _write_rejects(f: _File, problems: list[Problem], rejects_dir: Path, by_row: dict):
    out = Path(rejects_dir) / f"{Path(f.name).stem}-rejects.csv"
    if not problems:
        out.unlink(missing_ok=True)  # an old rejects file would describe another import
        return None
    width = len(f.headers)

    def rows():
        for p in problems:
            original = [_text(c) for c in by_row[p.row]]
            yield [p.row, p.code, p.field, p.value, p.message,
                   *original, *[""] * (width - len(original))]

    return spreadsheet.write_csv(out, [*REJECT_COLUMNS, *f.headers], rows())


def _record(db, summary: ImportSummary) -> int:
    return db["imports"].insert({
        "kind": summary.kind, "file_name": summary.file, "sha256": summary.sha256,
        "rows_read": summary.read, "inserted": summary.inserted, "updated": summary.updated,
        "unchanged": summary.unchanged, "rejected": summary.rejected,
        "imported_by": store.current_actor().user,
    }).last_pk


def _finish(db, f: _File, summary: ImportSummary, problems: list[Problem], rejects_dir,
            write: Callable[[], None], progress=None) -> ImportSummary:
    if progress:
        progress(summary.read, summary.read)  # every row checked: writing starts
    summary.problems = sorted(problems, key=lambda p: (p.row, p.field))
    summary.rejected = len({p.row for p in problems})
    # A big import touches many index pages (episodes, children, change log): a larger page
    # cache for this connection while it writes saves a sixth of the time at 200,000 rows.
    cache = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    db.conn.execute("PRAGMA cache_size = -262144")  # up to 256 MiB, only as pages are used
    try:
        who = store.current_actor()
        with access.acting(db, "import", label=who.actor or f"ehkit import {summary.kind}",
                           reason=f"import of {f.name} ({f.sha256[:12]})"), \
                store.transaction(db):
            write()
            # every row read is counted once (the imports table checks it too)
            assert summary.read == (summary.inserted + summary.updated + summary.unchanged
                                    + summary.rejected), summary
            summary.import_id = _record(db, summary)
    except sqlite3.IntegrityError as e:
        raise ImportFailed(f"{f.name}: the store refused the import ({e}); nothing was "
                           "imported. Please report this with the file.") from e
    finally:
        db.conn.execute(f"PRAGMA cache_size = {int(cache)}")
    by_row = {n: c for n, c in f.rows}
    summary.rejects_file = _write_rejects(f, summary.problems, rejects_dir, by_row)
    return summary


class _Lookup:
    """Agencies and practitioners by normalised name, loaded once per import."""

    def __init__(self, db: sqlite_utils.Database):
        self.agency = {norm(r["name"]): r for r in db.query("SELECT * FROM agencies")}
        self.people = {r["id"]: r for r in db.query("SELECT * FROM practitioners")}
        self.by_name: dict[str, list[dict]] = {}
        for p in self.people.values():
            self.by_name.setdefault(norm(p["name"]), []).append(p)

    def practitioner(self, name: str, pid: int | None, agency_id: int | None,
                     own_agency_only: bool = False) -> int | None:
        """By id if given, else by name: the agency's own staff (others only if allowed)."""
        if pid is not None:
            if pid not in self.people:
                raise _Bad("UNKNOWN_PRACTITIONER", f"no practitioner with id {pid}")
            return pid
        if not name:
            return None
        hits = self.by_name.get(norm(name), [])
        own = [p for p in hits if p["agency_id"] == agency_id]
        hits = own if own or own_agency_only else hits
        if not hits:
            raise _Bad("UNKNOWN_PRACTITIONER")
        if len(hits) > 1:
            raise _Bad("AMBIGUOUS_PRACTITIONER", f"{len(hits)} called {name!r}")
        return hits[0]["id"]


# -- episodes ---------------------------------------------------------------------------------
# The export's field behind a store column, for messages about a row.
FILE_FIELD = {"lead_professional_id": "lead_professional", "team_manager_id": "team_manager",
              "lead_agency_id": "lead_agency", "status": "end_date"}
EPISODE_COLUMNS = ("end_date", "status", "lead_professional_id", "lead_agency_id",
                   "team_manager_id", "referral_reason", "began_as", "cross_authority",
                   "cross_authority_name", "cross_authority_contact", "ended_as",
                   "first_review_date", "last_review_date")
DATE_FIELDS = ("start_date", "end_date", "first_review_date", "last_review_date",
               "child_date_of_birth")


def import_episodes(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                    create_agencies: bool = False, rejects_dir: str | Path = REJECTS_DIR,
                    today: dt.date | None = None,
                    progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import episodes with their children from a case-system export.

    The rows are checked a column at a time: each distinct date, agency, person or word of a
    column is read once, and the rules compare whole columns. Every problem still names its
    row, field and value, as a row-by-row check would list them.
    """
    access.require(db, "import")  # before the file is read
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    with _no_cycle_collection():
        f = _open(Path(path), "episodes", mapping)
        summary = ImportSummary("episodes", f.name, f.sha256, read=len(f.rows))
        if progress:
            progress(0, summary.read)
        cols = _columns(f, FIELDS["episodes"])
        found = _Found(cols)
        checked = _check_episode_rows(db, cols, found, mapping, set(f.found), create_agencies,
                                      today or dt.date.today())
        speaks = _speaks_for(set(f.found))
        episodes, accepted = _merge_episode_rows(cols, found, checked, list(f.found), speaks)

        def write() -> None:
            _write_episodes(db, summary, checked, episodes, accepted, speaks)

        return _finish(db, f, summary, found.problems(), rejects_dir, write, progress)


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused: an import makes millions of cells, tuples and lists,
    none in a cycle, and the collector would walk them all again and again (a third of the
    time at 200,000 rows)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# The steps below are the import frame's, a column at a time: the file's rows as columns,
# each rule over whole columns (its problems kept as a row-by-row check lists them), the rows
# of one episode merged, and the write.
@dataclass
class _Columns:
    """A file's data rows a column at a time: raw cells and trimmed text by field (a field
    the file lacks is a column of blanks), and each row's number as Excel shows it."""

    rows: list[int]
    raw: dict[str, list]
    text: dict[str, list[str]]
    typed: bool


def _columns(f: _File, fields: Iterable[str]) -> _Columns:
    width = max(f.found.values()) + 1
    pad = [None if f.typed else ""] * width
    by_index = list(zip(*[c[:width] if len(c) >= width else [*c, *pad[len(c):]]
                          for _, c in f.rows], strict=True)) or [()] * width
    blank = [""] * len(f.rows)
    raw, text = {}, {}
    for k in fields:
        if k not in f.found:
            raw[k] = text[k] = blank
        elif f.typed:
            raw[k] = list(by_index[f.found[k]])
            text[k] = [_text(v) for v in raw[k]]
        else:  # a CSV's cells are text: the trimmed text is the raw value too
            raw[k] = text[k] = [v.strip() for v in by_index[f.found[k]]]
    return _Columns([n for n, _ in f.rows], raw, text, f.typed)


class _Found:
    """Problems found one rule at a time over whole columns, listed as a row-by-row check
    lists them: by row, then field, then the order the rules are checked in."""

    def __init__(self, cols: _Columns):
        self.cols, self.bad_rows, self._found = cols, set(), []

    def add(self, i: int, fld: str, e: _Bad) -> None:
        value = self.cols.text[fld][i] if fld in self.cols.text else ""
        n = self.cols.rows[i]
        self._found.append((n, fld, len(self._found), Problem(n, e.code, fld, value, e.detail)))
        self.bad_rows.add(i)

    def add_all(self, rows: Iterable[int], fld: str, e: _Bad) -> None:
        for i in rows:
            self.add(int(i), fld, e)

    def problems(self) -> list[Problem]:
        return [p for *_, p in sorted(self._found, key=lambda t: t[:3])]


def _by_distinct(fn: Callable, *columns: list) -> tuple[list, np.ndarray]:
    """``fn`` once per distinct combination of the columns' values (an export repeats the same
    dates, agencies, people and words thousands of times): the results, and for each row the
    index of its result."""
    keys = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    codes = np.fromiter(map(index.__getitem__, keys), dtype=np.intp, count=len(keys))
    return [fn(k) for k in index] if len(columns) == 1 else [fn(*k) for k in index], codes


def _spread(values: list, codes: np.ndarray) -> list:
    """Each row's value from the distinct values' results."""
    return list(map(values.__getitem__, codes.tolist()))


def _checked(found: _Found, results: list, codes: np.ndarray) -> list:
    """Results of ``(value, ((field, _Bad), ...))`` spread over the rows; the problems added."""
    failing = [i for i, (_, bad) in enumerate(results) if bad]
    if failing:
        for i in np.flatnonzero(np.isin(codes, failing)):
            for fld, e in results[codes[i]][1]:
                found.add(int(i), fld, e)
    return _spread([value for value, _ in results], codes)


@dataclass
class _Dates:
    """A date column read: day numbers (0: blank or unreadable), ISO text (None), and which
    cells were blank."""

    day: np.ndarray
    iso: list
    blank: np.ndarray


def _date_or_bad(value) -> dt.date | None | _Bad:
    try:
        return parse_date(value)
    except _Bad as e:
        return e


def _dates(cols: _Columns, found: _Found, fld: str) -> _Dates:
    """BAD_DATE and IMPOSSIBLE_DATE: each distinct cell read once."""
    raw = cols.raw[fld]
    if cols.typed:  # keyed by type too: an Excel True is not the serial 1
        dates, codes = _by_distinct(lambda _, v: _date_or_bad(v), list(map(type, raw)), raw)
    else:
        dates, codes = _by_distinct(_date_or_bad, raw)
    failing = [i for i, d in enumerate(dates) if isinstance(d, _Bad)]
    if failing:
        for i in np.flatnonzero(np.isin(codes, failing)):
            found.add(int(i), fld, dates[codes[i]])
    ok = [d if isinstance(d, dt.date) else None for d in dates]
    day = np.array([d.toordinal() if d else 0 for d in ok], dtype=np.int64)[codes]
    blank = np.array([d is None for d in dates], dtype=bool)[codes]
    return _Dates(day, _spread([d.isoformat() if d else None for d in ok], codes), blank)


def _date_rules(found: _Found, d: dict[str, _Dates], today: dt.date) -> None:
    """END_BEFORE_START, REVIEW_BEFORE_START, REVIEW_ORDER, DOB_IN_FUTURE, DOB_AFTER_START."""
    start = d["start_date"].day
    end, dob = d["end_date"].day, d["child_date_of_birth"].day
    first, last = d["first_review_date"].day, d["last_review_date"].day

    def before_start(fld: str, code: str, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            began = dt.date.fromordinal(int(start[i]))
            found.add(int(i), fld, _Bad(code, f"began {uk(began)}"))

    before_start("end_date", "END_BEFORE_START", (start > 0) & (end > 0) & (end < start))
    for fld, review in (("first_review_date", first), ("last_review_date", last)):
        before_start(fld, "REVIEW_BEFORE_START", (start > 0) & (review > 0) & (review < start))
    found.add_all(np.flatnonzero((first > 0) & (last > 0) & (last < first)),
                  "last_review_date", _Bad("REVIEW_ORDER"))
    future = (dob > 0) & (dob > today.toordinal())
    found.add_all(np.flatnonzero(future), "child_date_of_birth", _Bad("DOB_IN_FUTURE"))
    before_start("child_date_of_birth", "DOB_AFTER_START",
                 ~future & (dob > 0) & (start > 0) & (dob > start))


@dataclass
class _Checked:
    """The episode rows checked: the store's columns by row, each row's episode key and child."""

    values: dict[str, list]
    keys: list[tuple]
    children: list[tuple | None]
    new_agencies: dict[str, dict]
    valid: list[int]


def _check_episode_rows(db, cols: _Columns, found: _Found, mapping: Mapping, present: set,
                        create_agencies: bool, today: dt.date) -> _Checked:
    """Every rule for an episode row, one rule at a time over whole columns."""
    look = _Lookup(db)
    words, defaults = mapping.values["episodes"], mapping.defaults["episodes"]
    text = cols.text
    for fld in REQUIRED["episodes"]:  # MISSING_VALUE
        found.add_all([i for i, t in enumerate(text[fld]) if not t], fld, _Bad("MISSING_VALUE"))
    d = {fld: _dates(cols, found, fld) for fld in DATE_FIELDS}
    _date_rules(found, d, today)

    # UNKNOWN_AGENCY, or one to create (its kind from the first row naming it)
    def agency_of(name: str):
        key = norm(name)
        if not key:
            return None, ()
        if key in look.agency:
            return look.agency[key]["id"], ()
        if create_agencies:
            return ("new", key), ()
        return None, (("lead_agency", _Bad("UNKNOWN_AGENCY")),)

    agency = _checked(found, *_by_distinct(agency_of, text["lead_agency"]))
    new_agencies: dict[str, dict] = {}
    for i in [i for i, a in enumerate(agency) if type(a) is tuple]:
        if agency[i][1] not in new_agencies:
            try:
                new_agencies[agency[i][1]] = {
                    "name": text["lead_agency"][i], "sector": mapping.create_agencies.get(
                        "sector", "Other"), "kind": _new_agency_kind(
                        {k: text[k][i] for k in ("lead_agency", "lead_agency_kind")},
                        words, mapping.create_agencies)}
            except _Bad as e:
                found.add(i, "lead_agency_kind", e)
    own = [a if type(a) is int else None for a in agency]  # staff of a stored agency

    def lead_of(name: str, id_text: str, agency_id):  # BAD_NUMBER, UNKNOWN_/AMBIGUOUS_PRACTITIONER
        bad = []
        try:
            pid = _number(id_text)
        except _Bad as e:
            bad.append(("lead_professional_id", e))
            pid = None
        try:
            return look.practitioner(name, pid, agency_id, own_agency_only=True), tuple(bad)
        except _Bad as e:
            field = "lead_professional_id" if pid is not None else "lead_professional"
            return None, (*bad, (field, e))

    def manager_of(name: str, id_text: str, agency_id):
        try:
            return look.practitioner(name, _number(id_text), agency_id), ()
        except _Bad as e:
            return None, (("team_manager_id" if id_text else "team_manager", e),)

    lead = _checked(found, *_by_distinct(lead_of, text["lead_professional"],
                                         text["lead_professional_id"], own))
    manager = _checked(found, *_by_distinct(manager_of, text["team_manager"],
                                            text["team_manager_id"], own))

    def began_of(word: str):  # UNKNOWN_VALUE, MISSING_VALUE (None: the store's default)
        word = word or defaults.get("began_as", "")
        if word:
            try:
                return _choice(word, words.get("began_as", {}),
                               setting("episodes", "began_as")), ()
            except _Bad as e:
                return None, (("began_as", e),)
        if "began_as" in present:
            return None, (("began_as", _Bad("MISSING_VALUE", "or set a default in the mapping "
                                                             "file")),)
        return None, ()

    def ended_of(word: str):  # UNKNOWN_VALUE
        if not word:
            return None, ()
        try:
            return _choice(word, words.get("ended_as", {}), setting("episodes", "ended_as")), ()
        except _Bad as e:
            return None, (("ended_as", e),)

    def yes_no_of(word: str):  # UNKNOWN_VALUE
        try:
            return _yes_no(word, words.get("cross_authority", {})), ()
        except _Bad as e:
            return None, (("cross_authority", e),)

    began = _checked(found, *_by_distinct(began_of, text["began_as"]))
    ended = _checked(found, *_by_distinct(ended_of, text["ended_as"]))
    found.add_all(np.flatnonzero(np.array([bool(t) for t in text["ended_as"]], dtype=bool)
                                 & d["end_date"].blank), "ended_as",
                  _Bad("ENDED_WITHOUT_END_DATE"))
    cross = _checked(found, *_by_distinct(yes_no_of, text["cross_authority"]))
    children = _children(cols, found, present, d["child_date_of_birth"].iso)

    end = d["end_date"].iso
    values = {
        "lead_agency_id": agency, "end_date": end,
        "status": ["closed" if e else "open" for e in end],
        "ended_as": [w if e else None for w, e in zip(ended, end, strict=True)],
        "lead_professional_id": lead, "team_manager_id": manager, "began_as": began,
        "cross_authority": cross,
        **{c: [t or None for t in text[c]]
           for c in ("referral_reason", "cross_authority_name", "cross_authority_contact")},
        "first_review_date": d["first_review_date"].iso,
        "last_review_date": d["last_review_date"].iso,
    }
    keys = list(zip(text["ehm_number"], d["start_date"].iso, strict=True))
    valid = [i for i in range(len(cols.rows)) if i not in found.bad_rows]
    return _Checked(values, keys, children, new_agencies, valid)


def _children(cols: _Columns, found: _Found, present: set, dob: list) -> list[tuple | None]:
    """Each row's child (name, date of birth), if the file names children; MISSING_VALUE for a
    date of birth without a name."""
    if not present & {"child_name", "child_first_name", "child_last_name"}:
        return [None] * len(cols.rows)
    text = cols.text
    names = [n or " ".join(t for t in (first, last) if t) for n, first, last in zip(
        text["child_name"], text["child_first_name"], text["child_last_name"], strict=True)]
    found.add_all([i for i, (n, b) in enumerate(zip(names, text["child_date_of_birth"],
                                                    strict=True)) if b and not n],
                  "child_name", _Bad("MISSING_VALUE", "a date of birth without a name"))
    return [(n, b) if n else None for n, b in zip(names, dob, strict=True)]


def _speaks_for(present: set) -> set:
    """The store columns this file speaks for (others are left as stored on an update)."""
    speaks = {c for c in EPISODE_COLUMNS if c in present} | {"lead_agency_id"}
    if "end_date" in present:
        speaks |= {"status", "ended_as"}
    if present & {"lead_professional", "lead_professional_id"}:
        speaks.add("lead_professional_id")
    if present & {"team_manager", "team_manager_id"}:
        speaks.add("team_manager_id")
    return speaks


def _merge_episode_rows(cols: _Columns, found: _Found, checked: _Checked, names: list[str],
                        speaks: set) -> tuple[dict[tuple, int], list[int]]:
    """Rows of the same episode (one per child) as one episode, set by its first row:
    DUPLICATE_ROW for a copy of an earlier row, DUPLICATE_DIFFERS for other episode details.
    Returns {episode key: its first row} and the rows accepted, in file order."""
    wholes = list(zip(*(cols.text[k] for k in names), strict=True))
    values, keys = checked.values, checked.keys
    columns = [values[c] for c in sorted(speaks)]
    seen: dict[tuple, int] = {}
    episodes: dict[tuple, int] = {}
    accepted: list[int] = []
    for i in checked.valid:
        j = seen.setdefault(wholes[i], i)
        if j != i:
            found.add(i, "", _Bad("DUPLICATE_ROW", f"same as row {cols.rows[j]}"))
            continue
        first = episodes.setdefault(keys[i], i)
        if first != i and any(c[first] != c[i] for c in columns):
            # name the export's column and show its words, not the store's ids
            differs = [k for k in sorted(speaks) if values[k][first] != values[k][i]]
            fields = list(dict.fromkeys(next((f for f in (FILE_FIELD.get(k, k), k)
                                              if f in names), k) for k in differs))
            was = cols.text[fields[0]][first] if fields[0] in names else ""
            found.add(i, fields[0], _Bad("DUPLICATE_DIFFERS", f"row {cols.rows[first]} has "
                                         f"{was!r}; differs in " + ", ".join(fields)))
            continue
        accepted.append(i)
    return episodes, accepted


def _new_agency_kind(text: dict, words: dict, rule: dict) -> str:
    if text.get("lead_agency_kind"):
        return _choice(text["lead_agency_kind"], words.get("lead_agency_kind", {}),
                       {"council": "Council", "partner": "Partner"})
    name = text["lead_agency"].casefold()
    if any(w.casefold() in name for w in rule.get("council_if_name_contains", [])):
        return "council"
    return rule.get("kind", "partner")


def _write_episodes(db, summary: ImportSummary, checked: _Checked, episodes: dict[tuple, int],
                    accepted: list[int], speaks: set) -> None:
    conn = db.conn
    values, keys, children = checked.values, checked.keys, checked.children
    agency = values["lead_agency_id"]
    if checked.new_agencies:
        # only agencies some valid row needs
        needed = sorted({agency[i][1] for i in episodes.values() if type(agency[i]) is tuple})
        rows = [checked.new_agencies[k] for k in needed]
        db["agencies"].insert_all(rows)
        summary.created_agencies = [r["name"] for r in rows]
        ids = {norm(r["name"]): r["id"] for r in db.query("SELECT id, name FROM agencies")}
        for i in episodes.values():
            if type(agency[i]) is tuple:
                agency[i] = ids[agency[i][1]]

    # The stored episodes and children this file speaks of, by one join on a temp table.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_keys (ehm TEXT, start TEXT)")
    conn.execute("DELETE FROM import_keys")
    conn.executemany("INSERT INTO import_keys VALUES (?, ?)", list(episodes))
    names = ("id", "ehm_number", "start_date", *EPISODE_COLUMNS)
    stored = {(r[1], r[2]): dict(zip(names, r, strict=True)) for r in conn.execute(
        f"SELECT {', '.join(f'e.{c}' for c in names)} FROM import_keys k JOIN episodes e "
        "ON e.ehm_number = k.ehm AND e.start_date = k.start")}
    # A child is the same child by name and date of birth (siblings may share a name); a
    # stored child whose date of birth the file no longer gives, under the same name, is
    # the same child with a corrected date.
    stored_children: dict[tuple, list[dict]] = {}
    for cid, name, dob, ehm, start in conn.execute(
            "SELECT c.id, c.name, c.date_of_birth, e.ehm_number, e.start_date "
            "FROM import_keys k JOIN episodes e ON e.ehm_number = k.ehm AND e.start_date = k.start"
            " JOIN children c ON c.episode_id = e.id ORDER BY c.id"):
        stored_children.setdefault(((ehm, start), norm(name)), []).append(
            {"id": cid, "dob": dob})
    conn.execute("DROP TABLE import_keys")

    # New episodes a column at a time; stored ones updated in what the file speaks for.
    new = [i for key, i in episodes.items() if key not in stored]
    next_id = (conn.execute("SELECT max(id) FROM episodes").fetchone()[0] or 0) + 1
    ids = {keys[i]: next_id + n for n, i in enumerate(new)}
    status = dict.fromkeys(ids, "inserted")  # episode key -> inserted / updated / unchanged
    updates = []
    for key, old in stored.items():
        i = episodes[key]
        ids[key] = old["id"]
        change = {c: values[c][i] for c in sorted(speaks)
                  if (c != "began_as" or values[c][i] is not None) and values[c][i] != old[c]}
        if change:
            updates.append((old["id"], change))
        status[key] = "updated" if change else "unchanged"

    child_inserts, child_updates = [], []
    counts = dict.fromkeys(("inserted", "updated", "unchanged"), 0)
    in_file: dict[tuple, set] = {}
    for i in accepted:  # the children the file gives for stored episodes
        if children[i] and keys[i] in stored:
            in_file.setdefault((keys[i], norm(children[i][0])), set()).add(children[i][1])
    new_children: set[tuple] = set()
    for i in accepted:
        key, child = keys[i], children[i]
        row_status = status.pop(key, "unchanged")  # the episode's change counts on its first row
        if child and key not in stored:  # a new episode: each distinct child once
            mark = (key, norm(child[0]), child[1])
            if mark not in new_children:
                new_children.add(mark)
                child_inserts.append((ids[key], *child))
                row_status = "inserted"
        elif child:
            name, dob = child
            same_name = stored_children.setdefault((key, norm(name)), [])
            corrected = [c for c in same_name if c["dob"] not in in_file[(key, norm(name))]]
            if any(c["dob"] == dob for c in same_name):
                pass
            elif corrected:
                child_updates.append((dob, corrected[0]["id"]))
                corrected[0]["dob"] = dob
                if row_status == "unchanged":
                    row_status = "updated"
            else:
                child_inserts.append((ids[key], name, dob))
                same_name.append({"id": None, "dob": dob})
                row_status = "inserted"
        counts[row_status] += 1
    for what, n in counts.items():
        setattr(summary, what, n)

    with _indexes_set_aside_if(db, ("episodes", "children"), len(new)):
        # New rows go in as bulk inserts, logged together (ehkit.db.bulk_insert): a
        # case-system export of 200,000 rows would otherwise write 200,000 chained
        # change-log rows.
        if new:
            columns = [range(next_id, next_id + len(new)), [keys[i][0] for i in new],
                       [keys[i][1] for i in new]]
            for c in EPISODE_COLUMNS:
                column = [values[c][i] for i in new]
                columns.append([b or "new_request" for b in column] if c == "began_as"
                               else column)
            store.bulk_insert(db, "episodes", names, zip(*columns, strict=True))
        by_columns: dict[tuple, list] = {}
        for eid, change in updates:
            by_columns.setdefault(tuple(change), []).append((*change.values(), eid))
        for columns, params in by_columns.items():
            conn.executemany(f"UPDATE episodes SET {', '.join(f'{c} = ?' for c in columns)} "
                             "WHERE id = ?", params)
        if child_inserts:
            store.bulk_insert(db, "children", ["episode_id", "name", "date_of_birth"],
                              child_inserts)
        if child_updates:
            conn.executemany("UPDATE children SET date_of_birth = ? WHERE id = ?", child_updates)


@contextlib.contextmanager
def _indexes_set_aside_if(db, tables: tuple[str, ...], adding: int):
    """An import that at least doubles the first table (and adds 1,000 rows or more) drops the
    tables' indexes and builds each once at the end (a sort: twice as fast as growing them row
    by row); in the import's transaction, so no one sees the store without them, and a refused
    import rolls them back with everything else. A smaller import keeps them."""
    conn = db.conn
    held = conn.execute(f"SELECT count(*) FROM {tables[0]}").fetchone()[0]
    saved = [] if adding < max(held, 1000) else conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND "
        f"tbl_name IN ({', '.join('?' * len(tables))})", tables).fetchall()
    for name, _ in saved:  # UNIQUE and key indexes have no sql: they stay
        conn.execute(f"DROP INDEX {store._q(name)}")
    yield
    for _, sql in saved:
        conn.execute(sql)


# -- practitioners ----------------------------------------------------------------------------
def import_practitioners(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                         rejects_dir: str | Path = REJECTS_DIR,
                         progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import practitioners with their agency, team, line manager and auditor flag.

    A practitioner is the same person as a stored one with the same id (when the file has an
    id column) or the same name at the same agency. Line managers may be anywhere in the file.
    """
    access.require(db, "import")  # before the file is read
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    f = _open(Path(path), "practitioners", mapping)
    look = _Lookup(db)
    words = mapping.values["practitioners"]
    present = set(f.found)
    summary = ImportSummary("practitioners", f.name, f.sha256, read=len(f.rows))
    problems: list[Problem] = []
    rows: list[tuple[int, dict, str, int | None]] = []
    seen: dict[tuple, int] = {}
    for i, (n, cells) in enumerate(f.rows):
        if progress and i % 1000 == 0:
            progress(i, len(f.rows))
        text = {k: _text(v) for k, v in _cells(f, cells).items()}
        out: list[Problem] = []
        for fld in REQUIRED["practitioners"]:
            if not text[fld]:
                out.append(Problem(n, "MISSING_VALUE", fld, ""))
        agency = look.agency.get(norm(text["agency"])) if text["agency"] else None
        if text["agency"] and agency is None:
            out.append(Problem(n, "UNKNOWN_AGENCY", "agency", text["agency"]))
        p: dict = {"name": text["name"], "agency_id": agency["id"] if agency else None}
        for fld in ("id", "line_manager_id"):
            try:
                p[fld] = _number(text.get(fld, ""))
            except _Bad as e:
                out.append(Problem(n, e.code, fld, text[fld], e.detail))
        for fld in ("role", "team"):
            if fld in present:
                p[fld] = text[fld] or None
        if "is_auditor" in present:
            try:
                p["is_auditor"] = _yes_no(text["is_auditor"], words.get("is_auditor", {}))
            except _Bad as e:
                out.append(Problem(n, e.code, "is_auditor", text["is_auditor"], e.detail))
        whole = tuple(sorted((k, str(v)) for k, v in text.items()))
        if not out and whole in seen:
            out.append(Problem(n, "DUPLICATE_ROW", "", "", f"same as row {seen[whole]}"))
        seen.setdefault(whole, n)
        if out:
            problems.extend(out)
            continue
        rows.append((n, p, text.get("line_manager", ""), p.pop("line_manager_id")))

    # Who is who: stored people, and this file's people (who may manage each other).
    next_id = max(look.people, default=0) + 1
    stored_key = {(norm(s["name"]), s["agency_id"]): s["id"] for s in look.people.values()}
    file_by_name: dict[str, list[dict]] = {}
    first_row: dict[int, int] = {}
    people = []
    for n, p, manager, manager_id in rows:
        pid = p["id"] if p["id"] is not None else stored_key.get((norm(p["name"]), p["agency_id"]))
        pid = pid if pid is not None else stored_key.setdefault(
            (norm(p["name"]), p["agency_id"]), next_id)
        if pid in first_row:
            problems.append(Problem(n, "DUPLICATE_DIFFERS", "name", p["name"],
                                    f"the same practitioner as row {first_row[pid]}"))
            continue
        if pid == next_id:
            next_id += 1
        first_row[pid] = n
        p["id"] = pid
        file_by_name.setdefault(norm(p["name"]), []).append(p)
        people.append((n, p, manager, manager_id))
    known_ids = set(look.people) | set(first_row)
    final: list[tuple[int, dict]] = []
    for n, p, manager, manager_id in people:
        if manager_id is None and manager:
            hits = {q["id"]: q for q in file_by_name.get(norm(manager), [])}
            hits.update({q["id"]: q for q in look.by_name.get(norm(manager), [])})
            own = [q for q in hits.values() if q["agency_id"] == p["agency_id"]]
            pick = own or list(hits.values())
            if not pick:
                problems.append(Problem(n, "UNKNOWN_PRACTITIONER", "line_manager", manager))
                continue
            if len(pick) > 1:
                problems.append(Problem(n, "AMBIGUOUS_PRACTITIONER", "line_manager", manager,
                                        f"{len(pick)} called {manager!r}"))
                continue
            manager_id = pick[0]["id"]
        elif manager_id is not None and manager_id not in known_ids:
            problems.append(Problem(n, "UNKNOWN_PRACTITIONER", "line_manager_id",
                                    str(manager_id)))
            continue
        if manager_id is not None and manager_id == p["id"]:
            problems.append(Problem(n, "OWN_LINE_MANAGER", "line_manager", manager or
                                    str(manager_id)))
            continue
        if present & {"line_manager", "line_manager_id"}:
            p["line_manager_id"] = manager_id
        final.append((n, p))

    def write() -> None:
        stored = {r["id"]: r for r in db.query("SELECT * FROM practitioners")}
        inserts, updates, managers = [], [], []
        for _, p in final:
            old = stored.get(p["id"])
            if old is None:
                row = {"role": None, "team": None, "is_auditor": 0, **p}
                # managers are set after everyone exists (they may be later in the file)
                managers.append((row.pop("line_manager_id", None), p["id"]))
                inserts.append(row)
                summary.inserted += 1
                continue
            change = {k: v for k, v in p.items() if k != "id" and old[k] != v}
            if change:
                updates.append((p["id"], change))
                summary.updated += 1
            else:
                summary.unchanged += 1
        if inserts:
            db["practitioners"].insert_all(inserts, batch_size=2000)
        grouped: dict[tuple, list] = {}
        for pid, change in updates:
            grouped.setdefault(tuple(change), []).append((*change.values(), pid))
        for columns, params in grouped.items():
            db.conn.executemany(f"UPDATE practitioners SET "
                                f"{', '.join(f'{c} = ?' for c in columns)} WHERE id = ?", params)
        managers = [m for m in managers if m[0] is not None]
        if managers:
            db.conn.executemany("UPDATE practitioners SET line_manager_id = ? WHERE id = ?",
                                managers)

    return _finish(db, f, summary, problems, rejects_dir, write, progress)


# -- agencies ---------------------------------------------------------------------------------
def import_agencies(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                    rejects_dir: str | Path = REJECTS_DIR,
                    progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import agencies (name, council or partner, sector); the same name is the same agency."""
    access.require(db, "import")  # before the file is read
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    f = _open(Path(path), "agencies", mapping)
    words = mapping.values["agencies"]
    sectors = {s: s for s in setting("agencies", "sectors")}
    summary = ImportSummary("agencies", f.name, f.sha256, read=len(f.rows))
    problems: list[Problem] = []
    rows: dict[str, tuple[int, dict]] = {}
    for n, cells in f.rows:
        text = {k: _text(v) for k, v in _cells(f, cells).items()}
        out = [Problem(n, "MISSING_VALUE", fld, "") for fld in REQUIRED["agencies"]
               if not text[fld]]
        a = {"name": text["name"]}
        for fld, allowed in (("kind", {"council": "Council", "partner": "Partner"}),
                             ("sector", sectors)):
            if text[fld]:
                try:
                    a[fld] = _choice(text[fld], words.get(fld, {}), allowed)
                except _Bad as e:
                    out.append(Problem(n, e.code, fld, text[fld], e.detail))
        key = norm(text["name"])
        if not out and key in rows:
            first_n, first = rows[key]
            out.append(Problem(n, "DUPLICATE_ROW" if first == a else "DUPLICATE_DIFFERS",
                               "name", text["name"], f"same agency as row {first_n}"))
        if out:
            problems.extend(out)
            continue
        rows[key] = (n, a)

    def write() -> None:
        stored = {norm(r["name"]): r for r in db.query("SELECT * FROM agencies")}
        inserts = []
        for key, (_, a) in rows.items():
            old = stored.get(key)
            if old is None:
                inserts.append(a)
                summary.inserted += 1
            elif any(old[k] != v for k, v in a.items()):
                db["agencies"].update(old["id"], a)
                summary.updated += 1
            else:
                summary.unchanged += 1
        if inserts:
            db["agencies"].insert_all(inserts)

    return _finish(db, f, summary, problems, rejects_dir, write, progress)


IMPORTERS = {"episodes": import_episodes, "practitioners": import_practitioners,
             "agencies": import_agencies}
