"""Small widget helpers every ehkit form shares.

* :func:`esc` / :func:`text_html` - free text is escaped before it goes into an HTML widget.
* :func:`labelled` - the name a screen reader reads for an input whose visible label the form
  lays out beside it.
* :func:`css_name` and :func:`tag` - stable CSS classes, so browser tests and the benchmark
  can find a widget (``.ehkit-save``) without relying on layout.
* :func:`date_picker`, :func:`to_date` - dates as ``datetime.date`` both ways.
* :class:`Messages` - the one place a form says "saved", "blocked" or "something went wrong".
* :func:`field_note` / :func:`show_note` - the plain-words rule message next to a field.
* :func:`friendly` - wraps every callback: a person's error (EhkitError) is shown as its
  message; anything else is logged for developers and the auditor sees a short apology,
  never a traceback, a path or code.
* :func:`refresh_when_opened` - with Voila's preheated kernels the form was built before the
  page was asked for; this runs a refresh once the request arrives.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import logging
import os
import re
from collections.abc import Callable
from typing import TypeVar

import ipywidgets as w
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_selection import ToggleButtonsStyle
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

from .. import access
from .. import db as store
from ..errors import EhkitError

log = logging.getLogger("ehkit.forms")

# Shared layouts and styles: one model each instead of one per widget. ipywidgets gives every
# widget a style model of its own, and the audit form has hundreds of widgets: sharing the
# styles is a third fewer models for the browser to build when the form opens.
HTML_STYLE, TEXT_STYLE, TOGGLE_STYLE = HTMLStyle(), TextStyle(), ToggleButtonsStyle()
BUTTON_STYLE = w.ButtonStyle()
GRADE_STYLE = ToggleButtonsStyle(description_width="initial")  # the grading heading in full
# A label as wide as its words: for a list or a date, and for a text box.
LABELLED, LABELLED_TEXT = DescriptionStyle(description_width="initial"), TextStyle(
    description_width="initial")
FULL = w.Layout(width="100%")
PLAIN = w.Layout()  # for widgets whose layout is never changed (never hide one by it)
TEXTAREA = w.Layout(width="100%", height="5em")
NOTE_LAYOUT = w.Layout(width="100%", margin="0 0 4px 0")
STYLE_CSS = """
<style>
.ehkit-form { max-width: 1100px; font-size: 14px; }
/* Text reads at a text's line height, not an input's (28px): the form is a third shorter. */
.ehkit-form .widget-html-content { line-height: 1.45; }
.ehkit-form h2 { background: #dfe7f1; padding: 4px 8px; margin: 18px 0 6px 0; font-size: 16px; }
.ehkit-form .ehkit-prompt { white-space: pre-wrap; background: #f7f7f7; padding: 6px;
  border-left: 3px solid #7a99c2; }
.ehkit-note { color: #a4000f; font-weight: bold; }
.ehkit-todo { color: #8a5300; }
/* A submitted audit reads as clearly as a draft: locked inputs at full strength, not greyed
   out (text contrast at least 4.5:1), and the chosen answer marked by more than colour: bold,
   a tick and a border (the tick is not read out as part of the button's name), in every
   app (".jupyter-widgets" outranks ipywidgets' own style for a chosen button). */
.ehkit-form { --jp-widgets-disabled-opacity: 1; }
.ehkit-form :disabled { opacity: 1; }
.ehkit-form textarea:disabled, .ehkit-form input:disabled, .ehkit-form select:disabled {
  color: #1a1a1a; -webkit-text-fill-color: #1a1a1a; background: #f4f4f4; }
.ehkit-form .widget-toggle-button:disabled { color: #1a1a1a; cursor: default; }
.jupyter-widgets .widget-toggle-button.mod-active { font-weight: bold; color: #fff;
  background: #1f4e79; box-shadow: inset 0 0 0 2px #0b2740; }
.jupyter-widgets .widget-toggle-button.mod-active::before { content: "\\2713\\00a0";
  content: "\\2713\\00a0" / ""; }
.ehkit-msg-ok { background: #e3f4e3; border: 1px solid #3a873a; padding: 6px 10px; }
.ehkit-msg-blocked { background: #fdecea; border: 1px solid #a4000f; padding: 6px 10px; }
.ehkit-msg-info { background: #eef3fa; border: 1px solid #7a99c2; padding: 6px 10px; }
.ehkit-grade-defs { font-size: 12px; color: #333; border-collapse: collapse; margin: 4px 0; }
.ehkit-grade-defs td, .ehkit-grade-defs th { padding: 1px 6px; vertical-align: top;
  text-align: left; }
.ehkit-guidance { font-size: 12px; color: #333; margin: 0 0 2px 0; padding-left: 6px;
  border-left: 3px solid #7a99c2; }
.ehkit-guidance summary { cursor: pointer; }
.ehkit-more { text-decoration: underline; }
.ehkit-form .ehkit-grade { display: flex; flex-flow: row wrap; align-items: center; }
.ehkit-grade > .widget-label { font-weight: bold; margin-right: 10px; }
.ehkit-guidance-notes { margin: 6px 0; padding: 4px 8px; border: 1px solid #7a99c2; }
.ehkit-guidance-notes summary { cursor: pointer; font-weight: bold; }
.ehkit-guidance-notes li { margin: 3px 0; }
.ehkit-readonly { background: #fafafa; padding: 2px 6px; min-height: 1.4em; }
/* A question: its toggle's own label, shown as the text of its row (views.SectionView). */
.ehkit-form .ehkit-question { display: flex; align-items: center; }
.ehkit-form .ehkit-question > .widget-label { flex: 1 1 55%; width: auto; height: auto;
  margin: 2px 4px 2px 2px; white-space: normal; overflow: visible; text-align: left;
  line-height: 1.45; color: inherit; }
.ehkit-form .ehkit-question > div { flex: 0 0 auto; }
/* A checklist item: its status's own label, a fifth of the row's width (22cqw: the row is
   its container) as the label beside it was (views.ChecklistView). */
.ehkit-form .ehkit-check-row { container-type: inline-size; }
.ehkit-form .ehkit-check-status { display: flex; align-items: center; }
.ehkit-form .ehkit-check-status > .widget-label { flex: none; width: 22cqw; height: auto;
  margin: 2px; white-space: normal; overflow: visible; text-align: left;
  line-height: 1.45; color: inherit; }
/* A read-only case field: one widget laid out as an input's row (views.case_row). */
.ehkit-case-row { display: flex; align-items: center; }
.ehkit-case-label { width: 32%; min-width: 200px; margin-right: 4px; flex: none; }
.ehkit-case-row .ehkit-readonly { width: calc(60% - 12px); }
.ehkit-form .widget-toggle-buttons .widget-toggle-button { width: auto; min-width: 7em; }
.ehkit-form .widget-datepicker input[type="date"] { min-width: 9.5em; }
</style>
"""


W = TypeVar("W", bound=w.DOMWidget)


def untitled(cls: type[W], *args, **kw) -> W:
    """A description widget (HTML, date picker, toggle buttons, number box) made with no
    tooltip. Its label takes the tooltip as its title, and ipywidgets' unset one as the word
    "null", which a pointer over the label shows. The default cannot be changed once for
    all: ipywidgets keeps trait defaults class by class."""
    kw.setdefault("tooltip", "")
    return cls(*args, **kw)


def html_widget(value: str = "", **kw) -> w.HTML:
    """An HTML widget with the shared style (and the shared plain layout unless given)."""
    kw.setdefault("layout", PLAIN)
    return untitled(w.HTML, value, style=HTML_STYLE, **kw)


def button(**kw) -> w.Button:
    """A button with the shared style (and the shared plain layout unless given)."""
    kw.setdefault("layout", PLAIN)
    return w.Button(style=BUTTON_STYLE, **kw)


def esc(text) -> str:
    """Escape free text for an HTML widget (None shows as nothing)."""
    return "" if text is None else html.escape(str(text), quote=True)


def text_html(text, cls: str = "") -> str:
    """Escaped free text, line breaks kept."""
    return f'<div class="{cls}" style="white-space: pre-wrap">{esc(text)}</div>'


def css_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(key))


def hooks(*names: str, sr_label: str | None = None) -> dict:
    """Constructor arguments for a widget's ``ehkit-<name>`` CSS classes (stable hooks for
    tests and the benchmark) and, given ``sr_label``, its name for screen readers (as
    :func:`labelled`): given as the widget is made they go in its opening message; set
    afterwards, each is a message of its own from the kernel (301 on the audit form)."""
    kw: dict = {"_dom_classes": tuple(f"ehkit-{css_name(n)}" for n in names)}
    if sr_label is not None:
        kw["description"] = sr_label
        kw["_dom_classes"] += ("ehkit-sr-label",)
    return kw


def tag(widget: w.DOMWidget, *names: str) -> w.DOMWidget:
    """Add ``ehkit-<name>`` CSS classes to a widget made already (one message to the
    browser; :func:`hooks` gives them as it is made, in none)."""
    widget._dom_classes = (*widget._dom_classes,
                           *(f"ehkit-{css_name(n)}" for n in names
                             if f"ehkit-{css_name(n)}" not in widget._dom_classes))
    return widget


def labelled(widget: w.DOMWidget, name: str) -> w.DOMWidget:
    """Name an input for screen readers: its description becomes a ``<label>`` tied to it,
    hidden on screen (``ehkit-sr-label``, in the page template) because the form already
    shows the same words beside it (WCAG 1.3.1, 4.1.2). :func:`hooks` does it as it is made."""
    with widget.hold_sync():
        widget.description = name
        tag(widget, "sr-label")
    return widget


def to_date(value) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def date_picker(value=None, description: str = "", key: str | None = None,
                sr_label: str | None = None) -> w.DatePicker:
    """A date picker; ``key`` its hook (``ehkit-date-<key>``), ``sr_label`` as in :func:`hooks`."""
    named = hooks(*([f"date-{key}"] if key else []), sr_label=sr_label)
    named.setdefault("description", description)
    return untitled(w.DatePicker, value=to_date(value),
                    style={"description_width": "initial"} if description else {}, **named)


def field_note(key: str) -> w.HTML:
    """An (initially empty) place for the rule message about field ``key``."""
    return html_widget("", layout=NOTE_LAYOUT, **hooks("note", f"note-{key}"))


# A message says what it is by its icon (and its words), not only by its colour (WCAG 1.4.1):
# green done, red not done, blue for you to know.
MESSAGE_SIGNS = {"ehkit-msg-ok": "&#10004; ", "ehkit-msg-blocked": "&#9888; ",
                 "ehkit-msg-info": "&#8505; "}


def show_note(note: w.HTML, message: str | None, *, todo: bool = False) -> None:
    """A rule's message beside its field: what is still to do on a draft (orange), or what
    must be put right (red); each says which in words and by its icon, not by colour alone."""
    cls, icon, kind = (("ehkit-todo", "&#9998;", "Still to do:") if todo
                       else ("ehkit-note", "&#9888;", "Put right:"))
    note.value = (f'<span class="{cls}">{icon} <b>{kind}</b> {esc(message)}</span>'
                  if message else "")


class Messages:
    """The form's status line: saved, blocked, or an error, always in plain words."""

    def __init__(self):
        self.widget = html_widget("", layout=FULL, **hooks("messages"))

    def _show(self, cls: str, text: str, detail: list[str] | None = None) -> None:
        items = "".join(f"<li>{esc(d)}</li>" for d in detail or [])
        self.widget.value = (f'<div class="{cls}" role="status">{MESSAGE_SIGNS[cls]}{esc(text)}'
                             + (f"<ul>{items}</ul>" if items else "") + "</div>")

    def ok(self, text: str, detail: list[str] | None = None) -> None:
        self._show("ehkit-msg-ok", text, detail)

    def blocked(self, text: str, detail: list[str] | None = None) -> None:
        self._show("ehkit-msg-blocked", text, detail)

    def info(self, text: str, detail: list[str] | None = None) -> None:
        self._show("ehkit-msg-info", text, detail)

    def clear(self) -> None:
        self.widget.value = ""


APOLOGY = ("Something went wrong and that was not done. Nothing you typed on the form is lost: "
           "try again, and if it happens again tell your ehkit administrator the time ({at}).")


def friendly(messages: Messages, on_error: Callable[[EhkitError], None] | None = None):
    """Decorate a widget callback so no traceback ever reaches the auditor."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except EhkitError as e:
                if on_error is not None:
                    try:
                        on_error(e)
                        return None
                    except Exception:  # noqa: BLE001 - fall through to the plain message
                        log.exception("error handler failed")
                messages.blocked(str(e))
            except Exception as e:  # noqa: BLE001 - a bug: log it, tell the person calmly
                if type(e).__module__.startswith("psycopg") and isinstance(
                        said := store.person_error(e), EhkitError):
                    messages.blocked(str(said))  # e.g. the database server's connection lost
                    return None
                at = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
                log.exception("form callback %s failed at %s", fn.__name__, at)
                messages.blocked(APOLOGY.format(at=at))
            return None

        return run

    return wrap


# What to fill once a hub kernel is handed its login (refresh_when_opened, hand_over).
_when_handed_over: list[Callable[[], None]] = []


def refresh_when_opened(refresh: Callable[[], None]) -> None:
    """Run ``refresh`` now, or - in a preheated Voila kernel - once the page is requested;
    under the hub, once the server hands this kernel its login (:func:`hand_over`)."""
    if access.awaiting_login():
        _when_handed_over.append(refresh)
        return
    if os.environ.get("VOILA_PREHEAT", "False") != "False":
        from voila.utils import wait_for_request  # only inside Voila

        wait_for_request()
    refresh()


def hand_over(login_name: str) -> None:
    """The hub's server gives this preheated kernel its page's login (serve_hub: over its
    own channel to the kernel, which a browser cannot use) and the form is filled for it."""
    access.take_login(login_name)  # refused: the server does not serve the page
    for refresh in _when_handed_over:
        try:
            refresh()
        except EhkitError as e:  # e.g. a role that may not list audits: the page still opens,
            # as without the pool, and each button says what this login may not do
            log.warning("filling the form for %s: %s", login_name, e)
