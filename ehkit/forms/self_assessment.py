"""The practitioner self-assessment checklist in the browser (Voila).

Thin: the checklist comes from :func:`ehkit.self_assessment.load` and is saved with
:func:`ehkit.self_assessment.record`.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as w

from .. import actions, episodes
from .. import db as store
from .. import self_assessment as sa
from ..dates import uk
from .common import STYLE_CSS, Messages, button, esc, friendly, html_widget, tag, untitled

STYLE = {"description_width": "12em"}


def self_assessment_app(db_path=None, today: dt.date | None = None, *,
                        refresh: bool = True) -> w.VBox:
    """The checklist for the database at ``db_path`` (else $EHKIT_DB)."""
    return self_assessment_form(store.connect(db_path, must_exist=True), today, refresh=refresh)


def self_assessment_form(db, today: dt.date | None = None, checklist: str = sa.DEFAULT, *,
                         refresh: bool = True) -> w.VBox:
    c = sa.load(checklist)
    ehm = tag(w.Text(description="Child's EHM number", style=STYLE), "ehm")
    practitioner = tag(w.Dropdown(description="Practitioner", style=STYLE), "practitioner")
    completed_on = tag(untitled(w.DatePicker, description="Date", value=today or dt.date.today(),
                                style=STYLE), "completed-on")
    boxes: dict[str, w.Checkbox] = {}
    parts: list[w.Widget] = []
    for group, items in c.groups:
        parts.append(html_widget(f"<h3>{esc(group)}</h3>"))
        for i in items:
            boxes[i.key] = tag(w.Checkbox(description=i.text, indent=False,
                                          layout=w.Layout(width="60em")), "item", f"item-{i.key}")
            parts.append(boxes[i.key])
    notes = tag(w.Textarea(description="Notes", style=STYLE, layout=w.Layout(width="46em")),
                "notes")
    save = tag(button(description="Save self-assessment", button_style="primary"), "save")
    messages = Messages()

    @friendly(messages)
    def on_save(_):
        episode = episodes.find_episode(db, ehm.value, completed_on.value)
        if episode is None:
            messages.blocked(f"No episode with EHM number {ehm.value.strip() or '(blank)'} had "
                             f"begun by {uk(completed_on.value)}: check the number.")
            return
        if not practitioner.value:
            messages.blocked("Not saved: choose the practitioner who completed it.")
            return
        sid = sa.record(db, episode, practitioner.value, completed_on.value,
                        {k: b.value for k, b in boxes.items()}, notes.value, today=today)
        unmet = sum(not b.value for b in boxes.values())
        messages.ok(f"Saved self-assessment number {sid} for {ehm.value.strip()} "
                    f"({len(boxes) - unmet} of {len(boxes)} met).")
        for b in boxes.values():
            b.value = False
        ehm.value = notes.value = ""

    save.on_click(on_save)
    box = w.VBox([html_widget(STYLE_CSS + f"<h2>{esc(c.title)}</h2><p>{esc(c.intro)}</p>"),
                  ehm, practitioner, completed_on, *parts, notes, save, messages.widget])

    def load_choices():
        practitioner.options = [("Choose the practitioner", ""),
                                *actions.practitioner_choices(db)]
        practitioner.value = ""  # options alone leave nothing selected: it would show blank

    box.refresh = load_choices
    if refresh:
        load_choices()
    return tag(box, "form")
