"""Service-user feedback: what the child or young person, or the parent or carer, says.

Feedback is recorded on the form (:func:`record_service_user_feedback`) or imported from a
CSV or Excel file (:func:`import_service_user_feedback`), with rated questions and "concern
raised" themes, both settings. The form and the import ask the same rules
(:func:`feedback_problems`), each with a code (``ehkit rules``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Mapping
from pathlib import Path

import sqlite_utils

from . import access, dates, episodes, importing, records, rules
from . import db as store
from .errors import EhkitError, FeedbackError
from .settings import get as setting

RESPONDENTS = {"child_young_person": "Child or young person", "parent_carer": "Parent or carer"}
STAGES = {"end_of_assessment": "End of assessment", "taf_meeting": "Team Around the Family meeting",
          "closure": "Closure"}


# Service-user feedback's rules, for the form and the import. The import also uses the codes
# every import checks (ehkit.importing): MISSING_VALUE, BAD_DATE, IMPOSSIBLE_DATE,
# TOO_MANY_CELLS, DUPLICATE_ROW.
rules.register_all({
    "NOT_A_RECORD": "the feedback, or its ratings, is not given as a record of its fields",
    "NOT_TEXT": "the comments, the concern's theme or its detail is not text",
    "DATE_IN_FUTURE": "the date the feedback was given is in the future",
    "UNKNOWN_EPISODE": "no episode with this EHM number had begun by the date the feedback was "
                       "given (or began on the episode_start given)",
    "BEFORE_EPISODE": "the feedback is dated before the episode began",
    "UNKNOWN_CHOICE": "not one of the choices: the respondent, the stage, or yes or no for "
                      "whether a concern was raised",
    "UNKNOWN_QUESTION": "not a feedback question (setting service_user_questions)",
    "BAD_RATING": "a rating is not a whole number from 1 to 5",
    "MISSING_THEME": "a concern was raised but its theme is not given",
    "UNKNOWN_THEME": "the concern's theme is not one of the setting concern_themes",
    "THEME_WITHOUT_CONCERN": "a theme is given but no concern is marked as raised",
}, kind="feedback")


# A wrong date given with feedback is a feedback error (not the tracker's).
_as_date = functools.partial(dates.as_date, error=FeedbackError)


# -- service-user feedback ----------------------------------------------------------------
def questions() -> list[dict]:
    """The rated questions (setting ``feedback.service_user_questions``)."""
    return list(setting("feedback", "service_user_questions"))


def rating_labels() -> list[str]:
    return list(setting("feedback", "rating_labels"))


def concern_themes() -> list[str]:
    return list(setting("feedback", "concern_themes"))


def feedback_problems(db: sqlite_utils.Database, fb: Mapping, today=None) -> dict:
    """Problems with one piece of feedback as {field: (rule code, reason)}.

    The one rule the form and the CSV import both ask (the codes go in the rejects file).
    """
    if not isinstance(fb, Mapping):
        return _declared({"feedback": ("NOT_A_RECORD",
                                       "the feedback is given as a dict of its fields")})
    problems: dict[str, tuple[str, str]] = {
        f: ("NOT_TEXT", "should be text") for f in ("comments", "concern_theme", "concern_detail")
        if not isinstance(fb.get(f), str | None)}
    if not isinstance(fb.get("ratings"), Mapping | None):
        problems["ratings"] = ("NOT_A_RECORD", "the ratings map each question to its rating")
    given = fb.get("given_on")
    if given is None or given == "":
        problems["given_on"] = ("MISSING_VALUE", "missing: the date the feedback was given")
    else:
        try:
            given = _as_date(given)
            if given > _as_date(today or dt.date.today()):
                problems["given_on"] = ("DATE_IN_FUTURE", "the date is in the future")
        except EhkitError:
            problems["given_on"] = ("BAD_DATE", "not a date like 2026-11-24 or 24/11/2026")
    episode = fb.get("episode_id")
    if episode is not None and not records.is_id(episode):
        problems["ehm_number"] = ("UNKNOWN_EPISODE", f"{episode!r:.40} is not an episode number")
    elif episode is None:
        problems["ehm_number"] = ("UNKNOWN_EPISODE",
                                  "no episode with this EHM number had begun by that date")
    elif "given_on" not in problems:
        start = db.execute("SELECT start_date FROM episodes WHERE id = ?", [episode]).fetchone()
        if start is None:
            problems["ehm_number"] = ("UNKNOWN_EPISODE", f"no episode {episode}")
        elif given.isoformat() < start[0]:
            problems["given_on"] = ("BEFORE_EPISODE", f"before the episode began ({start[0]})")
    if not isinstance(fb.get("respondent"), str) or fb["respondent"] not in RESPONDENTS:
        problems["respondent"] = ("UNKNOWN_CHOICE",
                                  "should be one of: " + ", ".join(RESPONDENTS.values()))
    if not isinstance(fb.get("stage"), str) or fb["stage"] not in STAGES:
        problems["stage"] = ("UNKNOWN_CHOICE", "should be one of: " + ", ".join(STAGES.values()))
    keys = {q["key"] for q in questions()}
    ratings = fb.get("ratings") if isinstance(fb.get("ratings"), Mapping) else {}
    for k, v in ratings.items():
        if k not in keys:
            problems[k] = ("UNKNOWN_QUESTION",
                           f"not a feedback question (questions: {', '.join(sorted(keys))})")
        elif not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5:
            problems[k] = ("BAD_RATING", "a rating should be a whole number from 1 to 5")
    theme = fb.get("concern_theme")
    theme = theme.strip() if isinstance(theme, str) else ""
    if fb.get("concern_raised"):
        if not theme:
            problems["concern_theme"] = ("MISSING_THEME", "a concern was raised: give its theme")
        elif theme not in concern_themes():
            problems["concern_theme"] = ("UNKNOWN_THEME",
                                         "should be one of: " + ", ".join(concern_themes()))
    elif theme:
        problems["concern_raised"] = ("THEME_WITHOUT_CONCERN",
                                      "a theme is given but no concern is marked as raised")
    return _declared(problems)


def _declared(problems: dict) -> dict:
    """The problems, each of a declared rule (ehkit rules lists them): else a bug here."""
    for code, *_ in problems.values():
        rules.get(code)
    return problems


def check_service_user_feedback(db: sqlite_utils.Database, fb: Mapping, today=None) -> dict:
    """Problems with one piece of feedback as {field: reason}; empty when it can be saved."""
    return {f: reason for f, (_, reason) in feedback_problems(db, fb, today).items()}


def _feedback_row(fb: Mapping) -> dict:
    theme = (fb.get("concern_theme") or "").strip()
    return {
        "episode_id": fb["episode_id"],
        "given_on": _as_date(fb["given_on"]).isoformat(),
        "respondent": fb["respondent"],
        "stage": fb["stage"],
        "ratings": json.dumps(dict(sorted((fb.get("ratings") or {}).items()))),
        "comments": (fb.get("comments") or "").strip() or None,
        "concern_raised": int(bool(fb.get("concern_raised"))),
        "concern_theme": theme or None,
        "concern_detail": (fb.get("concern_detail") or "").strip() or None,
    }


FIELD_NAMES = {"ehm_number": "EHM number", "given_on": "date given",
               "concern_theme": "theme of the concern", "concern_detail": "about the concern"}


def field_name(key: str) -> str:
    """A feedback field (or rated question) as the form names it, for messages."""
    texts = {q["key"]: q["text"] for q in questions()}
    return FIELD_NAMES.get(key) or texts.get(key) or key.replace("_", " ")


def record_service_user_feedback(db: sqlite_utils.Database, fb: Mapping, *,
                                 actor: str | None = None, today=None) -> int:
    """Save one piece of feedback (keys as in :func:`check_service_user_feedback`)."""
    problems = check_service_user_feedback(db, fb, today)
    if problems:
        raise FeedbackError("the feedback was not saved: " + "; ".join(
            f"{field_name(k)}: {v}" for k, v in problems.items()), problems)
    row = _feedback_row(fb)
    clash = db.execute("SELECT id FROM service_user_feedback WHERE episode_id = ? AND given_on = ?"
                       " AND respondent = ? AND stage = ?",
                       [row["episode_id"], row["given_on"], row["respondent"], row["stage"]]
                       ).fetchone()
    if clash:
        raise FeedbackError(f"feedback from this {RESPONDENTS[row['respondent']].lower()} at this "
                            f"stage on {row['given_on']} is already recorded (number {clash[0]})",
                            {"given_on": "already recorded"})
    with access.acting(db, "service_user_feedback", label=actor), store.transaction(db):
        return db["service_user_feedback"].insert(row).last_pk


def concerns_by_theme(db: sqlite_utils.Database, start, end) -> list[dict]:
    """Concerns raised in service-user feedback given in the period, per theme.

    Every configured theme is listed (0 where none), then any other stored theme."""
    p = [_as_date(start).isoformat(), _as_date(end).isoformat()]
    counts = dict(db.execute("SELECT concern_theme, count(*) FROM service_user_feedback WHERE "
                             "concern_raised = 1 AND given_on BETWEEN ? AND ? "
                             "GROUP BY concern_theme", p).fetchall())
    themes = concern_themes() + sorted(set(counts) - set(concern_themes()))
    return [{"theme": t, "concerns": counts.get(t, 0)} for t in themes]


def service_user_summary(db: sqlite_utils.Database, start, end) -> dict:
    """Feedback given in the period: how many (by respondent and stage), concerns raised,
    and the average rating of each question (None where nobody answered it)."""
    p = [_as_date(start).isoformat(), _as_date(end).isoformat()]
    where = "FROM service_user_feedback WHERE given_on BETWEEN ? AND ?"
    total, concerns = db.execute(f"SELECT count(*), coalesce(sum(concern_raised), 0) {where}",
                                 p).fetchone()
    each = ("jsonb_each_text(f.ratings::jsonb) AS j", "CAST(j.value AS double precision)") \
        if store.is_postgres(db) else ("json_each(f.ratings) j", "j.value")  # each rating
    averages = {k: (round(avg, 2), n) for k, avg, n in db.execute(
        f"SELECT j.key, avg({each[1]}), count(*) FROM service_user_feedback f, {each[0]}"
        " WHERE f.given_on BETWEEN ? AND ? GROUP BY j.key", p)}
    return {
        "feedback": total,
        "concerns_raised": concerns,
        "by_respondent": {k: n for k, n in db.execute(
            f"SELECT respondent, count(*) {where} GROUP BY respondent", p)},
        "by_stage": {k: n for k, n in db.execute(f"SELECT stage, count(*) {where} GROUP BY stage",
                                                p)},
        "ratings": [{"key": q["key"], "question": q["text"],
                     "average": averages.get(q["key"], (None, 0))[0],
                     "answered": averages.get(q["key"], (None, 0))[1]} for q in questions()],
    }


# -- importing service-user feedback from CSV or Excel ---------------------------------------
# On the import frame (ehkit.importing), as every import: a CSV or .xlsx, the header row found
# below any title rows, headings matched ignoring case, spaces and punctuation, dates as
# 31/01/2026, 31-Jan-2026, 2026-01-31 or Excel dates, the rejects file, one transaction.
REQUIRED_COLUMNS = ("ehm_number", "given_on", "respondent", "stage")
OPTIONAL_COLUMNS = ("episode_start", "comments", "concern_raised", "concern_theme",
                    "concern_detail")


def _columns() -> importing.Columns:
    """The columns, each headed by its own name: the fields, then one per rated question."""
    names = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *(q["key"] for q in questions()))
    return importing.Columns("service-user feedback", {k: (k,) for k in names},
                             REQUIRED_COLUMNS, "Head the columns with these names (any case, "
                             "spaces for underscores)")


def _date_cell(value) -> tuple[dt.date | None, tuple[str, str] | None]:
    """(date, None) or (None, (code, detail)), read as every import reads a date."""
    try:
        return importing.parse_date(value), None
    except importing.Bad as e:
        return None, (e.code, e.detail)


def _choice(text: str, options: Mapping[str, str]) -> str | None:
    t = " ".join(text.lower().replace("_", " ").split())
    for key, label in options.items():
        if t in (key.replace("_", " "), label.lower()):
            return key
    return None


def _read_row(db, raw: Mapping[str, object], qkeys: list[str], today) -> tuple[dict, dict]:
    """One row checked: (feedback, problems as {field: (code, value, detail)})."""
    bad: dict[str, tuple[str, str, str]] = {}
    text = {k: importing.cell_text(v) for k, v in raw.items()}
    fb: dict = {"ratings": {}}
    fb["given_on"], problem = _date_cell(raw.get("given_on"))
    if problem:
        bad["given_on"] = (problem[0], text["given_on"], problem[1])
    start = None
    if text.get("episode_start"):
        start, problem = _date_cell(raw.get("episode_start"))
        if problem:
            bad["episode_start"] = (problem[0], text["episode_start"], problem[1])
    ehm = text.get("ehm_number", "")
    if not ehm:
        bad["ehm_number"] = ("MISSING_VALUE", "", "the child's EHM number")
    elif "episode_start" not in bad:
        fb["episode_id"] = episodes.find_episode(db, ehm, fb["given_on"] or today, start)
    fb.setdefault("episode_id", None)
    for name, options in (("respondent", RESPONDENTS), ("stage", STAGES)):
        fb[name] = _choice(text.get(name, ""), options)
    for k in qkeys:
        v = text.get(k, "")
        if v:
            fb["ratings"][k] = int(v) if v.isdigit() else v
    try:
        fb["concern_raised"] = bool(importing.yes_no(text.get("concern_raised", ""), {}))
    except importing.Bad:
        bad["concern_raised"] = ("UNKNOWN_CHOICE", text["concern_raised"], "should be yes or no")
    for k in ("comments", "concern_theme", "concern_detail"):
        fb[k] = text.get(k) or None
    for f, (code, reason) in feedback_problems(db, fb, today).items():
        if f not in bad and not (f == "ehm_number" and "episode_start" in bad):
            bad[f] = (code, text.get(f, ""), reason)
    return fb, bad


def import_service_user_feedback(db: sqlite_utils.Database, path: str | Path, *,
                                 rejects_dir: str | Path = importing.REJECTS_DIR,
                                 actor: str | None = None,
                                 today=None) -> importing.ImportSummary:
    """Import feedback from a CSV or .xlsx file: one row per piece of feedback, under a header
    row naming the columns (see the README).

    As every import (:mod:`ehkit.importing`): good rows are saved in one transaction; each
    problem of a bad row goes to ``<rejects_dir>/<file>-rejects.csv`` as row, code, field,
    value, reason and the row's cells; row numbers are the spreadsheet's and blank rows are
    not counted. A row already imported (same episode, date, respondent and stage) is
    updated if it changed, else counted unchanged. The import is recorded with the file's
    sha256.
    """
    access.require(db, "service_user_feedback")  # before the file is read
    today = _as_date(today or dt.date.today())
    f = importing.open_file(path, _columns())
    summary = importing.ImportSummary("service_user_feedback", f.name, f.sha256, read=f.read)
    qkeys = [q["key"] for q in questions()]
    problems: list[importing.Problem] = []
    good: dict[tuple, tuple[int, dict]] = {}
    for n, row in f.rows:
        raw = importing.by_field(f, row)
        fb, bad = _read_row(db, raw, qkeys, today)
        if not bad:
            record = _feedback_row(fb)
            key = (record["episode_id"], record["given_on"], record["respondent"], record["stage"])
            if key in good:
                bad["given_on"] = ("DUPLICATE_ROW", importing.cell_text(raw.get("given_on")),
                                   f"the same feedback as row {good[key][0]}"
                                   " (same child, date, respondent and stage)")
            else:
                good[key] = (n, record)
        problems.extend(importing.Problem(n, code, fld, value, detail)
                        for fld, (code, value, detail) in _declared(bad).items())

    def write() -> None:
        stored = {(r["episode_id"], r["given_on"], r["respondent"], r["stage"]): r
                  for r in db.query("SELECT * FROM service_user_feedback")}
        new, changed = [], []
        for key, (_, record) in good.items():
            old = stored.get(key)
            if old is None:
                new.append({**record, "import_id": summary.import_id})
            elif any(old[k] != v for k, v in record.items()):
                changed.append({**record, "import_id": summary.import_id, "id": old["id"]})
            else:
                summary.unchanged += 1
        summary.inserted, summary.updated = len(new), len(changed)
        if new:
            db["service_user_feedback"].insert_all(new)
        if changed:
            db["service_user_feedback"].upsert_all(changed, pk="id")

    with store.acting_as(actor=actor) if actor else contextlib.nullcontext():
        return importing.finish(db, f, summary, problems, rejects_dir, write,
                                permission="service_user_feedback")
