"""Feedback forms for Voila: service-user feedback, and what follows an audit (the worker told,
the reflective discussion, the feedback summary, the 1-1 meeting, the letter).

Thin: reads and writes go through :mod:`ehkit.after_audit` and
:mod:`ehkit.service_user_feedback`; free text is escaped wherever shown.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as w

from .. import actions, after_audit, episodes, home
from .. import db as store
from .. import service_user_feedback as feedback
from .. import template as templates
from ..dates import uk
from .common import (
    STYLE_CSS,
    Messages,
    button,
    esc,
    friendly,
    html_widget,
    labelled,
    tag,
    text_html,
    untitled,
)

STYLE = {"description_width": "12em"}
WIDE = w.Layout(width="46em")


def _title(text: str, intro: str = "") -> w.HTML:
    return html_widget(STYLE_CSS + f"<h2>{esc(text)}</h2>" + (f"<p>{esc(intro)}</p>" if intro else ""))


# -- service-user feedback ----------------------------------------------------------------
def service_user_app(db_path=None, today: dt.date | None = None, *,
                     refresh: bool = True) -> w.VBox:
    """The service-user feedback form for the database at ``db_path`` (else $EHKIT_DB)."""
    return service_user_form(store.connect(db_path, must_exist=True), today)


def service_user_form(db, today: dt.date | None = None) -> w.VBox:
    ehm = tag(w.Text(description="Child's EHM number", style=STYLE), "ehm")
    given_on = tag(untitled(w.DatePicker, description="Date given",
                            value=today or dt.date.today(), style=STYLE), "given-on")
    respondent = tag(untitled(w.ToggleButtons,
                              options=[(v, k) for k, v in feedback.RESPONDENTS.items()],
                              description="From", style=STYLE), "respondent")
    stage = tag(w.Dropdown(options=[(v, k) for k, v in feedback.STAGES.items()],
                           description="When", style=STYLE), "stage")
    labels = feedback.rating_labels()
    ratings = {}
    for q in feedback.questions():
        ratings[q["key"]] = tag(w.Dropdown(
            options=[("Not answered", ""), *[(f"{n} - {lab}", n)
                                              for n, lab in enumerate(labels, start=1)]],
            layout=w.Layout(width="16em")), "rating", f"rating-{q['key']}")
        labelled(ratings[q["key"]], q["text"])
    comments = tag(w.Textarea(description="In their words", style=STYLE, layout=WIDE),
                   "comments")
    concern = tag(w.Checkbox(description="A concern was raised", indent=False), "concern")
    theme = tag(w.Dropdown(options=[("Choose a theme", ""),
                                    *[(t, t) for t in feedback.concern_themes()]],
                           description="Theme of the concern", style=STYLE), "theme")
    detail = tag(w.Textarea(description="About the concern", style=STYLE, layout=WIDE),
                 "concern-detail")
    save = tag(button(description="Save feedback", button_style="primary"), "save")
    messages = Messages()

    @friendly(messages)
    def on_save(_):
        episode = episodes.find_episode(db, ehm.value, given_on.value)
        fid = feedback.record_service_user_feedback(db, {
            "episode_id": episode, "given_on": given_on.value, "respondent": respondent.value,
            "stage": stage.value,
            "ratings": {k: d.value for k, d in ratings.items() if d.value != ""},
            "comments": comments.value, "concern_raised": concern.value,
            "concern_theme": theme.value or None, "concern_detail": detail.value}, today=today)
        messages.ok(f"Saved feedback number {fid} for {ehm.value.strip()}.")
        for d in ratings.values():
            d.value = ""
        ehm.value = comments.value = detail.value = ""
        concern.value, theme.value = False, ""

    save.on_click(on_save)
    rows = [w.HBox([d, w.Label(q["text"])]) for q, d in zip(feedback.questions(),
                                                          ratings.values(), strict=True)]
    box = w.VBox([
        _title("Service-user feedback", "Feedback from the child or young person, or the parent "
               "or carer, at the end of the assessment, at a Team Around the Family meeting, "
               "or at closure."),
        ehm, given_on, respondent, stage, html_widget("<b>How was it for you?</b>"), *rows, comments,
        concern, theme, detail, save, messages.widget])
    box.refresh = messages.clear  # nothing is read from the store before saving
    return tag(box, "form", "service-user-feedback")


# -- after the audit ------------------------------------------------------------------------
def followup_app(db_path=None, today: dt.date | None = None, letters_dir=None, *,
                 refresh: bool = True) -> w.VBox:
    """What follows an audit, for the database at ``db_path`` (else $EHKIT_DB). Letters go to
    ``letters_dir`` (else ``letters`` in $EHKIT_REPORTS_DIR, else reports/letters)."""
    out = letters_dir or home.reports_dir("letters")
    return followup_form(store.connect(db_path, must_exist=True), today, out, refresh=refresh)


def _audit_html(f: dict) -> str:
    a = f["audit"]
    lines = [
        f"<b>Audit {a['id']}</b> of {uk(a['audit_date'])} for {esc(a['ehm_number'])} "
        f"({esc(a['status'])}): overall <b>{esc(f['grade_label'])}</b>",
        f"Assessment author: {esc(a['author'] or 'not recorded')}; their manager: "
        f"{esc(a['manager'] or 'not recorded')}",
        f"Worker told of the audit: {uk(f['worker_notified_date'], 'not recorded')}; "
        f"feedback summary sent: {uk(f['feedback_sent_date'], 'not yet')}",
    ]
    for d in f["discussions"]:
        who = ", ".join(f"{esc(p['name'])} ({esc(p['role'].replace('_', ' '))})"
                        for p in d["attendees"])
        lines.append(f"Discussion on {uk(d['held_on'])} with {who}: {esc(d['learning'])}")
    for m in f["one_to_ones"]:
        lines.append(f"1-1 meeting on {uk(m['held_on'])}: {esc(m['notes'])}")
    for letter in f["letters"]:
        lines.append(f"Letter drafted on {uk(letter['drafted_on'])}: {esc(letter['html_path'])}")
    return "<div class='ehkit-audit-summary'>" + "<br>".join(lines) + "</div>"


def followup_form(db, today: dt.date | None = None, letters_dir="reports/letters", *,
                  refresh: bool = True) -> w.VBox:
    on = today or dt.date.today()
    audit_id = tag(untitled(w.BoundedIntText, description="Audit number", min=0, max=10**9,
                            style=STYLE), "audit-id")
    load = tag(button(description="Open"), "open")
    summary = html_widget()
    notified = tag(untitled(w.DatePicker, description="Worker told on", value=on, style=STYLE),
                   "notified-on")
    save_notified = tag(button(description="Save"), "save-notified")
    feedback_text = html_widget()
    sent_on = tag(untitled(w.DatePicker, description="Summary sent on", value=on,
                           style=STYLE), "sent-on")
    save_sent = tag(button(description="Save"), "save-sent")
    held_on = tag(untitled(w.DatePicker, description="Discussion held on", value=on, style=STYLE),
                  "discussion-on")
    attendees = tag(w.SelectMultiple(description="Who attended", style=STYLE, rows=6,
                                     layout=WIDE), "attendees")
    learning = tag(w.Textarea(description="What was learned", style=STYLE, layout=WIDE),
                   "learning")
    notes = tag(w.Textarea(description="Notes", style=STYLE, layout=WIDE), "discussion-notes")
    save_discussion = tag(button(description="Save discussion", button_style="primary"),
                          "save-discussion")
    one_on = tag(untitled(w.DatePicker, description="1-1 meeting on", value=on,
                          style=STYLE), "one-on")
    one_notes = tag(w.Textarea(description="1-1 notes", style=STYLE, layout=WIDE), "one-notes")
    save_one = tag(button(description="Save 1-1 meeting"), "save-one")
    letter = tag(button(description="Draft letter to the author's manager"), "letter")
    to_hold = html_widget()
    messages = Messages()
    parts = w.VBox([])

    def current() -> int:
        return int(audit_id.value)

    @friendly(messages)  # one who may not read it is told which role may
    def show_to_hold():
        after_audit.reader(db)
        rows = after_audit.discussions_to_hold(db, on)
        items = "".join(f"<li>Audit {r['id']} of {uk(r['audit_date'])} ({esc(r['ehm_number'])},"
                        f" {esc(r['author'] or '')})</li>" for r in rows[-15:])
        to_hold.value = (f"<p><b>{len(rows)} audit(s) with the discussion still to hold</b> "
                         f"(the latest 15):</p><ul>{items}</ul>")

    @friendly(messages)
    def on_load(_=None):
        f = after_audit.followup(db, current())
        f["grade_label"] = templates.load(f["audit"]["template"]).grade_label(f["audit"]["grade"])
        summary.value = _audit_html(f)
        a = f["audit"]
        people = actions.practitioner_choices(db)
        attendees.options = people
        attendees.value = tuple(i for i in (a["author_id"], a["manager_id"])
                                if i in {v for _, v in people})
        try:
            feedback_text.value = ("<b>Feedback summary for the author</b>"
                                   + text_html(after_audit.feedback_summary(db, current()),
                                               "ehkit-readonly"))
        except after_audit.FeedbackError as e:
            feedback_text.value = text_html(str(e))
        if not a["counted"]:  # nothing follows a draft but telling the worker
            parts.children = [summary, w.HBox([notified, save_notified]), tag(html_widget(
                f"<p>Audit {a['id']} is still a draft: the discussion, the feedback summary, "
                "the 1-1 meeting and the letter follow it once it is submitted.</p>"), "draft")]
            messages.clear()
            return
        save_one.disabled = one_notes.disabled = not f["needs_one_to_one"]
        letter.disabled = not f["needs_letter"]
        parts.children = [summary, w.HBox([notified, save_notified]), feedback_text,
                          w.HBox([sent_on, save_sent]), html_widget("<h3>Reflective discussion</h3>"),
                          held_on, attendees, learning, notes, save_discussion,
                          html_widget("<h3>1-1 meeting (Requires Improvement or Inadequate)</h3>"),
                          one_on, one_notes, save_one, html_widget("<h3>Letter (Inadequate)</h3>"),
                          letter]
        messages.clear()

    @friendly(messages)
    def on_notified(_):
        after_audit.record_worker_notified(db, current(), notified.value)
        on_load()
        messages.ok(f"Saved: the worker was told on {uk(notified.value)}.")

    @friendly(messages)
    def on_sent(_):
        after_audit.record_feedback_sent(db, current(), sent_on.value, today=on)
        on_load()
        messages.ok(f"Saved: the feedback summary was sent on {uk(sent_on.value)}.")

    @friendly(messages)
    def on_discussion(_):
        after_audit.record_discussion(db, current(), held_on.value, attendees.value, learning.value,
                                   notes.value, today=on)
        learning.value = notes.value = ""
        on_load()
        show_to_hold()
        messages.ok(f"Saved the discussion of audit {current()} held on {uk(held_on.value)}.")

    @friendly(messages)
    def on_one(_):
        after_audit.record_one_to_one(db, current(), one_on.value, one_notes.value, today=on)
        one_notes.value = ""
        on_load()
        messages.ok(f"Saved the 1-1 meeting of {uk(one_on.value)}.")

    @friendly(messages)
    def on_letter(_):
        html_path, text_path = after_audit.draft_letter(db, current(), out_dir=letters_dir, on=on)
        on_load()
        messages.ok(f"Letter drafted (not sent): {html_path} and {text_path}.")

    load.on_click(on_load)
    save_notified.on_click(on_notified)
    save_sent.on_click(on_sent)
    save_discussion.on_click(on_discussion)
    save_one.on_click(on_one)
    letter.on_click(on_letter)
    box = w.VBox([_title("After the audit", "Record when the worker was told, the reflective "
                         "discussion with the worker and their line manager, the feedback to the "
                         "author, the 1-1 meeting and the letter."),
                  w.HBox([audit_id, load]), messages.widget, parts, to_hold])
    box.refresh = show_to_hold
    if refresh:
        show_to_hold()
    return tag(box, "form", "followup")
