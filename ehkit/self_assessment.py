"""The practitioner self-assessment checklist: a template of statements a practitioner ticks
about their own Early Help Assessment, stored per episode.

The checklist is data (``templates/self_assessment.toml``); each saved checklist answers
every item (met or not met), so "most often unmet" counts are over complete checklists.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlite_utils

from . import access, dates, records
from . import db as store
from .dates import uk
from .errors import EhkitError
from .template import TemplateError, read_toml, template_path

DEFAULT = "self_assessment"


class SelfAssessmentError(EhkitError):
    pass


# A wrong date given with a self-assessment is its error.
_as_date = functools.partial(dates.as_date, error=SelfAssessmentError)


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    group: str
    audit_section: str | None = None


@dataclass(frozen=True)
class Checklist:
    key: str
    title: str
    intro: str
    items: tuple[Item, ...]

    @property
    def groups(self) -> list[tuple[str, list[Item]]]:
        out: dict[str, list[Item]] = {}
        for i in self.items:
            out.setdefault(i.group, []).append(i)
        return list(out.items())

    def item(self, key: str) -> Item:
        for i in self.items:
            if i.key == key:
                return i
        raise KeyError(key)


def load(name_or_path: str | Path = DEFAULT) -> Checklist:
    """Load a checklist template by name (in ehkit/templates) or path; errors name the place."""
    return _load(template_path(name_or_path))


@cache
def _load(path: Path) -> Checklist:
    data = read_toml(path, "self-assessment template")
    items, seen = [], set()
    for g, group in enumerate(data.get("groups", [])):
        title = group.get("title")
        if not title:
            raise TemplateError(f"{path}: groups[{g}] has no 'title'")
        for n, i in enumerate(group.get("items", [])):
            where = f"{path}: group '{title}' items[{n}]"
            if not i.get("key") or not i.get("text"):
                raise TemplateError(f"{where}: needs 'key' and 'text'")
            if i["key"] in seen:
                raise TemplateError(f"{where}: key '{i['key']}' is used twice")
            seen.add(i["key"])
            items.append(Item(i["key"], i["text"], title, i.get("audit_section")))
    if not items:
        raise TemplateError(f"{path}: the checklist has no items")
    for k in ("key", "title"):
        if not data.get(k):
            raise TemplateError(f"{path}: missing '{k}'")
    return Checklist(data["key"], data["title"], data.get("intro", ""), tuple(items))


def record(db: sqlite_utils.Database, episode_id: int, practitioner_id: int, completed_on,
           met: Mapping[str, bool], notes: str | None = None, *, checklist: str = DEFAULT,
           actor: str | None = None, today=None) -> int:
    """Save a practitioner's checklist for an episode; every item must be answered."""
    episode_id = records.record_id(episode_id, "episode", SelfAssessmentError)
    practitioner_id = records.record_id(practitioner_id, "practitioner", SelfAssessmentError)
    if not isinstance(met, Mapping) or not isinstance(notes, str | None):
        raise SelfAssessmentError("the self-assessment was not saved: give each item's answer "
                                  "as {item: True or False} and the notes as text")
    c = load(checklist)
    day = _as_date(completed_on, "completed date")
    problems = []
    ep = db.execute("SELECT start_date FROM episodes WHERE id = ?", [episode_id]).fetchone()
    if ep is None:
        problems.append(f"there is no episode {episode_id}")
    elif day.isoformat() < ep[0]:
        problems.append(f"the date {uk(day)} is before the episode began ({uk(ep[0])})")
    if day > _as_date(today or dt.date.today()):
        problems.append(f"the date {uk(day)} is in the future")
    if db.execute("SELECT 1 FROM practitioners WHERE id = ?", [practitioner_id]).fetchone() is None:
        problems.append("choose the practitioner" if practitioner_id is None
                        else f"there is no practitioner number {practitioner_id}")
    keys = [i.key for i in c.items]
    unknown = sorted(set(met) - set(keys))
    if unknown:
        problems.append(f"not on the checklist: {', '.join(unknown)}")
    missing = [k for k in keys if k not in met]
    if missing:
        problems.append(f"not answered: {', '.join(missing)}")
    if problems:
        raise SelfAssessmentError("the self-assessment was not saved: " + "; ".join(problems))
    if db.execute("SELECT 1 FROM self_assessments WHERE episode_id = ? AND practitioner_id = ?"
                  " AND completed_on = ?",
                  [episode_id, practitioner_id, day.isoformat()]).fetchone():
        raise SelfAssessmentError(f"this practitioner already saved a self-assessment for this "
                                  f"episode on {uk(day)}")
    with access.acting(db, "self_assessments", label=actor), store.transaction(db):
        sid = db["self_assessments"].insert({
            "episode_id": episode_id, "practitioner_id": practitioner_id,
            "completed_on": day.isoformat(), "template": c.key,
            "notes": (notes or "").strip() or None}).last_pk
        db["self_assessment_items"].insert_all(
            {"self_assessment_id": sid, "item": k, "met": int(bool(met[k]))} for k in keys)
    return sid


def for_episode(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    episode_id = records.record_id(episode_id, "episode", SelfAssessmentError)
    out = list(db.query("SELECT s.*, p.name AS practitioner FROM self_assessments s JOIN "
                        "practitioners p ON p.id = s.practitioner_id WHERE s.episode_id = ? "
                        "ORDER BY s.completed_on, s.id", [episode_id]))
    for s in out:
        s["items"] = {r[0]: bool(r[1]) for r in db.execute(
            "SELECT item, met FROM self_assessment_items WHERE self_assessment_id = ?", [s["id"]])}
    return out


def summary(db: sqlite_utils.Database, start, end, *, checklist: str = DEFAULT) -> dict:
    """Self-assessment figures for the period (inclusive):

    - ``completed``: checklists completed in the period;
    - ``episodes_started`` / ``started_with_self_assessment``: episodes that began in the
      period, and how many of them had a checklist completed by the end of it;
    - ``audited`` / ``audited_with_self_assessment``: episodes with a submitted or moderated
      audit dated in the period, and how many had a checklist completed by the audit date;
    - ``items``: per checklist item, of the checklists completed in the period, how many
      answered and how many unmet, most often unmet first.
    """
    c = load(checklist)
    p = {"start": _as_date(start).isoformat(), "end": _as_date(end).isoformat()}
    completed = db.execute("SELECT count(*) FROM self_assessments WHERE completed_on "
                           "BETWEEN :start AND :end", p).fetchone()[0]
    started, started_with = db.execute(
        """SELECT count(*), coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM self_assessments s
               WHERE s.episode_id = e.id AND s.completed_on <= :end) THEN 1 ELSE 0 END), 0)
           FROM episodes e WHERE e.start_date BETWEEN :start AND :end""", p).fetchone()
    audited, audited_with = db.execute(
        """SELECT count(DISTINCT a.episode_id), count(DISTINCT CASE WHEN EXISTS (
               SELECT 1 FROM self_assessments s WHERE s.episode_id = a.episode_id
               AND s.completed_on <= a.audit_date) THEN a.episode_id END)
           FROM counted_audits a WHERE a.audit_date BETWEEN :start AND :end""", p).fetchone()
    counts = {r[0]: (r[1], r[2]) for r in db.execute(
        """SELECT i.item, count(*), sum(CASE WHEN i.met = 0 THEN 1 ELSE 0 END) FROM self_assessment_items i
           JOIN self_assessments s ON s.id = i.self_assessment_id
           WHERE s.completed_on BETWEEN :start AND :end GROUP BY i.item""", p)}
    items = []
    for i in c.items:
        answered, unmet = counts.get(i.key, (0, 0))
        items.append({"key": i.key, "text": i.text, "group": i.group, "answered": answered,
                      "unmet": unmet,
                      "unmet_pct": round(100 * unmet / answered, 1) if answered else None})
    items.sort(key=lambda r: (-r["unmet"], r["key"]))
    return {"completed": completed, "episodes_started": started,
            "started_with_self_assessment": started_with, "audited": audited,
            "audited_with_self_assessment": audited_with, "items": items}
