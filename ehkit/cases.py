"""Cases: episodes, children, practitioners and agencies, imported from case-system exports.

Each import finds its columns through a mapping file (``ehkit/mappings/*.toml``) and runs on
the import frame (:mod:`ehkit.importing`: reading the file, the header row, dates, the
rejects file, the one transaction, the record and the summary). Each is a few named steps:
the columns the file speaks for, the rows checked (every rule's code in the registry,
``ehkit rules``), rows of one record merged, and the write.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import gc
import itertools
import operator
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils

from . import access, home, rules
from . import db as store
from .dates import uk
from .episodes import labels as episode_labels
from .errors import EhkitError
from .importing import (
    REJECTS_DIR,
    Bad,
    Coded,
    Columns,
    File,
    ImportSummary,
    Problem,
    by_field,
    cell_text,
    finish,
    norm,
    number,
    open_file,
    parse_date,
    yes_no,
)
from .settings import get as setting

DEFAULT_MAPPING = "default"
KINDS = ("episodes", "practitioners", "agencies")


class MappingError(EhkitError):
    pass


# -- the rules a row of a case-system export keeps (with the frame's: ehkit.importing) -----
rules.register_all({
    "UNKNOWN_VALUE": "a word the mapping file does not know",
    "UNKNOWN_SECTOR": "not one of the sectors in the settings (agencies.sectors): add it "
                      "there, or map the export's word to one in the mapping file",
    "UNKNOWN_AGENCY": "no agency of this name in the store (import agencies first, "
                      "or use --create-agencies)",
    "UNKNOWN_PRACTITIONER": "no practitioner of this name or id in the store "
                            "(import practitioners first, or correct the name)",
    "AMBIGUOUS_PRACTITIONER": "more than one practitioner has this name: use the id column",
    "DUPLICATE_DIFFERS": "same EHM number and start date as an earlier row, but different "
                         "episode details: one episode cannot have two",
}, kind="import")


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


def _open(path: str | Path, kind: str, mapping: Mapping) -> File:
    """The file opened on the frame, its headings as the mapping names them."""
    return open_file(path, Columns(kind, mapping.columns[kind], REQUIRED[kind],
                                   "Add them to the export, or name their headings in a "
                                   f"mapping file (--mapping; this import used '{mapping.name}')"))


def _choice(text: str, words: dict[str, str], allowed: dict[str, str]) -> str:
    """A word from the export as one of the store's values (keys of ``allowed``)."""
    key = norm(text)
    if key in words:  # the mapping file's word is held to the store's values as the export's is
        if words[key] in allowed:
            return words[key]
        raise Bad("UNKNOWN_VALUE", f"the mapping file maps it to {words[key]!r}, which is not "
                  "one of the store's values: correct the mapping file; allowed: "
                  + ", ".join(allowed))
    for value, label in allowed.items():
        if key in (norm(value), norm(label)):
            return value
    raise Bad("UNKNOWN_VALUE", "add it to the mapping file; allowed: " + ", ".join(allowed))


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
                raise Bad("UNKNOWN_PRACTITIONER", f"no practitioner with id {pid}")
            return pid
        if not name:
            return None
        hits = self.by_name.get(norm(name), [])
        own = [p for p in hits if p["agency_id"] == agency_id]
        hits = own if own or own_agency_only else hits
        if not hits:
            raise Bad("UNKNOWN_PRACTITIONER")
        if len(hits) > 1:
            raise Bad("AMBIGUOUS_PRACTITIONER", f"{len(hits)} called {name!r}")
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
    return _import_episodes(db, path, mapping, create_agencies, rejects_dir,
                            today or dt.date.today(), progress)


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused: an import makes millions of cells, tuples and lists,
    none in a cycle, and the collector would walk them all again and again (a third of the
    time at 200,000 rows). Used as a decorator, so the function's cells are freed before the
    collector resumes (its first pass would walk every one still held: 0.5 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@_no_cycle_collection()
def _import_episodes(db, path, mapping: Mapping, create_agencies: bool, rejects_dir,
                     today: dt.date, progress) -> ImportSummary:
    f = _open(path, "episodes", mapping)
    summary = ImportSummary("episodes", f.name, f.sha256, read=f.read)
    if progress:
        progress(0, summary.read)
    cols = _columns(f, FIELDS["episodes"])
    found = _Found(cols)
    checked = _check_episode_rows(db, cols, found, mapping, set(f.found), create_agencies,
                                  today)
    speaks = _speaks_for(set(f.found))
    episodes, accepted = _merge_episode_rows(cols, found, checked, list(f.found), speaks,
                                             f.whole_rows())

    def write() -> None:
        _write_episodes(db, summary, checked, episodes, accepted, speaks)

    return finish(db, f, summary, found.problems(), rejects_dir, write, progress)


# The episode import's steps, a column at a time: the file's rows as columns,
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


def _columns(f: File, fields: Iterable[str]) -> _Columns:
    by_index = f.columns(max(f.found.values()) + 1)
    blank = [""] * len(f.numbers)
    raw, text = {}, {}
    for k in fields:
        if k not in f.found:
            raw[k] = text[k] = blank
        elif f.typed:
            raw[k] = by_index[f.found[k]]
            text[k] = [cell_text(v) for v in raw[k]]
        else:  # a CSV's cells are text: the trimmed text is the raw value too
            column = by_index[f.found[k]]
            raw[k] = text[k] = column if f.trimmed else [v.strip() for v in column]
    return _Columns(f.numbers, raw, text, f.typed)


class _Found:
    """Problems found one rule at a time over whole columns, listed as a row-by-row check
    lists them: by row, then field, then the order the rules are checked in."""

    def __init__(self, cols: _Columns):
        self.cols, self.bad_rows, self._found = cols, set(), []

    def add(self, i: int, fld: str, e: Bad) -> None:
        value = self.cols.text[fld][i] if fld in self.cols.text else ""
        n = self.cols.rows[i]
        self._found.append((n, fld, len(self._found), Problem(n, e.code, fld, value, e.detail)))
        self.bad_rows.add(i)

    def add_all(self, rows: Iterable[int], fld: str, e: Bad) -> None:
        for i in rows:
            self.add(int(i), fld, e)

    def problems(self) -> list[Problem]:
        return [p for *_, p in sorted(self._found, key=lambda t: t[:3])]


def _by_distinct(fn: Callable, *columns: list) -> tuple[list, np.ndarray]:
    """``fn`` once per distinct combination of the columns' values (an export repeats the same
    dates, agencies, people and words thousands of times): the results, and for each row the
    index of its result."""
    keys, codes = _distinct(columns[0] if len(columns) == 1 else
                            list(zip(*columns, strict=True)))
    return [fn(k) for k in keys] if len(columns) == 1 else [fn(*k) for k in keys], codes


def _distinct(keys: list) -> tuple[list, np.ndarray]:
    """The distinct keys in the order first met, and for each row the index of its key."""
    if type(keys) is Coded:  # found as the file was read
        return list(keys.distinct), keys.codes
    # each distinct key numbered as it is first met: one pass in C, a new key's number
    # drawn by the dictionary itself (listed, then one array: np.fromiter takes a third longer)
    number = collections.defaultdict(itertools.count().__next__)
    codes = np.array(list(map(number.__getitem__, keys)), dtype=np.intp)
    return list(number), codes


def _distinct_objects(column: list) -> list:
    """The column with each row's value one of its distinct values' objects (equal cells the
    same object), as a plain CSV's columns are read (:class:`ehkit.importing.Coded`)."""
    return column if type(column) is Coded else _spread(*_distinct(column))


def _spread(values: list, codes: np.ndarray) -> list:
    """Each row's value from the distinct values' results (taken by numpy from an array of
    them: a fifth of the time of a lookup per row)."""
    return np.fromiter(values, dtype=object, count=len(values))[codes].tolist()


def _checked(found: _Found, results: list, codes: np.ndarray) -> list:
    """Results of ``(value, ((field, Bad), ...))`` spread over the rows; the problems added."""
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


def _date_or_bad(value) -> dt.date | None | Bad:
    try:
        return parse_date(value)
    except Bad as e:
        return e


def _dates(cols: _Columns, found: _Found, fld: str) -> _Dates:
    """BAD_DATE and IMPOSSIBLE_DATE: each distinct cell read once."""
    raw = cols.raw[fld]
    if cols.typed:  # keyed by type too: an Excel True is not the serial 1
        texts, codes = _distinct(list(zip(map(type, raw), raw, strict=True)))
        dates = [_date_or_bad(v) for _, v in texts]
    else:
        texts, codes = _distinct(raw)
        dates = list(map(_date_or_bad, texts))
    failing = [i for i, d in enumerate(dates) if isinstance(d, Bad)]
    if failing:
        for i in np.flatnonzero(np.isin(codes, failing)):
            found.add(int(i), fld, dates[codes[i]])
    ok = [d if isinstance(d, dt.date) else None for d in dates]
    day = np.array([d.toordinal() if d else 0 for d in ok], dtype=np.int64)[codes]
    blank = np.array([d is None for d in dates], dtype=bool)[codes]
    iso = [d.isoformat() if d else None for d in ok]
    if not cols.typed and not failing and None not in iso and iso == texts:
        iso = texts  # every cell written as the store writes it (most exports): kept as read
    # Each row's text one of the few distinct objects, not its own cell: the passes that
    # follow (episode keys, the merge, the insert) then touch a few hot objects, not 166,000
    # scattered ones.
    return _Dates(day, raw if type(raw) is Coded and iso is texts else _spread(iso, codes),
                  blank)


# The rules between an episode row's values, each a function over whole columns that says,
# for each field it names, which rows break it (dates as day numbers: 0 is blank or
# unreadable). The import asks each from the registry's definition.
def _before_start(day: dict[str, np.ndarray], d: np.ndarray) -> np.ndarray:
    start = day["start_date"]
    return (start > 0) & (d > 0) & (d < start)


@rules.rule_definition("END_BEFORE_START", "episode end is before its start", kind="import",
                       fields=("end_date", "start_date"))
def end_before_start(day: dict[str, np.ndarray], today: dt.date) -> dict[str, np.ndarray]:
    return {"end_date": _before_start(day, day["end_date"])}


@rules.rule_definition("REVIEW_BEFORE_START", "review date is before the episode began",
                       kind="import", fields=("first_review_date", "last_review_date",
                                              "start_date"))
def review_before_start(day: dict[str, np.ndarray], today: dt.date) -> dict[str, np.ndarray]:
    return {f: _before_start(day, day[f]) for f in ("first_review_date", "last_review_date")}


@rules.rule_definition("REVIEW_ORDER", "last review is before the first review", kind="import",
                       fields=("last_review_date", "first_review_date"))
def review_order(day: dict[str, np.ndarray], today: dt.date) -> dict[str, np.ndarray]:
    first, last = day["first_review_date"], day["last_review_date"]
    return {"last_review_date": (first > 0) & (last > 0) & (last < first)}


@rules.rule_definition("DOB_IN_FUTURE", "date of birth is in the future", kind="import",
                       fields=("child_date_of_birth",))
def dob_in_future(day: dict[str, np.ndarray], today: dt.date) -> dict[str, np.ndarray]:
    return {"child_date_of_birth": day["child_date_of_birth"] > today.toordinal()}


@rules.rule_definition("DOB_AFTER_START", "date of birth is after the episode began",
                       kind="import", fields=("child_date_of_birth", "start_date"))
def dob_after_start(day: dict[str, np.ndarray], today: dt.date) -> dict[str, np.ndarray]:
    dob, start = day["child_date_of_birth"], day["start_date"]  # one in the future: that rule
    return {"child_date_of_birth": (start > 0) & (dob > start) & (dob <= today.toordinal())}


@rules.rule_definition("ENDED_WITHOUT_END_DATE", "how the episode ended is given but it has "
                       "no end date", kind="import", fields=("ended_as", "end_date"))
def ended_without_end_date(ended_as: list[str], end_blank: np.ndarray) -> dict[str, np.ndarray]:
    return {"ended_as": np.fromiter(map(bool, ended_as), dtype=bool, count=len(ended_as))
            & end_blank}


DATE_RULES = (end_before_start, review_before_start, review_order, dob_in_future,
              dob_after_start)


def _ask(found: _Found, check: Callable, *columns, detail: Callable[[int], str] | None = None):
    """One registered rule over whole columns: a problem for each row and field it finds."""
    for fld, breaks in check(*columns).items():
        for i in np.flatnonzero(breaks):
            found.add(int(i), fld, Bad(check.rule.code, detail(i) if detail else ""))


def _date_rules(found: _Found, d: dict[str, _Dates], today: dt.date) -> None:
    """The rules between a row's dates; a rule against the start says when it was."""
    day = {fld: d[fld].day for fld in DATE_FIELDS}

    def began(i: int) -> str:
        return f"began {uk(dt.date.fromordinal(int(day['start_date'][i])))}"

    for check in DATE_RULES:
        _ask(found, check, day, today,
             detail=began if "start_date" in check.rule.fields else None)


@dataclass
class _Checked:
    """The episode rows checked: the store's columns by row, each row's episode key and child."""

    values: dict[str, list]
    keys: list[tuple]
    children: list[tuple | None]
    new_agencies: dict[str, dict]
    valid: list[int]
    # each valid row's episode as its first row (set by the merge): an int is hashed and
    # compared in a few nanoseconds, an episode key touches its scattered strings
    episode_of: list[int] = field(default_factory=list)


def _check_episode_rows(db, cols: _Columns, found: _Found, mapping: Mapping, present: set,
                        create_agencies: bool, today: dt.date) -> _Checked:
    """Every rule for an episode row, one rule at a time over whole columns."""
    look = _Lookup(db)
    words, defaults = mapping.values["episodes"], mapping.defaults["episodes"]
    began_labels, ended_labels = episode_labels("began_as"), episode_labels("ended_as")
    text = cols.text
    for fld in REQUIRED["episodes"]:  # MISSING_VALUE
        if "" in text[fld]:  # (a quick look first: most exports have none)
            found.add_all([i for i, t in enumerate(text[fld]) if not t], fld,
                          Bad("MISSING_VALUE"))
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
        return None, (("lead_agency", Bad("UNKNOWN_AGENCY")),)

    agency = _checked(found, *_by_distinct(agency_of, text["lead_agency"]))
    new_agencies: dict[str, dict] = {}
    for i in [i for i, a in enumerate(agency) if type(a) is tuple]:
        if agency[i][1] not in new_agencies:
            try:
                new_agencies[agency[i][1]] = {
                    "name": text["lead_agency"][i], "sector": _new_agency_sector(mapping),
                    "kind": _new_agency_kind(
                        {k: text[k][i] for k in ("lead_agency", "lead_agency_kind")},
                        words, mapping.create_agencies)}
            except Bad as e:
                found.add(i, "lead_agency_kind", e)
    own = [a if type(a) is int else None for a in agency]  # staff of a stored agency

    def lead_of(name: str, id_text: str, agency_id):  # BAD_NUMBER, UNKNOWN_/AMBIGUOUS_PRACTITIONER
        bad = []
        try:
            pid = number(id_text)
        except Bad as e:
            bad.append(("lead_professional_id", e))
            pid = None
        try:
            return look.practitioner(name, pid, agency_id, own_agency_only=True), tuple(bad)
        except Bad as e:
            field = "lead_professional_id" if pid is not None else "lead_professional"
            return None, (*bad, (field, e))

    def manager_of(name: str, id_text: str, agency_id):
        try:
            return look.practitioner(name, number(id_text), agency_id), ()
        except Bad as e:
            return None, (("team_manager_id" if id_text else "team_manager", e),)

    def person(of: Callable, name: str, id_field: str) -> list:
        """Each row's practitioner; a file without the name column gives them by id alone,
        and the row's agency matters only for a name: keyed by the id's text (a column
        hashed, not tuples of three)."""
        if name in present:
            return _checked(found, *_by_distinct(of, text[name], text[id_field], own))
        return _checked(found, *_by_distinct(lambda t: of("", t, None), text[id_field]))

    lead = person(lead_of, "lead_professional", "lead_professional_id")
    manager = person(manager_of, "team_manager", "team_manager_id")

    def began_of(word: str):  # UNKNOWN_VALUE, MISSING_VALUE (None: the store's default)
        word = word or defaults.get("began_as", "")
        if word:
            try:
                return _choice(word, words.get("began_as", {}), began_labels), ()
            except Bad as e:
                return None, (("began_as", e),)
        if "began_as" in present:
            return None, (("began_as", Bad("MISSING_VALUE", "or set a default in the mapping "
                                                             "file")),)
        return None, ()

    def ended_of(word: str):  # UNKNOWN_VALUE
        if not word:
            return None, ()
        try:
            return _choice(word, words.get("ended_as", {}), ended_labels), ()
        except Bad as e:
            return None, (("ended_as", e),)

    def yes_no_of(word: str):  # UNKNOWN_VALUE
        try:
            return yes_no(word, words.get("cross_authority", {})), ()
        except Bad as e:
            return None, (("cross_authority", e),)

    began = _checked(found, *_by_distinct(began_of, text["began_as"]))
    ended = _checked(found, *_by_distinct(ended_of, text["ended_as"]))
    _ask(found, ended_without_end_date, text["ended_as"], d["end_date"].blank)
    cross = _checked(found, *_by_distinct(yes_no_of, text["cross_authority"]))
    children = _children(cols, found, present, d["child_date_of_birth"].iso)

    end = d["end_date"].iso
    values = {
        "lead_agency_id": agency, "end_date": end,
        "status": ["closed" if e else "open" for e in end],
        "ended_as": [w if e else None for w, e in zip(ended, end, strict=True)],
        "lead_professional_id": lead, "team_manager_id": manager, "began_as": began,
        "cross_authority": cross,
        **{c: [t or None for t in text[c]] if "" in text[c] else text[c]
           for c in ("referral_reason", "cross_authority_name", "cross_authority_contact")},
        "first_review_date": d["first_review_date"].iso,
        "last_review_date": d["last_review_date"].iso,
    }
    keys = list(zip(text["ehm_number"], d["start_date"].iso, strict=True))
    bad = found.bad_rows
    valid = [i for i in range(len(cols.rows)) if i not in bad] if bad else \
        list(range(len(cols.rows)))
    return _Checked(values, keys, children, new_agencies, valid)


def _children(cols: _Columns, found: _Found, present: set, dob: list) -> list[tuple | None]:
    """Each row's child (name, date of birth), if the file names children; MISSING_VALUE for a
    date of birth without a name."""
    if not present & {"child_name", "child_first_name", "child_last_name"}:
        return [None] * len(cols.rows)
    text = cols.text
    names = _distinct_objects(text["child_name"])  # a service's names repeat
    if present & {"child_first_name", "child_last_name"}:
        names = [n or " ".join(t for t in (first, last) if t) for n, first, last in zip(
            names, text["child_first_name"], text["child_last_name"], strict=True)]
    if "" not in names:  # (a quick look first: a file of children names each)
        return list(zip(names, dob, strict=True))
    found.add_all([i for i, (n, b) in enumerate(zip(names, text["child_date_of_birth"],
                                                    strict=True)) if b and not n],
                  "child_name", Bad("MISSING_VALUE", "a date of birth without a name"))
    return [(n, b) if n else None for n, b in zip(names, dob, strict=True)]


_NAME, _BIRTH = operator.itemgetter(0), operator.itemgetter(1)  # of a row's child


def _gather(column: list, rows: list[int]) -> list:
    """The column's values at these rows, in C."""
    return list(map(column.__getitem__, rows))


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
                        speaks: set, wholes: list | None = None
                        ) -> tuple[dict[tuple, int], list[int]]:
    """Rows of the same episode (one per child) as one episode, set by its first row:
    DUPLICATE_ROW for a copy of an earlier row, DUPLICATE_DIFFERS for other episode details.
    Returns {episode key: its first row} and the rows accepted, in file order.

    Each row's first copy and its episode's first row are found in one pass each in C (a
    dictionary's setdefault mapped over the rows); only the rows that share an episode with
    an earlier one have their details compared, as whole tuples. ``wholes``: each row as one
    value, if the file gives them (:meth:`ehkit.importing.File.whole_rows`), else tuples."""
    values, keys, valid = checked.values, checked.keys, checked.valid
    if wholes is None:
        wholes = list(zip(*(cols.text[k] for k in names), strict=True))
    seen: dict[tuple, int] = {}
    copy_of = list(map(seen.setdefault, map(wholes.__getitem__, valid), valid))
    episodes: dict[tuple, int] = {}  # (a copy's episode is its original's: no new key)
    first_of = list(map(episodes.setdefault, map(keys.__getitem__, valid), valid))
    if len(valid) == len(keys):
        checked.episode_of = first_of
    else:  # (a row refused by a rule has no episode)
        checked.episode_of = [-1] * len(keys)
        for i, f in zip(valid, first_of, strict=True):
            checked.episode_of[i] = f
    later = [(i, f) for i, c, f in zip(valid, copy_of, first_of, strict=True)
             if c == i and f != i]
    differs: set[int] = set()
    if later:  # the later rows' details against their first rows', tuples of those rows only
        rows, firsts = (list(r) for r in zip(*later, strict=True))

        def details(at: list[int]) -> Iterable[tuple]:
            return zip(*(map(values[c].__getitem__, at) for c in sorted(speaks)), strict=True)

        differs = set(itertools.compress(rows, map(operator.ne, details(firsts),
                                                   details(rows))))
    if not differs and len(seen) == len(valid):  # no copies, no differences: every row
        return episodes, list(valid)
    accepted: list[int] = []
    for i, c, f in zip(valid, copy_of, first_of, strict=True):
        if c != i:
            found.add(i, "", Bad("DUPLICATE_ROW", f"same as row {cols.rows[c]}"))
        elif i in differs:
            # name the export's column and show its words, not the store's ids
            differ = [k for k in sorted(speaks) if values[k][f] != values[k][i]]
            fields = list(dict.fromkeys(next((x for x in (FILE_FIELD.get(k, k), k)
                                              if x in names), k) for k in differ))
            was = cols.text[fields[0]][f] if fields[0] in names else ""
            found.add(i, fields[0], Bad("DUPLICATE_DIFFERS", f"row {cols.rows[f]} has "
                                        f"{was!r}; differs in " + ", ".join(fields)))
        else:
            accepted.append(i)
    return episodes, accepted


def _agency_kind(text: str, words: dict[str, str]) -> str:
    return _choice(text, words, {"council": "Council", "partner": "Partner"})


def _sector(text: str, words: dict[str, str]) -> str:
    """UNKNOWN_SECTOR: the settings are the one list of sectors (the store does not restate
    them), so a council renames or adds one there alone."""
    sectors = setting("agencies", "sectors")
    try:
        return _choice(text, words, {s: s for s in sectors})
    except Bad:
        raise Bad("UNKNOWN_SECTOR", "the sectors are: " + ", ".join(sectors)) from None


def _new_agency_sector(mapping: Mapping) -> str:
    """The sector of agencies --create-agencies makes: the mapping's, one of the settings'."""
    sector = mapping.create_agencies.get("sector", "Other")
    try:
        return _sector(sector, {})
    except Bad as e:
        raise MappingError(f"mapping '{mapping.name}': [create_agencies] sector = {sector!r} "
                           f"is not a sector in the settings ({e.detail}): name one of them "
                           "there; nothing was imported") from None


def _new_agency_kind(text: dict, words: dict, rule: dict) -> str:
    if text.get("lead_agency_kind"):
        return _agency_kind(text["lead_agency_kind"], words.get("lead_agency_kind", {}))
    name = text["lead_agency"].casefold()
    if any(w.casefold() in name for w in rule.get("council_if_name_contains", [])):
        return "council"
    return rule.get("kind", "partner")


def _write_episodes(db, summary: ImportSummary, checked: _Checked, episodes: dict[tuple, int],
                    accepted: list[int], speaks: set) -> None:
    """The write: the agencies to create, the episodes the store holds already, what changes
    (episodes, then their children, counted row by row), all in bulk."""
    _create_agencies(db, summary, checked, episodes)
    stored, stored_children = _stored_of_file(db.conn, episodes)
    changes = _episode_changes(db.conn, checked, episodes, stored, speaks)
    child_inserts, child_updates = _child_changes(summary, checked, accepted, stored,
                                                  stored_children, changes)
    _write_changes(db, checked, changes, child_inserts, child_updates)


STORED_COLUMNS = ("id", "ehm_number", "start_date", *EPISODE_COLUMNS)


@dataclass
class _EpisodeChanges:
    """New episodes (their first rows) from ``next_id`` on, each episode's id and whether it
    is inserted, updated or unchanged, and the stored ones' updates."""

    new: list[int]
    next_id: int
    ids: dict[int, int]  # by the episode's first row (_Checked.episode_of)
    status: dict[tuple, str]  # the stored episodes'
    updates: list[tuple[int, dict]]


def _create_agencies(db, summary: ImportSummary, checked: _Checked,
                     episodes: dict[tuple, int]) -> None:
    """--create-agencies: only agencies some valid row needs; their rows get the new ids."""
    agency = checked.values["lead_agency_id"]
    if checked.new_agencies:
        needed = sorted({agency[i][1] for i in episodes.values() if type(agency[i]) is tuple})
        rows = [checked.new_agencies[k] for k in needed]
        db["agencies"].insert_all(rows)
        summary.created_agencies = [r["name"] for r in rows]
        ids = {norm(r["name"]): r["id"] for r in db.query("SELECT id, name FROM agencies")}
        for i in episodes.values():
            if type(agency[i]) is tuple:
                agency[i] = ids[agency[i][1]]


def _stored_of_file(conn, episodes: dict[tuple, int]) -> tuple[dict, dict]:
    """The stored episodes and children this file speaks of, by one join on a temp table."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM episodes)").fetchone()[0]:
        return {}, {}  # a new store: none (the join would cost a tenth of a big import)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_keys (ehm TEXT, start TEXT)")
    conn.execute("DELETE FROM import_keys")
    conn.executemany("INSERT INTO import_keys VALUES (?, ?)", list(episodes))
    stored = {(r[1], r[2]): dict(zip(STORED_COLUMNS, r, strict=True)) for r in conn.execute(
        f"SELECT {', '.join(f'e.{c}' for c in STORED_COLUMNS)} FROM import_keys k JOIN episodes e "
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
    return stored, stored_children


def _episode_changes(conn, checked: _Checked, episodes: dict[tuple, int], stored: dict,
                     speaks: set) -> _EpisodeChanges:
    """New episodes a column at a time; stored ones updated in what the file speaks for."""
    values = checked.values
    next_id = (conn.execute("SELECT max(id) FROM episodes").fetchone()[0] or 0) + 1
    # new episodes numbered in the file's order (in C)
    new = [i for key, i in episodes.items() if key not in stored] if stored else \
        list(episodes.values())
    ids = dict(zip(new, range(next_id, next_id + len(new)), strict=True))
    status = {}  # a stored episode's key -> updated / unchanged
    updates = []
    for key, old in stored.items():
        i = episodes[key]
        ids[i] = old["id"]
        change = {c: values[c][i] for c in sorted(speaks)
                  if (c != "began_as" or values[c][i] is not None) and values[c][i] != old[c]}
        if change:
            updates.append((old["id"], change))
        status[key] = "updated" if change else "unchanged"
    return _EpisodeChanges(new, next_id, ids, status, updates)


def _child_changes(summary: ImportSummary, checked: _Checked, accepted: list[int],
                   stored: dict, stored_children: dict,
                   changes: _EpisodeChanges) -> tuple[list, list]:
    """The children to insert and the dates of birth to correct; each row counted inserted,
    updated or unchanged (an episode's change on its first row, a child's on its own)."""
    keys, children, episode_of = checked.keys, checked.children, checked.episode_of
    ids, status = changes.ids, changes.status
    new = [i for i in accepted if keys[i] not in stored] if stored else accepted
    # A new episode's rows: each distinct child inserted once, at its first row, which counts
    # as inserted, as does the episode's first row; its other rows are unchanged. (Each
    # row's child found by a dictionary's setdefault mapped over the rows, in C.)
    kids = [i for i in new if children[i]] if None in children else new
    kid = _gather(children, kids)
    names = list(map(_NAME, kid))
    normed = {n: norm(n) for n in set(names)}  # each distinct name once (a service's repeat)
    firsts: dict[tuple, int] = {}
    collections.deque(map(firsts.setdefault, zip(
        _gather(episode_of, kids), map(normed.__getitem__, names), map(_BIRTH, kid),
        strict=True), kids), maxlen=0)
    first_rows = list(firsts.values())  # in file order
    inserted = len(set(changes.new).union(first_rows))
    counts = {"inserted": inserted, "updated": 0, "unchanged": len(new) - inserted}
    kid = _gather(children, first_rows)
    new_children = list(zip(map(ids.__getitem__, _gather(episode_of, first_rows)), map(_NAME, kid),
                            map(_BIRTH, kid), strict=True))
    child_inserts: list[tuple[int, tuple]] = []  # stored episodes' new children, by row
    child_updates = []
    old = [i for i in accepted if keys[i] in stored] if stored else []
    in_file: dict[tuple, set] = {}
    for i in old:  # the children the file gives for stored episodes
        if children[i]:
            in_file.setdefault((keys[i], norm(children[i][0])), set()).add(children[i][1])
    for i in old:
        key, child = keys[i], children[i]
        row_status = status.pop(key, "unchanged")  # the episode's change counts on its first row
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
                child_inserts.append((i, (ids[episode_of[i]], name, dob)))
                same_name.append({"id": None, "dob": dob})
                row_status = "inserted"
        counts[row_status] += 1
    for what, n in counts.items():
        setattr(summary, what, n)
    if not child_inserts:
        return new_children, child_updates
    return [child for _, child in sorted([*zip(first_rows, new_children, strict=True),
                                          *child_inserts])], \
        child_updates


def _write_changes(db, checked: _Checked, changes: _EpisodeChanges, child_inserts: list,
                   child_updates: list) -> None:
    conn, values, keys = db.conn, checked.values, checked.keys
    new, next_id = changes.new, changes.next_id
    with _indexes_set_aside_if(db, ("episodes", "children"), len(new)):
        # New rows go in as bulk inserts, logged together (ehkit.db.bulk_insert): a
        # case-system export of 200,000 rows would otherwise write 200,000 chained
        # change-log rows.
        if new:
            columns = [range(next_id, next_id + len(new)), *zip(*_gather(keys, new), strict=True)]
            for c in EPISODE_COLUMNS:
                column = _gather(values[c], new)
                columns.append([b or "new_request" for b in column] if c == "began_as"
                               else column)
            store.bulk_insert(db, "episodes", STORED_COLUMNS, zip(*columns, strict=True),
                              checks_met=True)  # every value held to the rules above
        by_columns: dict[tuple, list] = {}
        for eid, change in changes.updates:
            by_columns.setdefault(tuple(change), []).append((*change.values(), eid))
        for columns, params in by_columns.items():
            conn.executemany(f"UPDATE episodes SET {', '.join(f'{c} = ?' for c in columns)} "
                             "WHERE id = ?", params)
        if child_inserts:
            store.bulk_insert(db, "children", ["episode_id", "name", "date_of_birth"],
                              child_inserts, checks_met=True)
        if child_updates:
            conn.executemany("UPDATE children SET date_of_birth = ? WHERE id = ?", child_updates)


@contextlib.contextmanager
def _indexes_set_aside_if(db, tables: tuple[str, ...], adding: int):
    """An import that at least doubles the first table (and adds 1,000 rows or more) drops the
    tables' indexes and builds each once at the end (a sort: twice as fast as growing them row
    by row); in the import's transaction, so no one sees the store without them, and a refused
    import rolls them back with everything else. A smaller import keeps them, and so does
    PostgreSQL (its new rows go in by COPY)."""
    conn = db.conn
    if store.is_postgres(db):
        yield
        return
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
    f = _open(path, "practitioners", mapping)
    summary = ImportSummary("practitioners", f.name, f.sha256, read=f.read)
    look = _Lookup(db)
    problems: list[Problem] = []
    rows = _check_practitioner_rows(f, look, mapping.values["practitioners"], problems,
                                    progress)
    people = _merge_practitioner_rows(rows, look, problems)
    final = _line_managers(people, look, set(f.found), problems)
    return finish(db, f, summary, problems, rejects_dir,
                  lambda: _write_practitioners(db, summary, final), progress)


def _check_practitioner_rows(f: File, look: _Lookup, words: dict, problems: list[Problem],
                             progress=None) -> list[tuple[int, dict, str, int | None]]:
    """Each row checked (MISSING_VALUE, UNKNOWN_AGENCY, BAD_NUMBER, UNKNOWN_VALUE,
    DUPLICATE_ROW): (row, practitioner in the columns the file speaks for, line manager's
    name, line manager's id) for each valid row; its problems for each other row."""
    present = set(f.found)
    rows: list[tuple[int, dict, str, int | None]] = []
    seen: dict[tuple, int] = {}
    for i, (n, cells) in enumerate(f.rows):
        if progress and i % 1000 == 0:
            progress(i, len(f.rows))
        text = {k: cell_text(v) for k, v in by_field(f, cells).items()}
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
                p[fld] = number(text.get(fld, ""))
            except Bad as e:
                out.append(Problem(n, e.code, fld, text[fld], e.detail))
        for fld in ("role", "team"):
            if fld in present:
                p[fld] = text[fld] or None
        if "is_auditor" in present:
            try:
                p["is_auditor"] = yes_no(text["is_auditor"], words.get("is_auditor", {}))
            except Bad as e:
                out.append(Problem(n, e.code, "is_auditor", text["is_auditor"], e.detail))
        whole = tuple(sorted((k, str(v)) for k, v in text.items()))
        if not out and whole in seen:
            out.append(Problem(n, "DUPLICATE_ROW", "", "", f"same as row {seen[whole]}"))
        seen.setdefault(whole, n)
        if out:
            problems.extend(out)
            continue
        rows.append((n, p, text.get("line_manager", ""), p.pop("line_manager_id")))
    return rows


def _merge_practitioner_rows(rows: list, look: _Lookup, problems: list[Problem]) -> list:
    """Who is who: each row's practitioner is a stored one (the same id, or the same name at
    the same agency) or a new one; DUPLICATE_DIFFERS for a second row of one practitioner."""
    next_id = max(look.people, default=0) + 1
    stored_key = {(norm(s["name"]), s["agency_id"]): s["id"] for s in look.people.values()}
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
        people.append((n, p, manager, manager_id))
    return people


@rules.rule_definition("OWN_LINE_MANAGER", "a practitioner cannot be their own line manager",
                       kind="import", fields=("line_manager", "line_manager_id"))
def own_line_manager(practitioner_id: int, manager_id: int | None) -> bool:
    return manager_id is not None and manager_id == practitioner_id


def _line_managers(people: list, look: _Lookup, present: set,
                   problems: list[Problem]) -> list[tuple[int, dict]]:
    """Each practitioner's line manager, by id or by name, stored or in this file (who may
    manage each other): UNKNOWN_PRACTITIONER, AMBIGUOUS_PRACTITIONER, OWN_LINE_MANAGER."""
    file_by_name: dict[str, list[dict]] = {}
    for _, p, _, _ in people:
        file_by_name.setdefault(norm(p["name"]), []).append(p)
    known_ids = set(look.people) | {p["id"] for _, p, _, _ in people}
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
        if own_line_manager(p["id"], manager_id):
            problems.append(Problem(n, "OWN_LINE_MANAGER", "line_manager", manager or
                                    str(manager_id)))
            continue
        if present & {"line_manager", "line_manager_id"}:
            p["line_manager_id"] = manager_id
        final.append((n, p))
    return final


def _write_practitioners(db, summary: ImportSummary, final: list[tuple[int, dict]]) -> None:
    """New practitioners inserted, stored ones updated in what the file speaks for; line
    managers set once everyone exists (they may be later in the file)."""
    stored = {r["id"]: r for r in db.query("SELECT * FROM practitioners")}
    inserts, updates, managers = [], [], []
    for _, p in final:
        old = stored.get(p["id"])
        if old is None:
            row = {"role": None, "team": None, "is_auditor": 0, **p}
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


# -- agencies ---------------------------------------------------------------------------------
def import_agencies(db: sqlite_utils.Database, path: str | Path, *, mapping=None,
                    rejects_dir: str | Path = REJECTS_DIR,
                    progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import agencies (name, council or partner, sector); the same name is the same agency."""
    access.require(db, "import")  # before the file is read
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    f = _open(path, "agencies", mapping)
    summary = ImportSummary("agencies", f.name, f.sha256, read=f.read)
    problems: list[Problem] = []
    rows = _check_agency_rows(f, mapping.values["agencies"], problems)
    return finish(db, f, summary, problems, rejects_dir,
                  lambda: _write_agencies(db, summary, rows), progress)


def _check_agency_rows(f: File, words: dict, problems: list[Problem]) -> dict[str, tuple]:
    """Each row checked (MISSING_VALUE, UNKNOWN_VALUE, UNKNOWN_SECTOR) and rows of one agency
    merged (DUPLICATE_ROW, DUPLICATE_DIFFERS): {agency's key: (row, agency)}."""
    rows: dict[str, tuple[int, dict]] = {}
    for n, cells in f.rows:
        text = {k: cell_text(v) for k, v in by_field(f, cells).items()}
        out = [Problem(n, "MISSING_VALUE", fld, "") for fld in REQUIRED["agencies"]
               if not text[fld]]
        a = {"name": text["name"]}
        for fld, read in (("kind", _agency_kind), ("sector", _sector)):
            if text[fld]:
                try:
                    a[fld] = read(text[fld], words.get(fld, {}))
                except Bad as e:
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
    return rows


def _write_agencies(db, summary: ImportSummary, rows: dict[str, tuple]) -> None:
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


IMPORTERS = {"episodes": import_episodes, "practitioners": import_practitioners,
             "agencies": import_agencies}
