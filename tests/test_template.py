"""The audit tool as data: the shipped template matches the council's document, and a
malformed template fails with a message naming the file and the place."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from ehkit import template as templates

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "early-help-audit-tool.txt"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_darlington_template_has_the_whole_tool():
    t = templates.load("darlington")
    assert [s.number for s in t.sections] == list(range(1, 10))
    assert [s.key for s in t.graded_sections] == [
        "pre_eha", "assessment", "planning", "review", "voice_of_child", "multi_agency",
        "impact", "management_oversight"]
    learning = t.section("learning_overall")
    assert not learning.graded and learning.holds_overall
    assert [i.key for i in t.section("pre_eha").items] == ["1.1", "1.2"]
    assert len(t.checklist) == 10
    assert [g.label for g in t.grades] == ["Outstanding", "Good", "Requires Improvement",
                                           "Inadequate"]
    assert [c.value for c in t.action_columns] == [
        "number", "action", "by_whom", "due_date", "discussed_date", "agreed_by",
        "completed_date"]
    assert all(item.questions for s in t.graded_sections for item in s.items)


@pytest.mark.skipif(not SEED.exists(), reason="the council's document is not beside the repo")
def test_prompts_and_grade_definitions_are_verbatim_from_the_document():
    document = _squash(SEED.read_text(encoding="utf-8"))
    t = templates.load("darlington")
    for item in t.items:
        assert _squash(item.prompt) in document, item.key
        for q in item.questions:
            assert _squash(q.text) in _squash(item.prompt), q.key
    for g in t.grades:
        assert _squash(g.definition) in document, g.label
    for c in t.checklist:
        assert c.label in document


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "council.toml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


MINIMAL = """
key = "northshire"
title = "Northshire Family Help Case Review"
[grades]
scale = [
  { value = 1, label = "Strong", definition = "Strong practice" },
  { value = 2, label = "Adequate", definition = "Adequate practice" },
  { value = 3, label = "Weak", definition = "Weak practice" },
]
acceptable = [1]
[rules]
overall_limit = "worst"
inadequate_section_grade = 3
overall_cap_grade = 3
actions_required_from_grade = 3
[case_information]
fields = [{ key = "audit_date", label = "Date" }]
[checklist]
choices = [{ value = "accurate", label = "Right" }, { value = "not_accurate", label = "Wrong" }]
items = [{ key = "address", label = "Address" }]
[[sections]]
key = "plan"
number = 1
title = "The plan"
graded = true
  [[sections.items]]
  key = "p1"
  prompt = "Is there a plan?"
  questions = [{ key = "p1a", text = "Is there a plan?" }]
[[sections]]
key = "child"
number = 2
title = "The child's experience"
graded = true
  [[sections.items]]
  key = "c1"
  prompt = "Is the child safer?"
"""


def test_a_second_council_template_loads_with_its_own_sections(tmp_path):
    t = templates.load(_write(tmp_path, MINIMAL))
    assert t.key == "northshire"
    assert [s.key for s in t.graded_sections] == ["plan", "child"]
    assert t.grade_values == (1, 2, 3) and t.acceptable == (1,)
    assert t.answer_keys() == {"plan", "child", "p1", "c1", "p1a"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.replace('key = "c1"', 'key = "p1"'), "key 'p1' is used twice"),
    (lambda s: s.replace('value = 3, label = "Weak"', 'value = 7, label = "Weak"'),
     "grades.scale values should be 1..N"),
    (lambda s: s.replace('  prompt = "Is the child safer?"\n', ""),
     "section 'child' items[0]: missing 'prompt'"),
    (lambda s: s.replace('overall_limit = "worst"', 'overall_limit = "mean"'),
     "rules.overall_limit"),
    (lambda s: s.replace("[[sections]]\nkey = \"child\"", "[[sections]]\nkey = 'child'\n[x"),
     "not valid TOML"),
])
def test_a_malformed_template_names_the_file_and_the_problem(tmp_path, change, message):
    path = _write(tmp_path, change(textwrap.dedent(MINIMAL)))
    with pytest.raises(templates.TemplateError) as e:
        templates.load(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_an_unknown_template_name_lists_the_shipped_ones():
    with pytest.raises(templates.TemplateError, match="darlington"):
        templates.load("nowhere")
