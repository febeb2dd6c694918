"""Cases: episodes, children, practitioners and agencies, imported from case-system exports.

An import reads a CSV (UTF-8 with or without BOM, or Windows-1252) or an ``.xlsx`` file, finds
its columns through a mapping file (``ehkit/mappings/*.toml``), checks every row against the
rules in :data:`RULES`, writes the valid rows in ONE transaction (bulk, no query per row) and
every rejected row, with its row number, original values and the rule it broke, to
``reports/imports/<file>-rejects.csv``. Each import is recorded in the ``imports`` table.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import io
import re
import sqlite3
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from . import db as store
from . import home, rules, spreadsheet
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


class CaseNotFound(EhkitError):
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
        with store.acting_as(user=who.user, actor=who.actor or f"ehkit import {summary.kind}",
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


def import_episodes(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                    create_agencies: bool = False, rejects_dir: str | Path = REJECTS_DIR,
                    today: dt.date | None = None,
                    progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import episodes with their children from a case-system export."""
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    f = _open(Path(path), "episodes", mapping)
    today = today or dt.date.today()
    look = _Lookup(db)
    words = mapping.values["episodes"]
    defaults = mapping.defaults["episodes"]
    began = setting("episodes", "began_as")
    ended = setting("episodes", "ended_as")
    create_rule = mapping.create_agencies
    present = set(f.found)
    has_child = bool(present & {"child_name", "child_first_name", "child_last_name"})
    # Which store columns this file speaks for (others are left as stored on an update).
    speaks = {c for c in EPISODE_COLUMNS if c in present}
    speaks |= {"lead_agency_id"}
    if "end_date" in present:
        speaks |= {"status", "ended_as"}
    if present & {"lead_professional", "lead_professional_id"}:
        speaks.add("lead_professional_id")
    if present & {"team_manager", "team_manager_id"}:
        speaks.add("team_manager_id")
    if "began_as" in present:
        speaks.add("began_as")

    speaks_sorted = sorted(speaks)
    summary = ImportSummary("episodes", f.name, f.sha256, read=len(f.rows))
    problems: list[Problem] = []
    new_agencies: dict[str, dict] = {}
    valid: list[tuple[int, tuple, dict, tuple | None, tuple]] = []  # (.., row's text)

    for i, (n, cells) in enumerate(f.rows):
        if progress and i % 1000 == 0:
            progress(i, len(f.rows))
        raw = _cells(f, cells)
        text = {k: _text(v) for k, v in raw.items()}
        if not f.typed:  # a CSV's cells are text: the trimmed text is the raw value too
            raw = text
        row_problems: list[Problem] = []

        def bad(fld: str, e: _Bad, row=n, text=text, out=row_problems):
            out.append(Problem(row, e.code, fld, text.get(fld, ""), e.detail))

        def date_of(fld: str, raw=raw, bad=bad):
            try:
                return parse_date(raw.get(fld))
            except _Bad as e:
                bad(fld, e)
                return None

        for fld in REQUIRED["episodes"]:
            if not text[fld]:
                bad(fld, _Bad("MISSING_VALUE"))
        start = date_of("start_date")
        end = date_of("end_date")
        first_review = date_of("first_review_date")
        last_review = date_of("last_review_date")
        dob = date_of("child_date_of_birth")
        if start and end and end < start:
            bad("end_date", _Bad("END_BEFORE_START", f"began {start:%d/%m/%Y}"))
        for fld, d in (("first_review_date", first_review), ("last_review_date", last_review)):
            if start and d and d < start:
                bad(fld, _Bad("REVIEW_BEFORE_START", f"began {start:%d/%m/%Y}"))
        if first_review and last_review and last_review < first_review:
            bad("last_review_date", _Bad("REVIEW_ORDER"))
        if dob and dob > today:
            bad("child_date_of_birth", _Bad("DOB_IN_FUTURE"))
        elif dob and start and dob > start:
            bad("child_date_of_birth", _Bad("DOB_AFTER_START", f"began {start:%d/%m/%Y}"))

        # agency: known, or to be created
        agency_key = norm(text["lead_agency"])
        agency_id = None
        if agency_key:
            known = look.agency.get(agency_key)
            if known:
                agency_id = known["id"]
            elif create_agencies:
                agency_id = ("new", agency_key)
                if agency_key not in new_agencies:
                    try:
                        kind = _new_agency_kind(text, words, create_rule)
                        new_agencies[agency_key] = {
                            "name": text["lead_agency"], "kind": kind,
                            "sector": create_rule.get("sector", "Other")}
                    except _Bad as e:
                        bad("lead_agency_kind", e)
            else:
                bad("lead_agency", _Bad("UNKNOWN_AGENCY"))

        ep: dict = {}
        try:
            pid = _number(text.get("lead_professional_id", ""))
        except _Bad as e:
            bad("lead_professional_id", e)
            pid = None
        try:
            lead = look.practitioner(text.get("lead_professional", ""), pid,
                                     agency_id if isinstance(agency_id, int) else None,
                                     own_agency_only=True)
            ep["lead_professional_id"] = lead
        except _Bad as e:
            bad("lead_professional_id" if pid is not None else "lead_professional", e)
        try:
            tid = _number(text.get("team_manager_id", ""))
            ep["team_manager_id"] = look.practitioner(
                text.get("team_manager", ""), tid,
                agency_id if isinstance(agency_id, int) else None)
        except _Bad as e:
            bad("team_manager_id" if text.get("team_manager_id") else "team_manager", e)

        b = text.get("began_as", "") or defaults.get("began_as", "")
        if b:
            try:
                ep["began_as"] = _choice(b, words.get("began_as", {}), began)
            except _Bad as e:
                bad("began_as", e)
        elif "began_as" in present:
            bad("began_as", _Bad("MISSING_VALUE", "or set a default in the mapping file"))
        ended_as = None
        if text.get("ended_as"):
            try:
                ended_as = _choice(text["ended_as"], words.get("ended_as", {}), ended)
            except _Bad as e:
                bad("ended_as", e)
            if not end and "end_date" not in {p.field for p in row_problems}:
                bad("ended_as", _Bad("ENDED_WITHOUT_END_DATE"))
        try:
            ep["cross_authority"] = _yes_no(text.get("cross_authority", ""),
                                            words.get("cross_authority", {}))
        except _Bad as e:
            bad("cross_authority", e)
        child = None
        if has_child:
            name = text.get("child_name") or " ".join(
                t for t in (text.get("child_first_name"), text.get("child_last_name")) if t)
            if name:
                child = (name, dob.isoformat() if dob else None)
            elif text.get("child_date_of_birth"):
                bad("child_name", _Bad("MISSING_VALUE", "a date of birth without a name"))

        if row_problems:
            problems.extend(row_problems)
            continue
        ep.update({
            "lead_agency_id": agency_id,
            "end_date": end.isoformat() if end else None,
            "status": "closed" if end else "open",
            "ended_as": ended_as if end else None,
            "referral_reason": text.get("referral_reason") or None,
            "cross_authority_name": text.get("cross_authority_name") or None,
            "cross_authority_contact": text.get("cross_authority_contact") or None,
            "first_review_date": first_review.isoformat() if first_review else None,
            "last_review_date": last_review.isoformat() if last_review else None,
        })
        key = (text["ehm_number"], start.isoformat())
        valid.append((n, key, ep, child, tuple(text.values())))

    # Rows of the same episode (one per child): the first row sets the episode.
    episodes: dict[tuple, tuple[int, dict]] = {}
    seen_rows: dict[tuple, int] = {}
    first_text: dict[tuple, tuple] = {}
    accepted: list[tuple[int, tuple, tuple | None]] = []
    names = list(f.found)  # the order of each row's text values
    for n, key, ep, child, whole in valid:
        if whole in seen_rows:
            problems.append(Problem(n, "DUPLICATE_ROW", "", "", f"same as row {seen_rows[whole]}"))
            continue
        seen_rows[whole] = n
        if key in episodes:
            first_n, first = episodes[key]
            differs = [k for k in speaks_sorted if first.get(k) != ep.get(k)]
            if differs:
                # name the export's column and show its words, not the store's ids
                text = dict(zip(names, whole, strict=True))
                fields = list(dict.fromkeys(
                    next((f for f in (FILE_FIELD.get(k, k), k) if f in text), k)
                    for k in differs))
                was = dict(zip(names, first_text[key], strict=True)).get(fields[0], "")
                problems.append(Problem(
                    n, "DUPLICATE_DIFFERS", fields[0], text.get(fields[0], ""),
                    f"row {first_n} has {was!r}; differs in " + ", ".join(fields)))
                continue
        else:
            episodes[key] = (n, ep)
            first_text[key] = whole
        accepted.append((n, key, child))

    def write() -> None:
        _write_episodes(db, summary, episodes, accepted, new_agencies, speaks)

    return _finish(db, f, summary, problems, rejects_dir, write, progress)


def _new_agency_kind(text: dict, words: dict, rule: dict) -> str:
    if text.get("lead_agency_kind"):
        return _choice(text["lead_agency_kind"], words.get("lead_agency_kind", {}),
                       {"council": "Council", "partner": "Partner"})
    name = text["lead_agency"].casefold()
    if any(w.casefold() in name for w in rule.get("council_if_name_contains", [])):
        return "council"
    return rule.get("kind", "partner")


def _write_episodes(db, summary: ImportSummary, episodes: dict, accepted: list,
                    new_agencies: dict, speaks: set) -> None:
    conn = db.conn
    if new_agencies:
        # only agencies some valid row needs
        needed = {ep["lead_agency_id"][1] for _, ep in episodes.values()
                  if isinstance(ep["lead_agency_id"], tuple)}
        rows = [new_agencies[k] for k in sorted(needed)]
        db["agencies"].insert_all(rows)
        summary.created_agencies = [r["name"] for r in rows]
        ids = {norm(r["name"]): r["id"] for r in db.query("SELECT id, name FROM agencies")}
        for _, ep in episodes.values():
            if isinstance(ep["lead_agency_id"], tuple):
                ep["lead_agency_id"] = ids[ep["lead_agency_id"][1]]

    # The stored episodes and children this file speaks of, by one join on a temp table.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_keys (ehm TEXT, start TEXT)")
    conn.execute("DELETE FROM import_keys")
    conn.executemany("INSERT INTO import_keys VALUES (?, ?)", list(episodes))
    cols = ", ".join(f"e.{c}" for c in ("id", "ehm_number", "start_date", *EPISODE_COLUMNS))
    stored = {}
    for r in conn.execute(f"SELECT {cols} FROM import_keys k JOIN episodes e "
                          "ON e.ehm_number = k.ehm AND e.start_date = k.start"):
        stored[(r[1], r[2])] = dict(zip(("id", "ehm_number", "start_date", *EPISODE_COLUMNS),
                                        r, strict=True))
    # A child is the same child by name and date of birth (siblings may share a name); a
    # stored child whose date of birth the file no longer gives, under the same name, is
    # the same child with a corrected date.
    stored_children: dict[tuple, list[dict]] = {}
    for cid, _eid, name, dob, ehm, start in conn.execute(
            "SELECT c.id, c.episode_id, c.name, c.date_of_birth, e.ehm_number, e.start_date "
            "FROM import_keys k JOIN episodes e ON e.ehm_number = k.ehm AND e.start_date = k.start"
            " JOIN children c ON c.episode_id = e.id ORDER BY c.id"):
        stored_children.setdefault(((ehm, start), norm(name)), []).append(
            {"id": cid, "dob": dob})
    in_file: dict[tuple, set] = {}
    for _, key, child in accepted:
        if child:
            in_file.setdefault((key, norm(child[0])), set()).add(child[1])
    conn.execute("DROP TABLE import_keys")

    next_id = (conn.execute("SELECT max(id) FROM episodes").fetchone()[0] or 0) + 1
    inserts, updates = [], []
    status: dict[tuple, str] = {}  # episode key -> inserted / updated / unchanged
    ids: dict[tuple, int] = {}
    for key, (_, ep) in episodes.items():
        old = stored.get(key)
        if old is None:
            row = {"id": next_id, "ehm_number": key[0], "start_date": key[1],
                   "began_as": "new_request", "cross_authority": 0}
            row.update({c: ep.get(c) for c in EPISODE_COLUMNS if c in ep})
            row["lead_agency_id"] = ep["lead_agency_id"]
            inserts.append(row)
            ids[key] = next_id
            next_id += 1
            status[key] = "inserted"
            continue
        ids[key] = old["id"]
        change = {c: ep[c] for c in sorted(speaks) if c in ep and ep[c] != old[c]}
        if change:
            updates.append((old["id"], change))
        status[key] = "updated" if change else "unchanged"

    child_inserts, child_updates = [], []
    counted: set[tuple] = set()
    for _, key, child in accepted:
        row_status = "unchanged"
        if key not in counted:  # the episode's own change is counted on its first row
            counted.add(key)
            row_status = status[key]
        if child:
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
        setattr(summary, row_status, getattr(summary, row_status) + 1)

    # New rows go in as bulk inserts, logged together (ehkit.db.bulk_insert): a case-system
    # export of 200,000 rows would otherwise write 200,000 chained change-log rows.
    if inserts:
        names = ["id", "ehm_number", "start_date", *EPISODE_COLUMNS]
        store.bulk_insert(db, "episodes", names, (tuple(r[c] for c in names) for r in inserts))
    by_columns: dict[tuple, list] = {}
    for eid, change in updates:
        by_columns.setdefault(tuple(change), []).append((*change.values(), eid))
    for columns, params in by_columns.items():
        conn.executemany(f"UPDATE episodes SET {', '.join(f'{c} = ?' for c in columns)} "
                         "WHERE id = ?", params)
    if child_inserts:
        store.bulk_insert(db, "children", ["episode_id", "name", "date_of_birth"], child_inserts)
    if child_updates:
        conn.executemany("UPDATE children SET date_of_birth = ? WHERE id = ?", child_updates)


# -- practitioners ----------------------------------------------------------------------------
def import_practitioners(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                         rejects_dir: str | Path = REJECTS_DIR,
                         progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import practitioners with their agency, team, line manager and auditor flag.

    A practitioner is the same person as a stored one with the same id (when the file has an
    id column) or the same name at the same agency. Line managers may be anywhere in the file.
    """
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


# -- small queries others need ----------------------------------------------------------------
def find_episode(db: sqlite_utils.Database, episode: int | str) -> int:
    """An episode id from an id or an EHM number (its latest episode when it has several)."""
    if isinstance(episode, int):
        if db.conn.execute("SELECT 1 FROM episodes WHERE id = ?", (episode,)).fetchone():
            return episode
        raise CaseNotFound(f"no episode with id {episode}")
    ehm = str(episode).strip()
    row = db.conn.execute("SELECT id FROM episodes WHERE ehm_number = ? "
                          "ORDER BY start_date DESC LIMIT 1", (ehm,)).fetchone()
    if row is None:
        raise CaseNotFound(f"no episode with EHM number {ehm!r}: check the number, or import "
                           "the case list first (`ehkit import episodes FILE`)")
    return row[0]


def episode_info(db: sqlite_utils.Database, episode: int | str) -> dict:
    """What the audit form's case-information block shows for an episode (id or EHM number)."""
    eid = find_episode(db, episode)
    row = next(db.query(
        """SELECT e.*, a.name AS lead_agency, a.kind AS lead_agency_kind,
                  lp.name AS lead_professional, lp.role AS lead_professional_role,
                  tm.name AS team_manager
           FROM episodes e JOIN agencies a ON a.id = e.lead_agency_id
           LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id
           LEFT JOIN practitioners tm ON tm.id = e.team_manager_id
           WHERE e.id = ?""", [eid]))
    row["children"] = list(db.query(
        "SELECT name, date_of_birth FROM children WHERE episode_id = ? ORDER BY date_of_birth, id",
        [eid]))
    return row
