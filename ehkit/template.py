"""Load and check an audit tool template: the one place the code learns what is on the form.

A template is a TOML file (see ``templates/darlington.toml``). Its keys are the keys used
in the database and in exported figures, so a council with a different tool writes a new
file and changes no code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from . import home
from .errors import EhkitError

DEFAULT_TEMPLATE = "darlington"
OVERALL = "overall"  # the key under which the overall grade appears beside section keys
# Where on the form a guidance note can be shown, besides beside a section (by its key).
GUIDANCE_PLACES = ("auditors", "case", "summary", "prompts", "grades", "actions", "record")


class TemplateError(EhkitError, ValueError):
    """A template file is malformed; the message names the file and the place."""


@dataclass(frozen=True)
class Grade:
    value: int
    label: str
    definition: str


@dataclass(frozen=True)
class Note:
    """A guidance note: its number on the paper tool and its text."""

    number: int
    text: str


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Question:
    key: str
    text: str


@dataclass(frozen=True)
class Item:
    key: str
    prompt: str
    questions: tuple[Question, ...]
    learning: bool = False


@dataclass(frozen=True)
class Section:
    key: str
    number: int
    title: str
    graded: bool
    grading_label: str
    items: tuple[Item, ...]
    holds_overall: bool = False
    label: str = ""  # a short name for reports and charts


@dataclass(frozen=True)
class Rules:
    overall_limit: str = "median"
    inadequate_section_grade: int | None = 4
    overall_cap_grade: int | None = 3
    actions_required_from_grade: int | None = 3
    evidence_required: bool = True


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    subtitle: str
    version: str
    path: Path
    grades: tuple[Grade, ...]
    acceptable: tuple[int, ...]
    rules: Rules
    question_choices: tuple[Choice, ...]
    question_guidance: str
    case_fields: tuple[Choice, ...]  # (key, label)
    checklist_title: str
    checklist_choices: tuple[Choice, ...]
    checklist: tuple[Choice, ...]  # (key, label)
    summary_label: str
    overall_label: str
    overall_grading_label: str
    overall_reasons_label: str
    actions_title: str
    action_columns: tuple[Choice, ...]
    sections: tuple[Section, ...]
    guidance: tuple[Note, ...] = field(default=())
    guidance_places: tuple[tuple[str, tuple[int, ...]], ...] = ()  # place -> note numbers
    grade_heading: tuple[str, str] = ("Judgement of Quality of Work", "Definition")

    # -- what the rest of the code asks ------------------------------------------------
    @property
    def graded_sections(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.graded)

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for s in self.sections for i in s.items)

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for i in self.items for q in i.questions)

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"template {self.key!r} has no section {key!r}")

    def grade_label(self, value: int | None) -> str:
        for g in self.grades:
            if g.value == value:
                return g.label
        return "Not graded"

    def guidance_at(self, place: str) -> tuple[Note, ...]:
        """The guidance notes shown beside ``place`` (one of GUIDANCE_PLACES or a section key)."""
        numbers = dict(self.guidance_places).get(place, ())
        return tuple(n for n in self.guidance if n.number in numbers)

    @property
    def grade_values(self) -> tuple[int, ...]:
        return tuple(g.value for g in self.grades)

    @property
    def worst_grade(self) -> int:
        return max(self.grade_values)

    def answer_keys(self) -> set[str]:
        """Every key an answer row may carry: graded sections, items and questions."""
        return (
            {s.key for s in self.sections}
            | {i.key for i in self.items}
            | {q.key for q in self.questions}
        )


def _need(d: dict, key: str, where: str, kind: type = str):
    if key not in d:
        raise TemplateError(f"{where}: missing '{key}'")
    value = d[key]
    if kind is not None and not isinstance(value, kind):
        raise TemplateError(f"{where}: '{key}' should be {kind.__name__}, got {value!r}")
    return value


def _choices(rows, where: str, value_key: str = "value", kind: type = str) -> tuple[Choice, ...]:
    if not isinstance(rows, list) or not rows:
        raise TemplateError(f"{where}: should be a non-empty list")
    out = []
    for n, row in enumerate(rows):
        w = f"{where}[{n}]"
        if not isinstance(row, dict):
            raise TemplateError(f"{w}: should be a table with '{value_key}' and 'label'")
        out.append(Choice(_need(row, value_key, w, kind), _need(row, "label", w)))
    return tuple(out)


def parse(data: dict, path: Path) -> Template:
    """Build a Template from parsed TOML, checking it; errors name ``path`` and the place."""
    w = str(path)
    try:
        scale = _need(_need(data, "grades", w, dict), "scale", f"{w}: grades", list)
        grades = []
        for n, g in enumerate(scale):
            gw = f"{w}: grades.scale[{n}]"
            grades.append(
                Grade(_need(g, "value", gw, int), _need(g, "label", gw), _need(g, "definition", gw))
            )
        values = [g.value for g in grades]
        if sorted(values) != list(range(1, len(values) + 1)) or not 2 <= len(values) <= 4:
            raise TemplateError(
                f"{w}: grades.scale values should be 1..N (N from 2 to 4, as the store keeps"
                f" grades 1-4) with 1 the best, got {values}"
            )
        acceptable = tuple(data["grades"].get("acceptable", [1, 2]))
        if not set(acceptable) <= set(values):
            raise TemplateError(f"{w}: grades.acceptable {list(acceptable)} is not on the scale")

        r = data.get("rules", {})
        rules = Rules(
            overall_limit=r.get("overall_limit", "median"),
            inadequate_section_grade=r.get("inadequate_section_grade"),
            overall_cap_grade=r.get("overall_cap_grade"),
            actions_required_from_grade=r.get("actions_required_from_grade"),
            evidence_required=bool(r.get("evidence_required", True)),
        )
        if rules.overall_limit not in ("median", "worst", "none"):
            raise TemplateError(
                f"{w}: rules.overall_limit should be 'median', 'worst' or 'none',"
                f" got {rules.overall_limit!r}"
            )
        for name in ("inadequate_section_grade", "overall_cap_grade", "actions_required_from_grade"):
            v = getattr(rules, name)
            if v is not None and v not in values:
                raise TemplateError(f"{w}: rules.{name} = {v!r} is not a grade on the scale")

        answers = data.get("answers", {})
        question_choices = _choices(
            answers.get("question_choices", [
                {"value": "yes", "label": "Yes"},
                {"value": "no", "label": "No"},
                {"value": "not_applicable", "label": "Not applicable"},
            ]),
            f"{w}: answers.question_choices",
        )
        if {c.value for c in question_choices} - {"yes", "no", "not_applicable"}:
            raise TemplateError(
                f"{w}: answers.question_choices values must be among yes, no, not_applicable"
            )
        case = _need(data, "case_information", w, dict)
        checklist = _need(data, "checklist", w, dict)
        checklist_choices = _choices(_need(checklist, "choices", f"{w}: checklist", list),
                                     f"{w}: checklist.choices")
        if {c.value for c in checklist_choices} - {"accurate", "not_accurate", "not_recorded"}:
            raise TemplateError(
                f"{w}: checklist.choices values must be among accurate, not_accurate, not_recorded"
            )
        actions = data.get("actions", {})
        guidance = {"notes": [], "shown_at": {}, **data.get("guidance", {})}

        sections = []
        raw_sections = _need(data, "sections", w, list)
        if not raw_sections:
            raise TemplateError(f"{w}: the template has no sections")
        for n, s in enumerate(raw_sections):
            sw = f"{w}: sections[{n}]"
            key = _need(s, "key", sw)
            sw = f"{w}: section '{key}'"
            items = []
            raw_items = _need(s, "items", sw, list)
            if not raw_items:
                raise TemplateError(f"{sw}: has no items, so no prompt")
            for m, i in enumerate(raw_items):
                iw = f"{sw} items[{m}]"
                prompt = _need(i, "prompt", iw)
                if not prompt.strip():
                    raise TemplateError(f"{iw}: 'prompt' is empty")
                qs = tuple(
                    Question(_need(q, "key", f"{iw} questions[{k}]"),
                             _need(q, "text", f"{iw} questions[{k}]"))
                    for k, q in enumerate(i.get("questions", []))
                )
                items.append(Item(_need(i, "key", iw), prompt, qs, bool(i.get("learning", False))))
            graded = _need(s, "graded", sw, bool)
            sections.append(Section(
                key=key,
                number=_need(s, "number", sw, int),
                title=_need(s, "title", sw),
                graded=graded,
                grading_label=s.get("grading_label", f"GRADING - {s.get('title', '')}"),
                items=tuple(items),
                holds_overall=bool(s.get("holds_overall", False)),
                label=s.get("label") or s["title"].capitalize(),
            ))
        if not any(s.graded for s in sections):
            raise TemplateError(f"{w}: no section is graded")

        t = Template(
            key=_need(data, "key", w),
            title=_need(data, "title", w),
            subtitle=data.get("subtitle", ""),
            version=str(data.get("version", "1")),
            path=path,
            grades=tuple(grades),
            acceptable=acceptable,
            rules=rules,
            question_choices=question_choices,
            question_guidance=answers.get("question_guidance", ""),
            case_fields=_choices(_need(case, "fields", f"{w}: case_information", list),
                                 f"{w}: case_information.fields", "key"),
            checklist_title=checklist.get("title", "Is the basic information accurate?"),
            checklist_choices=checklist_choices,
            checklist=_choices(_need(checklist, "items", f"{w}: checklist", list),
                               f"{w}: checklist.items", "key"),
            summary_label=data.get("summary", {}).get("label", "Summary"),
            overall_label=data.get("overall", {}).get("label", "Overall grading"),
            overall_grading_label=data.get("overall", {}).get("grading_label", "OVERALL GRADING"),
            overall_reasons_label=data.get("overall", {}).get("reasons_label", "Reasons"),
            actions_title=actions.get("title", "Recommended actions"),
            action_columns=_choices(actions.get("columns", [{"key": "action", "label": "Action"}]),
                                    f"{w}: actions.columns", "key"),
            sections=tuple(sections),
            guidance=tuple(Note(n, text) for n, text in
                           enumerate(_need(guidance, "notes", f"{w}: guidance", list), 1)),
            guidance_places=tuple((place, tuple(numbers)) for place, numbers in
                                  _need(guidance, "shown_at", f"{w}: guidance", dict).items()),
            grade_heading=tuple(data["grades"].get("heading", Template.grade_heading)),
        )
    except TemplateError:
        raise
    except (TypeError, AttributeError) as e:
        raise TemplateError(f"{w}: malformed template ({e})") from None

    _check_guidance(t, w)
    # Keys must be unique across everything an answer row can carry.
    seen: dict[str, str] = {}
    for kind, keys in (
        ("section", [s.key for s in t.sections]),
        ("item", [i.key for i in t.items]),
        ("question", [q.key for q in t.questions]),
    ):
        for k in keys:
            if k == OVERALL:
                raise TemplateError(f"{w}: '{OVERALL}' is reserved for the overall grade")
            if k in seen:
                raise TemplateError(f"{w}: key '{k}' is used twice ({seen[k]} and {kind})")
            seen[k] = kind
    for kind, keys in (("checklist item", [c.value for c in t.checklist]),
                       ("case field", [c.value for c in t.case_fields])):
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise TemplateError(f"{w}: {kind} key(s) used twice: {', '.join(dup)}")
    return t


def _check_guidance(t: Template, where: str) -> None:
    """Each note is text, shown at a place the form has, by a number the list has."""
    if not all(isinstance(n.text, str) and n.text.strip() for n in t.guidance):
        raise TemplateError(f"{where}: guidance.notes should be a list of texts")
    places = set(GUIDANCE_PLACES) | {s.key for s in t.sections}
    for place, numbers in t.guidance_places:
        if place not in places:
            raise TemplateError(f"{where}: guidance.shown_at has '{place}', which is not a "
                                f"place on the form ({', '.join(GUIDANCE_PLACES)} or a "
                                "section's key)")
        wrong = [n for n in numbers if not isinstance(n, int) or not 1 <= n <= len(t.guidance)]
        if wrong:
            raise TemplateError(f"{where}: guidance.shown_at.{place} names note(s) {wrong}; the "
                                f"notes are numbered 1 to {len(t.guidance)}")
    if len(t.grade_heading) != 2:
        raise TemplateError(f"{where}: grades.heading should be two texts (the grade column's "
                            "and the definition column's headings)")


def template_path(name_or_path: str | Path) -> Path:
    """A template file: a name (the working folder's templates/, else ehkit's) or a path to
    a .toml file."""
    p = Path(name_or_path)
    return (p if p.suffix == ".toml" else home.find("templates", f"{name_or_path}.toml")).resolve()


def read_toml(path: Path, what: str = "template") -> dict:
    """Parse a template file; a missing or malformed file is a TemplateError naming it."""
    if not path.exists():
        known = ", ".join(home.names("templates", ".toml"))
        raise TemplateError(f"no {what} at {path} (templates there are: {known})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"{path}: not valid TOML: {e}") from None


def load(name_or_path: str | Path = DEFAULT_TEMPLATE) -> Template:
    """Load a template by name (a file in templates/: :func:`template_path`) or by path."""
    return _load_path(template_path(name_or_path))


@cache
def _load_path(path: Path) -> Template:
    return parse(read_toml(path), path)
