""""Saved audits" on the audit form: find any saved audit the person may open, however old,
and open it.

Search by audit number, EHM number (any case), auditor, status or audit date (from/to); the
audits found come a page at a time (:data:`ehkit.audits.PAGE_SIZE`), most recently changed
first (the person's own drafts before them), each as a button that says which audit it
opens; the panel says which audits the person is seeing ("your audits and your list's
cases"). The search, and who may find what, is :func:`ehkit.audits.find`; this panel only
asks it and shows the answer.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_string import TextStyle

from .. import audits
from ..dates import uk
from .audit_views import Guard
from .common import PLAIN, TOGGLE_STYLE, button, esc, hooks, html_widget, untitled

# "Anyone" is "" not None: a drop-down whose value is None shows blank in the browser.
ANYONE, ANY = ("Anyone", ""), ("Any status", "")
# Shared, as common.py shares them: fewer models for the browser to build.
TEXT_WIDE, WIDE = TextStyle(description_width="initial"), DescriptionStyle(
    description_width="initial")
ROW, FIELD = w.Layout(flex_flow="row wrap"), w.Layout(width="19em")
# The audits found, one under another, each button as wide as its words.
FOUND_CSS = """<style>
.ehkit-form .ehkit-found > div { display: flex; flex-direction: column;
  align-items: flex-start; }
.ehkit-form .ehkit-found .widget-toggle-button { width: auto; text-align: left; margin: 1px 0; }
</style>"""


def found_label(r: dict) -> str:
    """What a found audit's button says (and a screen reader reads)."""
    return (f"Open no. {r['id']}: {audits.STATUS_LABELS[r['status']]} - {r['ehm_number']} - "
            f"audited {uk(r['audit_date'])} by {r['auditor1']}")


class AuditFinder:
    """The "Saved audits" panel; ``open_audit(number)`` is called when a found one is pressed
    and ``guard`` wraps every button (``common.friendly``)."""

    def __init__(self, db, open_audit: Callable[[int], None], guard: Guard):
        self.db = db
        self.page = 1
        self.number = w.Text(description="Audit no.", placeholder="e.g. 12", style=TEXT_WIDE,
                             layout=FIELD, **hooks("find-number"))
        self.ehm = w.Text(description="EHM number", placeholder="e.g. EHM101385",
                          style=TEXT_WIDE, layout=FIELD, **hooks("find-ehm"))
        self.auditor = w.Dropdown(description="Auditor", options=[ANYONE], style=WIDE,
                                  layout=FIELD, **hooks("find-auditor"))
        self.status = w.Dropdown(description="Status", style=WIDE,
                                 options=[ANY, *((label, key) for key, label
                                                 in audits.STATUS_LABELS.items())],
                                 layout=FIELD, **hooks("find-status"))
        self.audited_from = untitled(w.DatePicker, description="Audited from", style=WIDE,
                                     layout=PLAIN, **hooks("find-from"))
        self.audited_to = untitled(w.DatePicker, description="Audited to", style=WIDE,
                                   layout=PLAIN, **hooks("find-to"))
        self.find = button(description="Find", icon="search", **hooks("find"))
        self.clear = button(description="Show all", **hooks("find-clear"))
        self.new = button(description="New audit", icon="file", **hooks("new"))
        self.refresh = button(description="Refresh lists", icon="refresh", **hooks("refresh"))
        self.said = html_widget("", **hooks("found-said"))
        # A page of found audits: one button each (one model for them all), pressed to open.
        self._open = guard(lambda c: self._pressed(c.new, open_audit))
        self.results = self._buttons([])
        self.found = w.Box([self.results], layout=PLAIN)
        self.previous = button(description="Previous page", icon="arrow-left",
                               **hooks("found-previous"))
        self.next = button(description="Next page", icon="arrow-right", **hooks("found-next"))
        self.find.on_click(guard(lambda _b: self.search(1)))
        self.clear.on_click(guard(lambda _b: self.show_all()))
        self.previous.on_click(guard(lambda _b: self.search(self.page - 1)))
        self.next.on_click(guard(lambda _b: self.search(self.page + 1)))
        self.parts = [
            html_widget(FOUND_CSS + "<h2>Saved audits</h2><p>Find an audit by any of these "
                        "(leave the rest blank), then press it to open it.</p>"),
            w.HBox([self.number, self.ehm, self.auditor, self.status], layout=ROW),
            w.HBox([self.audited_from, self.audited_to, self.find, self.clear], layout=ROW),
            self.said, self.found,
            w.HBox([self.previous, self.next, self.new, self.refresh], layout=ROW)]

    def _buttons(self, options: list[tuple[str, int]]) -> w.ToggleButtons:
        """A page's buttons, new for each page: in the browser, ToggleButtons keeps the
        buttons it shows when its new options are the first of them, or none."""
        found = untitled(w.ToggleButtons, options=options, value=None, style=TOGGLE_STYLE,
                         layout=PLAIN, **hooks("found"))
        found.observe(self._open, "value")
        return found

    def _pressed(self, number: int | None, open_audit: Callable[[int], None]) -> None:
        if number is None:
            return
        self.results.value = None  # pressed again later, it opens again
        open_audit(number)

    def show_people(self, people: list[dict]) -> None:
        """Offer ``people`` (``audits.practitioners``) as auditors; keep the one chosen."""
        keep = self.auditor.value
        options = [ANYONE, *((p["name"], p["id"]) for p in people)]
        self.auditor.options = options
        self.auditor.value = keep if keep in {v for _, v in options} else ""

    def show_all(self) -> None:
        for box in (self.number, self.ehm):
            box.value = ""
        self.auditor.value = self.status.value = ""
        self.audited_from.value = self.audited_to.value = None
        self.search(1)

    def search(self, page: int | None = None) -> None:
        """Show page ``page`` (None: the one shown, e.g. after a save) of what the terms find."""
        try:
            found = audits.find(self.db, number=self.number.value, ehm_number=self.ehm.value,
                                auditor_id=self.auditor.value or None,
                                status=self.status.value or None,
                                audited_from=self.audited_from.value,
                                audited_to=self.audited_to.value, page=page or self.page)
        except audits.AuditRuleError as e:
            items = "".join(f"<li>{esc(m)}</li>" for m in e.problems.values())
            self.said.value = (f'<div class="ehkit-msg-blocked" role="status">Not searched: '
                               f"put this right and press Find.<ul>{items}</ul></div>")
            return
        self.page = found.page
        old, self.results = self.results, self._buttons(
            [(found_label(r), r["id"]) for r in found.rows])
        self.found.children = [self.results]
        old.close()
        self.previous.disabled, self.next.disabled = found.page == 1, found.page == found.pages
        self.said.value = '<p role="status">' + esc(f"Showing {found.seeing}: " + (
            f"{found.total:,} audit{'s' if found.total != 1 else ''} found, "
            f"{found.order}: page {found.page} of {found.pages}." if found.total else
            "no saved audit matches: change or clear the search (Show all).")) + "</p>"
