"""The action tracker in the browser (Voila): filter, mark completed, reassign with a reason.

Thin: every read and write goes through :mod:`ehkit.actions`. Everything shown from the
store is escaped before it goes into an HTML widget.
"""

from __future__ import annotations

import datetime as dt
import os
from html import escape
from pathlib import Path

import ipywidgets as w

from .. import actions
from .. import db as store
from ..periods import long_date
from .common import STYLE_CSS, Messages, button, friendly

ALL = ("All", None)
SHOWN = 200  # rows drawn in the table; the filters narrow the rest


def _table(rows: list[dict]) -> str:
    head = ("<tr><th>Due</th><th>State</th><th>EHM</th><th>Audit</th><th>No</th>"
            "<th>Action</th><th>Owner</th><th>Team</th></tr>")
    body = "".join(
        f"<tr class='ehkit-tracker-row'><td>{escape(r['due_date'] or '')}</td>"
        f"<td>{escape(r['state'])}</td><td>{escape(r['ehm_number'])}</td><td>{r['audit_id']}</td>"
        f"<td>{r['number']}</td><td>{escape(r['action'])}</td>"
        f"<td>{escape(r['owner'] or r['by_whom'] or '')}</td><td>{escape(r['team'] or '')}</td></tr>"
        for r in rows[:SHOWN])
    more = f"<p>Showing {SHOWN} of {len(rows)}: narrow the filters.</p>" if len(rows) > SHOWN else ""
    return (f"<p class='ehkit-action-count'>{len(rows)} action(s)</p>"
            f"<table class='ehkit-actions'>{head}{body}</table>{more}")


def _label(r: dict) -> str:
    return (f"Audit {r['audit_id']} action {r['number']} ({r['ehm_number']}, "
            f"{r['state']}): {r['action'][:60]}")


def actions_app(db_path=None, today: dt.date | None = None, *, refresh: bool = True) -> w.Tab:
    """The coordinator's app: the action tracker, and what follows each audit (the worker
    told, the discussion, feedback, 1-1 meeting, letter). ``app.refresh()`` re-reads both."""
    from .feedback import followup_form

    database = store.connect(db_path, must_exist=True)
    letters = Path(os.environ.get("EHKIT_REPORTS_DIR") or "reports") / "letters"
    tracker = tracker_form(database, today, refresh=refresh)
    after = followup_form(database, today, letters, refresh=refresh)
    tab = w.Tab(children=[tracker, after])
    tab.set_title(0, "Action tracker")
    tab.set_title(1, "After the audit")

    def refresh_all():
        tracker.refresh()
        after.refresh()

    tab.refresh = refresh_all
    return tab


def tracker_app(db_path=None, today: dt.date | None = None, *, refresh: bool = True) -> w.VBox:
    """The tracker for the database at ``db_path`` (else $EHKIT_DB); ``today`` decides the
    states (default: the real today). ``app.refresh()`` re-reads the store."""
    return tracker_form(store.connect(db_path, must_exist=True), today, refresh=refresh)


def tracker_form(db, today: dt.date | None = None, *, refresh: bool = True) -> w.VBox:
    """The tracker widget for an open store."""
    on = today or dt.date.today()
    style = {"description_width": "7em"}
    owner = w.Dropdown(options=[ALL], description="Owner", style=style)
    team = w.Dropdown(options=[ALL], description="Team", style=style)
    agency = w.Dropdown(options=[ALL], description="Agency", style=style)
    month = w.Dropdown(options=[ALL], description="Due month", style=style)
    state = w.Dropdown(options=[ALL, *[(s.capitalize(), s) for s in actions.STATES]],
                       description="State", style=style)
    for name, widget in (("owner", owner), ("team", team), ("agency", agency),
                         ("month", month), ("state", state)):
        widget.add_class(f"ehkit-filter-{name}")
    table = w.HTML()
    pick = w.Dropdown(description="Action", style=style, layout=w.Layout(width="60em"))
    pick.add_class("ehkit-pick")
    detail = w.HTML()
    done_on = w.DatePicker(description="Completed on", value=on, style=style)
    done_on.add_class("ehkit-completed-on")
    note = w.Textarea(description="What was done", style=style, layout=w.Layout(width="40em"))
    note.add_class("ehkit-completion-note")
    complete = button(description="Mark completed", button_style="success")
    complete.add_class("ehkit-complete")
    new_owner = w.Dropdown(description="New owner", style=style)
    new_owner.add_class("ehkit-new-owner")
    reason = w.Text(description="Reason", style=style, layout=w.Layout(width="40em"))
    reason.add_class("ehkit-reason")
    reassign = button(description="Reassign")
    reassign.add_class("ehkit-reassign")
    messages = Messages()
    shown: dict = {}  # the action as the detail shows it: its writes pass back its version

    def load_choices():
        choices = actions.filter_choices(db)
        for widget, key in ((owner, "owners"), (team, "teams"), (agency, "agencies"),
                            (month, "months")):
            widget.options = [ALL, *choices[key]]
        new_owner.options = actions.practitioner_choices(db)
        show_rows()

    def show_rows(*_):
        rows = actions.tracker(db, on, owner_id=owner.value, team=team.value,
                               agency_id=agency.value, due_month=month.value,
                               states=state.value)
        table.value = _table(rows)
        keep = pick.value
        pick.options = [(_label(r), r["id"]) for r in rows if r["state"] != "completed"]
        if keep in [v for _, v in pick.options]:
            pick.value = keep
        show()

    def show(*_):
        shown.clear()
        if pick.value is None:
            detail.value = "<p>No open action chosen.</p>"
            return
        r = actions.get(db, pick.value, on)
        shown.update(r)
        detail.value = (
            f"<p class='ehkit-action-detail'><b>{escape(r['action'])}</b><br>"
            f"Audit {r['audit_id']} of {escape(r['audit_date'])} for {escape(r['ehm_number'])}; "
            f"due {escape(r['due_date'] or 'no date')} ({escape(r['state'])}); owner "
            f"{escape(r['owner'] or r['by_whom'] or 'none')}.</p>")

    def refused(e):
        """A person's error, said plainly; when the action changed meanwhile, show it anew."""
        if isinstance(e, actions.StaleRecord):
            show_rows()
        messages.blocked(str(e))

    @friendly(messages, refused)
    def on_complete(_):
        done = pick.value
        if done is None:
            messages.blocked("Choose an action first.")
            return
        actions.complete(db, done, done_on.value, note.value, today=on,
                         expected_version=shown.get("version"))
        messages.ok(f"Action {done} marked completed on {done_on.value}.")
        note.value = ""
        show_rows()

    @friendly(messages, refused)
    def on_reassign(_):
        moved = pick.value
        if moved is None:
            messages.blocked("Choose an action first.")
            return
        actions.reassign(db, moved, new_owner.value, reason.value,
                         expected_version=shown.get("version"))
        messages.ok(f"Action {moved} reassigned to {new_owner.label}.")
        reason.value = ""
        show_rows()

    for widget in (owner, team, agency, month, state):
        widget.observe(show_rows, names="value")
    pick.observe(show, names="value")
    complete.on_click(on_complete)
    reassign.on_click(on_reassign)
    box = w.VBox([
        w.HTML(STYLE_CSS + f"<h2>Action tracker</h2><p>States on {long_date(on)}: overdue = "
               "due before that day and not completed; due this week = due within seven "
               "days.</p>"),
        w.HBox([w.VBox([owner, team, agency]), w.VBox([month, state])]),
        table,
        w.HTML("<h3>Update an action</h3>"), pick, detail,
        w.HBox([done_on, note, complete]),
        w.HBox([new_owner, reason, reassign]),
        messages.widget,
    ])
    box.add_class("ehkit-form")
    box.add_class("ehkit-tracker")
    box.refresh = load_choices
    if refresh:
        load_choices()
    return box
