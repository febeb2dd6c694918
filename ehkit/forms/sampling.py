"""The coordinator's monthly audit list in the browser (Voila): draw, request, export.

Thin: every read and write goes through :mod:`ehkit.sampling`. Everything shown from the
store is escaped before it goes into an HTML widget.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from html import escape
from pathlib import Path

import ipywidgets as w

from .. import db as store
from .. import home, sampling
from ..dates import uk
from .common import STYLE_CSS, Messages, button, friendly, html_widget, tag

MIME = {".csv": "text/csv",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _months(today: dt.date, back: int = 12) -> list[tuple[str, str]]:
    """The months a list can be drawn for: those that have ended, the one just ended first,
    then this month, marked (it can be drawn early, with a warning)."""
    first = today.replace(day=1)
    ended = [sampling.months_before(first, n) for n in range(1, back + 1)]
    return ([(d.strftime("%B %Y"), sampling.month_of(d)) for d in ended]
            + [(f"{first:%B %Y} (not ended yet)", sampling.month_of(first))])


def _name(month: str) -> str:
    return dt.date.fromisoformat(f"{month}-01").strftime("%B %Y")


def _early(month: str, today: dt.date) -> str:
    """The warning shown when the chosen month has not ended on ``today``."""
    if month != sampling.month_of(today):
        return ""
    return ("<p class='ehkit-msg-info ehkit-month-warning' role='alert'>&#9888; "
            f"<b>{today:%B %Y} has not ended.</b> A list drawn now misses the cases that close "
            "later this month, and drift is judged on a month end still to come: draw it "
            "early only if you must.</p>")


def _table(rows: list[dict]) -> str:
    head = ("<tr><th>Reason</th><th>EHM</th><th>Lead agency</th><th>Lead professional</th>"
            "<th>Auditor</th><th>Due</th><th>State</th></tr>")
    body = "".join(
        f"<tr class='ehkit-selection-row'><td>{escape(r['reason_label'])}</td>"
        f"<td>{escape(r['ehm_number'])}</td><td>{escape(r['lead_agency'])}</td>"
        f"<td>{escape(r['lead_professional'] or '')}</td>"
        f"<td>{escape(r['auditor'] or 'nobody without a conflict: assign by hand')}</td>"
        f"<td>{uk(r['due_date'])}</td><td>{escape(r['state'])}</td></tr>"
        for r in rows)
    return (f"<p class='ehkit-selection-count'>{len(rows)} case(s)</p>"
            f"<table class='ehkit-selection'>{head}{body}</table>")


def _about(d: dict | None) -> str:
    if d is None:
        return "<p class='ehkit-draw-state'>Not drawn yet.</p>"
    return ("<p class='ehkit-draw-state'>" + escape(sampling.describe(d)).replace("\n", "<br>")
            + "</p>")


def _download(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return (f"<a class='ehkit-download' download='{escape(path.name)}' "
            f"href='data:{mime};base64,{data}'>Download {escape(path.name)}</a>")


def sampling_app(db_path=None, today: dt.date | None = None, *, refresh: bool = True) -> w.VBox:
    """The monthly list for the database at ``db_path`` (else $EHKIT_DB)."""
    return sampling_form(store.connect(db_path, must_exist=True), today, refresh=refresh)


def sampling_form(db, today: dt.date | None = None, *, refresh: bool = True,
                  out_dir: str | os.PathLike | None = None) -> w.VBox:
    """The widget for an open store. ``today`` is the draw date (default: the real today)."""
    on = today or dt.date.today()
    out = Path(out_dir) / "selections" if out_dir else home.reports_dir("selections")
    style = {"description_width": "9em"}
    month = tag(w.Dropdown(options=_months(on), value=_months(on)[0][1],
                           description="Month", style=style), "month")
    about = html_widget()
    table = html_widget()
    seed = tag(w.Text(description="Seed (optional)", placeholder="blank: a new one, stored",
                      style=style), "seed")
    draw = tag(button(description="Draw the list", button_style="primary"), "draw")
    redraw_reason = tag(w.Text(description="Why draw again", style=style,
                               layout=w.Layout(width="40em")), "redraw-reason")
    redraw = tag(button(description="Draw again"), "redraw")
    ehm = tag(w.Text(description="EHM number", style=style), "request-ehm")
    why = tag(w.Textarea(description="Why the audit is asked for", style=style,
                         layout=w.Layout(width="40em")), "request-reason")
    add = tag(button(description="Add request"), "add-request")
    csv_button = tag(button(description="Export CSV"), "export-csv")
    xlsx_button = tag(button(description="Export Excel"), "export-xlsx")
    link = tag(html_widget(), "export-link")
    messages = Messages()

    def reader() -> None:
        """The list names every case drawn: the coordinator's, and theirs who see every case
        (NotAllowed naming them else). ehkit.sampling's readers do not ask yet: this form
        does, before it reads the list or exports it."""
        sampling.require_list_reader(db)

    @friendly(messages)
    def show(*_):
        reader()
        d = sampling.current_draw(db, month.value)
        about.value = _early(month.value, on) + _about(d)
        table.value = _table(sampling.selection(db, month.value, as_of=on)) if d else ""
        draw.disabled = d is not None
        redraw.disabled = d is None
        link.value = ""

    @friendly(messages)
    def on_draw(_):
        text = seed.value.strip()
        if text and not text.isdigit():
            messages.blocked("The seed is a whole number, or blank for a new one.")
            return
        d = sampling.draw(db, month.value, seed=int(text) if text else None, on=on)
        messages.ok(("Stored list shown" if d["stored"] else "Drawn")
                    + f" for {_name(month.value)} (seed {d['seed']}).")
        show()

    @friendly(messages)
    def on_redraw(_):
        d = sampling.draw(db, month.value, redraw_reason=redraw_reason.value,
                          seed=int(seed.value) if seed.value.strip().isdigit() else None, on=on)
        messages.ok(f"Drawn again for {_name(month.value)} (seed {d['seed']}); the earlier list is "
                    "kept with the reason.")
        redraw_reason.value = ""
        show()

    @friendly(messages)
    def on_add(_):
        r = sampling.request(db, ehm.value.strip(), why.value, month=month.value, on=on)
        messages.ok(sampling.describe_request(r))
        ehm.value = why.value = ""
        show()

    def exporter(suffix: str):
        @friendly(messages)
        def run(_):
            reader()
            path = sampling.export(db, month.value, out / f"audit-list-{month.value}{suffix}",
                                   as_of=on)
            link.value = _download(path)
            messages.ok(f"Exported to {path}.")
        return run

    month.observe(show, names="value")
    draw.on_click(on_draw)
    redraw.on_click(on_redraw)
    add.on_click(on_add)
    csv_button.on_click(exporter(".csv"))
    xlsx_button.on_click(exporter(".xlsx"))
    box = w.VBox([
        html_widget(STYLE_CSS + "<h2>Monthly audit list</h2><p>Random council, partner and closed "
                    "cases, drifting cases (the longest without a review first) and lead "
                    "professionals' requests, each with an auditor who does not manage the case's "
                    "team and a due date.</p>"),
        month, about, w.HBox([seed, draw]), w.HBox([redraw_reason, redraw]),
        table,
        html_widget("<h3>A lead professional asks for an audit</h3>"),
        w.HBox([ehm, why, add]),
        html_widget("<h3>Export</h3>"), w.HBox([csv_button, xlsx_button]), link,
        messages.widget,
    ])
    box.add_class("ehkit-form")
    box.add_class("ehkit-sampling")
    box.refresh = show
    box.widgets = {"month": month, "about": about, "table": table, "seed": seed, "draw": draw,
                   "redraw_reason": redraw_reason, "redraw": redraw, "ehm": ehm, "why": why,
                   "add": add, "csv": csv_button, "xlsx": xlsx_button, "link": link,
                   "messages": messages.widget}
    if refresh:
        show()
    return box
