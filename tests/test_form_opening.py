"""Opening the audit form is light work for its kernel, the Voila server and the browser
(issue 19): the auditor's notebook run in a real kernel, as Voila runs it, with every message
the kernel sends counted; and the form's widgets, fewer than before for the same form. Only
synthetic people."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ipywidgets as w
from jupyter_client.manager import start_new_kernel
from voila_harness import copy_db

from ehkit import home
from ehkit import template as templates

TPL = templates.load()
# The form as it opens: 211 widget models (315 before issue 19): a budget, with room for a
# field or two more, not an exact count.
WIDGET_BUDGET = 225


PROBE = ("import sys, json; print(json.dumps({m: m in sys.modules for m in "
         "('numpy', 'pandas', 'ehkit.forms.audit')}))")


def run_notebook(notebook, db) -> tuple[dict[str, int], dict]:
    """Run ``notebook``'s cells in a fresh kernel (EHKIT_DB=db), as Voila does; the messages
    it sent by type, and what it had imported by then (:data:`PROBE`, run after them)."""
    import nbformat

    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells]
    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "EHKIT_DB": str(db)})
    sent: dict[str, int] = {}
    try:
        for code in [*cells, PROBE]:
            msg_id, said = kc.execute(code), []
            while True:
                m = kc.get_iopub_msg(timeout=120)
                if m["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = m["msg_type"]
                if kind == "error":
                    raise AssertionError("\n".join(m["content"]["traceback"]))
                if kind == "status" and m["content"]["execution_state"] == "idle":
                    break
                if kind == "stream":
                    said.append(m["content"]["text"])
                if code is not PROBE:
                    sent[kind] = sent.get(kind, 0) + 1
    finally:
        km.shutdown_kernel(now=True)
    return sent, json.loads("".join(said))


def test_opening_the_form_sends_each_widget_once_and_imports_neither_numpy_nor_pandas(
        demo_db_path, tmp_path):
    """Each widget's hooks (CSS classes, a screen reader's name) go in its opening message:
    set afterwards each was an update of its own (301 of them before issue 19). And the
    kernel that opens the form has not imported numpy or pandas (sqlite-utils wanted them
    only for a type map)."""
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    sent, imported = run_notebook(home.find("notebooks", "audit.ipynb"), db)
    assert imported == {"numpy": False, "pandas": False, "ehkit.forms.audit": True}
    assert 0 < sent["comm_open"] <= WIDGET_BUDGET
    # What is left is the lists filled in (options, the found audits) and what they show.
    assert sent.get("comm_msg", 0) < 30, sent


def test_numpy_still_serves_the_code_that_needs_it_after_ehkit_is_imported():
    """sqlite-utils imported without numpy; numpy imported afterwards is the real one, and
    ehkit's numpy code (the draw) works with it."""
    code = ("import sys, ehkit, sqlite_utils.db as d\n"
            "assert 'numpy' not in sys.modules and d.np is None\n"
            "import numpy\n"
            "from ehkit import sampling\n"
            "print(numpy.arange(3).sum(), sampling.np is numpy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "True"]


def test_the_form_is_fewer_widgets_and_each_question_is_its_toggles_own_label(demo_db_path,
                                                                             tmp_path):
    from ehkit.forms.audit import AuditForm

    before = set(w.widgets.widget._instances)
    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    form.refresh()
    made = [x for k, x in w.widgets.widget._instances.items() if k not in before]
    assert 0 < len(made) <= WIDGET_BUDGET
    # A question shows its words as the toggle's label (tied to it, read by a screen
    # reader), in a row of its own: no label widget beside it, no box around the two.
    boxes = [x for x in made if isinstance(x, w.Box)]
    for q in TPL.questions:
        toggle = form.responses[q.key]
        assert toggle.description == q.text
        assert "ehkit-question" in toggle._dom_classes
        assert "ehkit-sr-label" not in toggle._dom_classes
        assert not any(toggle in b.children for b in boxes if b is not form.widget)
    # Shown, the form is its view; its text repr is short, not the whole tree's written out.
    shown = form._repr_mimebundle_()
    assert shown["application/vnd.jupyter.widget-view+json"]["model_id"] == form.widget.model_id
    assert len(repr(form.widget)) < 60 and "HTML(" not in shown["text/plain"]
    # A read-only case field is one widget: its label, and its value in .ehkit-case-<key>.
    for key, row in form.case_view.readonly.items():
        label = next(f.label for f in TPL.case_fields if f.value == key)
        assert label in row.value and f'ehkit-case-{key}"' in row.value
        assert row in form.case_view.parts


def test_free_text_stays_escaped_in_a_read_only_field_and_a_question(demo_db_path, tmp_path):
    from ehkit.forms.audit_views import case_row

    shown = case_row("lead_professional", "Lead <b>professional</b>", "&lt;i&gt;")
    assert "Lead &lt;b&gt;professional&lt;/b&gt;" in shown and "<i>" not in shown
