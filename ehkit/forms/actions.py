"""The action tracker in the browser (Voila): filter, mark completed, reassign with a reason.

Thin: every read and write goes through :mod:`ehkit.actions`. Everything shown from the
store is escaped before it goes into an HTML widget.
"""

from __future__ import annotations

import datetime as dt
from html import escape

import ipywidgets as w

from .. import actions, home
from .. import db as store
from ..dates import uk
from .common import STYLE_CSS, Messages, button, friendly, html_widget, tag, untitled

ALL = ("All", "")  # not None: a dropdown whose value is None shows blank in the browser
ATTENTION = "attention"
STATE_CHOICES = [("Needs attention (overdue, then due this week)", ATTENTION), ("All", ""),
                 *[(s.capitalize(), s) for s in actions.STATES]]
SORTS = {"Due date": "due_date", "State": "state", "EHM number": "ehm_number",
         "Owner": "owner", "Team": "team", "Audit": "audit_id"}
STATE_ORDER = {s: i for i, s in enumerate(("overdue", "due this week", "open", "completed"))}
PAGE = 25  # rows a page shows


def _owner(r: dict) -> str:
    return r["owner"] or r["by_whom"] or ""


def _sort_key(column: str):
    """Rows in ``column`` order; ties (and blanks, last) in due-date order."""
    def key(r):
        v = STATE_ORDER[r["state"]] if column == "state" else \
            _owner(r) if column == "owner" else r[column]
        return (v in (None, ""), "" if v is None else v, r["due_date"] or "9999",
                r["audit_id"], r["number"])
    return key


def _table(rows: list[dict], page: int) -> str:
    head = ("<tr><th scope='col'>Due</th><th scope='col'>State</th><th scope='col'>EHM</th>"
            "<th scope='col'>Audit</th><th scope='col'>No</th><th scope='col'>Action</th>"
            "<th scope='col'>Owner</th><th scope='col'>Team</th></tr>")
    body = "".join(
        f"<tr class='ehkit-tracker-row'><td>{uk(r['due_date'], 'no date')}</td>"
        f"<td>{escape(r['state'])}</td><td>{escape(r['ehm_number'])}</td><td>{r['audit_id']}</td>"
        f"<td>{r['number']}</td><td>{escape(r['action'])}</td>"
        f"<td>{escape(_owner(r))}</td><td>{escape(r['team'] or '')}</td></tr>"
        for r in rows[page * PAGE:(page + 1) * PAGE])
    return (f"<table class='ehkit-actions'>{head}{body}</table>" if rows
            else "<p>No action matches the filters.</p>")


def _months(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Due months (2026-11) as people name them (November 2026)."""
    return [(dt.date.fromisoformat(f"{m}-01").strftime("%B %Y"), m) for _, m in choices]


def _pages(rows: list[dict]) -> int:
    return max(1, -(-len(rows) // PAGE))


def _label(r: dict) -> str:
    return (f"Audit {r['audit_id']} action {r['number']} ({r['ehm_number']}, {r['state']}, "
            f"due {uk(r['due_date'], 'no date')}): {r['action']}")


def _named(r: dict) -> str:
    """The action as a message names it: by its audit and number, never the store's id."""
    return f"Action {r['number']} of audit {r['audit_id']} ({r['ehm_number']})"


def actions_app(db_path=None, today: dt.date | None = None, *, refresh: bool = True) -> w.Tab:
    """The coordinator's app: the action tracker, and what follows each audit (the worker
    told, the discussion, feedback, 1-1 meeting, letter). ``app.refresh()`` re-reads both."""
    from .feedback import followup_form

    database = store.connect(db_path, must_exist=True)
    letters = home.reports_dir("letters")
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
    """The tracker widget for an open store: it opens on what needs attention."""
    on = today or dt.date.today()
    style = {"description_width": "initial"}
    owner = w.Dropdown(options=[ALL], description="Owner", style=style)
    team = w.Dropdown(options=[ALL], description="Team", style=style)
    agency = w.Dropdown(options=[ALL], description="Agency", style=style)
    month = w.Dropdown(options=[ALL], description="Due month", style=style)
    state = w.Dropdown(options=STATE_CHOICES, value=ATTENTION, description="State", style=style,
                       layout=w.Layout(width="30em"))
    sort = w.Dropdown(options=list(SORTS.items()), description="Sort by", style=style)
    order = untitled(w.ToggleButtons, options=[("Ascending", False), ("Descending", True)],
                     description="Order", style=style)
    for name, widget in (("owner", owner), ("team", team), ("agency", agency),
                         ("month", month), ("state", state), ("sort", sort), ("order", order)):
        widget.add_class(f"ehkit-filter-{name}")
    count = tag(html_widget(), "action-count")
    table = tag(html_widget(), "tracker-table")
    previous = tag(button(description="Previous page"), "previous-page")
    following = tag(button(description="Next page"), "next-page")
    page_of = tag(html_widget(), "page-of")
    pick = w.Dropdown(description="Action", style=style, layout=w.Layout(width="100%"))
    pick.add_class("ehkit-pick")
    detail = html_widget()
    done_on = untitled(w.DatePicker, description="Completed on", value=on, style=style)
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
    listed: list = []  # the filtered, sorted rows; the page shows PAGE of them
    at = {"page": 0}

    @friendly(messages)  # one who may not read the tracker is told which role may
    def load_choices():
        choices = actions.filter_choices(db)
        for widget, key in ((owner, "owners"), (team, "teams"), (agency, "agencies"),
                            (month, "months")):
            keep = widget.value
            widget.options = [ALL, *(_months(choices[key]) if widget is month else choices[key])]
            widget.value = keep if keep in [v for _, v in widget.options] else ""
        new_owner.options = [("Choose the new owner", ""), *actions.practitioner_choices(db)]
        new_owner.value = ""  # options alone leave nothing selected: the browser shows blank
        show_rows()

    @friendly(messages)
    def show_rows(*_):
        wanted = (actions.NEEDS_ATTENTION if state.value == ATTENTION
                  else state.value or None)
        rows = actions.tracker_for(db, on, owner_id=owner.value or None, team=team.value or None,
                               agency_id=agency.value or None, due_month=month.value or None,
                               states=wanted)
        rows.sort(key=_sort_key(sort.value))
        if order.value:
            rows.reverse()
        listed[:] = rows
        at["page"] = 0
        show_page()

    def show_page(*_):
        pages, page = _pages(listed), at["page"]
        first = page * PAGE
        count.value = (f"<p class='ehkit-action-count'>{len(listed)} action(s)"
                       + (f": showing {first + 1} to {min(first + PAGE, len(listed))}"
                          if listed else "") + "</p>")
        table.value = _table(listed, page)
        page_of.value = f"Page {page + 1} of {pages}"
        previous.disabled, following.disabled = page == 0, page + 1 >= pages
        keep = pick.value
        pick.options = [("Choose an action on this page", ""), *[
            (_label(r), r["id"]) for r in listed[first:first + PAGE]
            if r["state"] != "completed"]]
        pick.value = keep if keep in [v for _, v in pick.options] else ""
        show()

    def turn(step: int):
        def go(_):
            at["page"] = min(max(at["page"] + step, 0), _pages(listed) - 1)
            show_page()
        return go

    @friendly(messages)
    def show(*_):
        shown.clear()
        if not pick.value:
            detail.value = "<p>No open action chosen.</p>"
            return
        r = actions.get(db, pick.value, on)
        shown.update(r)
        detail.value = (
            f"<p class='ehkit-action-detail'><b>{escape(r['action'])}</b><br>"
            f"Audit {r['audit_id']} of {uk(r['audit_date'])} for {escape(r['ehm_number'])}; "
            f"due {uk(r['due_date'], 'no date')} ({escape(r['state'])}); owner "
            f"{escape(_owner(r) or 'none')}.</p>")

    def refused(e):
        """A person's error, said plainly; when the action changed meanwhile, show it anew."""
        if isinstance(e, actions.StaleRecord):
            show_rows()
            messages.blocked(f"Nothing was saved: this action was changed by {e.who} at "
                             f"{e.at} since you opened it. It is shown again as it now is: make "
                             "your change again if it is still needed.")
            return
        messages.blocked(f"Not saved: {e}.")

    @friendly(messages, refused)
    def on_complete(_):
        if not shown:
            messages.blocked("Choose an action first.")
            return
        actions.complete(db, shown["id"], done_on.value, note.value, today=on,
                         expected_version=shown.get("version"))
        messages.ok(f"{_named(shown)} marked completed on {uk(done_on.value)}.")
        note.value = ""
        show_rows()

    @friendly(messages, refused)
    def on_reassign(_):
        if not shown:
            messages.blocked("Choose an action first.")
            return
        actions.reassign(db, shown["id"], new_owner.value or None, reason.value,
                         expected_version=shown.get("version"))
        messages.ok(f"{_named(shown)} reassigned to {new_owner.label}.")
        reason.value = ""
        show_rows()

    for widget in (owner, team, agency, month, state, sort, order):
        widget.observe(show_rows, names="value")
    pick.observe(show, names="value")
    previous.on_click(turn(-1))
    following.on_click(turn(1))
    complete.on_click(on_complete)
    reassign.on_click(on_reassign)
    box = w.VBox([
        html_widget(STYLE_CSS + f"<h2>Action tracker</h2><p>States on {uk(on)}: overdue = "
                    "due before that day and not completed; due this week = due within seven "
                    "days. It opens on the actions that need attention: overdue first, then due "
                    "this week.</p>"),
        w.HBox([w.VBox([state, owner, team]), w.VBox([agency, month]), w.VBox([sort, order])]),
        count, table, w.HBox([previous, page_of, following]),
        html_widget("<h3>Update an action</h3>"), pick, detail,
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
