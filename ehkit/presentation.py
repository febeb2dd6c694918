"""What a report notebook calls to show things: header, figure tables, grids, lists, charts,
footer.

A notebook makes one :class:`Report` from its parameters and calls blocks
(``ehkit.report_blocks``) that call its methods; each method displays escaped HTML or a
chart as an SVG image, applies the audience's disclosure control, and records every figure it shows,
so the runner can write a figures file holding exactly what the report shows (emitted as a
hidden output of type FIGURES_MIME by :meth:`Report.footer`).

Disclosure control lives here once for every report: what is suppressed is decided once per
(figure, period, audience) for the whole family of reports an audience receives
(:func:`decisions`), and every table reads those decisions. A count from 1 to the threshold and
a cell chosen by secondary suppression print ``c``; a percentage, median or ratio over a
suppressed count is suppressed too. A figure shown in two tables or two reports (a grid's
total and a headline figure; a quarter in the trend, in the annual report's by-quarter table
and in its own quarterly report) has one key, so it is suppressed everywhere or nowhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import weakref
from collections.abc import Iterable, Sequence

from markupsafe import escape

from . import __version__, access, disclosure, metrics, periods
from . import db as store
from . import template as templates
from .metrics import TOTAL, Figure, Grid
from .settings import get as setting

FIGURES_MIME = "application/vnd.ehkit.figures+json"

TITLES = {
    "monthly": "Early Help audit report to the Head of Service",
    "quarterly": "Early Help quality assurance: quarterly report",
    "annual": "Early Help quality assurance: annual report",
}
NO_AUDITS = "No audits in this period."


def _show(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(f'<div class="ehkit">{markup}</div>'))


# Reports holding markup until their cell ends (weakly: a report run again in JupyterLab
# leaves its old one behind).
_HOLDING: weakref.WeakSet = weakref.WeakSet()


@functools.cache
def _cell_end_hook() -> bool:
    """Have IPython show every report's held markup as each cell ends (once a process);
    False outside IPython, where there are no cells: markup is shown at once."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.events.register("post_execute", lambda: [r.flush() for r in list(_HOLDING)])
    return True


def show_chart(fig, alt: str = "") -> None:
    """Display a chart as an image/svg+xml output (:func:`ehkit.charts.svg`): the report's
    HTML embeds it as an image, so the HTML is one file and nothing in it runs. ``alt``
    (default: the chart's title) is the image's text for screen readers."""
    from IPython.display import display

    from .charts import svg  # matplotlib: only where a chart is drawn

    if not alt and fig.axes:
        alt = fig.axes[0].get_title(loc="left") or fig.axes[0].get_title()
    display({"image/svg+xml": svg(fig)}, metadata={"image/svg+xml": {"alt": alt or "Chart"}},
            raw=True)


class Report:
    def __init__(self, kind: str, *, db: str | None, period: str | None, audience: str,
                 template: str = templates.DEFAULT_TEMPLATE):
        self.kind = kind
        self.db_path = store.location(db)
        self.db = store.connect(self.db_path, must_exist=True)
        self.audience = disclosure.audience(audience)
        access.require_report(self.db, self.audience.names)  # the notebook run by hand too
        self.period = resolve_period(self.db, kind, period)
        self.template = templates.load(template)
        self.parameters = {"db": str(self.db_path), "period": self.period.label,
                           "audience": self.audience.key, "template": self.template.key}
        self.shown: list[dict] = []
        self.hidden: set[str] = set()  # keys shown as "c"
        self._held: list[str] = []

    # -- showing ---------------------------------------------------------------------------
    def _html(self, markup: str) -> None:
        """Markup to show: held until the cell ends, or a chart or the footer comes, then
        shown with the rest as one output. papermill and nbconvert carry each output at
        ~2 ms: a quarterly report's headings, notes and tables were 26 outputs of 32."""
        self._held.append(markup)
        if _cell_end_hook():
            _HOLDING.add(self)
        else:
            self.flush()

    def flush(self) -> None:
        """Show the markup held so far (:meth:`_html`), as one output."""
        if self._held:
            markup, self._held = "".join(self._held), []
            _show(markup)

    # -- text -----------------------------------------------------------------------------
    def header(self) -> None:
        self._html(f"""<h1>{escape(TITLES.get(self.kind, self.kind.title()))}</h1>
<p class="sub"><strong>Service:</strong> {escape(setting("service", "name"))}
&nbsp;·&nbsp; <strong>Period:</strong> {escape(self.period.title)}
&nbsp;·&nbsp; <strong>For:</strong> {escape(self.audience.label)}</p>""")

    def section(self, title: str, note: str | None = None) -> None:
        body = f'<h2 class="ehkit-section">{escape(title)}</h2>'
        if note:
            body += f'<p class="note">{escape(note)}</p>'
        self._html(body)

    def note(self, text: str) -> None:
        self._html(f"<p class='note'>{escape(text)}</p>")

    def definitions(self, keys: Iterable[str] | None = None) -> None:
        keys = list(keys or metrics.DEFINITIONS)
        # each definition beside the name of the figure it defines, as the report shows it
        items = "".join(f"<li><strong>{escape(metrics.TERMS[k])}</strong>: "
                        f"{escape(metrics.DEFINITIONS[k])}</li>" for k in keys)
        if self.audience.suppress:
            items += (f"<li><strong>{disclosure.SUPPRESSED}</strong>: counts from 1 to "
                      f"{self.audience.threshold} are shown as <strong>{disclosure.SUPPRESSED}"
                      "</strong> to protect families, and so is any other count that would let "
                      "one be worked out from a total; a percentage, median or ratio built on "
                      "such a count is suppressed too. A true zero is shown as 0.</li>")
        self._html(f"<h3>How these figures are defined</h3><ul class='note definitions'>{items}</ul>")

    # -- disclosure ------------------------------------------------------------------------
    @functools.cached_property
    def decisions(self) -> dict[str, bool]:
        """{key: suppressed?} for every figure of a table this report shows (:func:`decisions`)."""
        return decisions(self.db, self.kind, self.period, self.template.key,
                         self.audience.threshold)

    def is_hidden(self, f: Figure) -> bool:
        """Is this figure suppressed for this audience? As decided for its period, else (a
        count of a list, a theme's count) by the primary rule."""
        if not self.audience.suppress:
            return False
        if f.key in self.decisions:
            return self.decisions[f.key]
        return f.key in self.hidden or disclosure.primary(f, self.audience.threshold)

    def shown_value(self, f: Figure, hidden: bool | None = None) -> str:
        """The figure as this audience sees it (suppression applied), and record it."""
        hidden = self.is_hidden(f) if hidden is None else hidden
        if hidden:  # an undecided figure (a list's count) shown twice stays suppressed
            self.hidden.add(f.key)
        self.shown.append({"key": f.key, "label": f.label,
                           "value": disclosure.SUPPRESSED if hidden else
                           ("" if f.value is None else f.value)})
        return disclosure.SUPPRESSED if hidden else f.display

    # -- figures --------------------------------------------------------------------------
    def table(self, figures: Sequence[Figure], title: str | None = None) -> None:
        rows = "".join(
            f"<tr><td>{escape(f.label)}</td><td class='num'>{escape(self.shown_value(f))}</td></tr>"
            for f in figures
        )
        head = f"<h3>{escape(title)}</h3>" if title else ""
        self._html(f"{head}<table><thead><tr><th>Figure</th><th>Value</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table>")

    def grid(self, grid: Grid, title: str | None = None) -> set[str]:
        """Show a grid with its totals and percentages; returns the keys suppressed."""
        undecided = {f.key for f in grid.figures()} - self.decisions.keys()
        if self.audience.suppress and undecided:  # a block shows a grid shown_for does not list
            raise disclosure.DisclosureError(
                f"the {self.kind} report shows {grid.key!r} but metrics.shown_for does not list "
                f"it, so its suppression was not decided ({sorted(undecided)[0]})")
        cols = [grid._label(c, grid.cols) for c in grid.col_keys] + [p.label for p in grid.percents]
        head = "".join(f"<th>{escape(c)}</th>" for c in cols)
        body, suppressed = "", set()
        for r in grid.row_keys:
            cells = []
            for f in ([grid.figure(r, c) for c in grid.col_keys]
                      + [grid.percent_figure(r, pc) for pc in grid.percents]):
                off = self.is_hidden(f)
                cells.append(self.shown_value(f, off))
                suppressed |= {f.key} if off else set()
            cls = " class='total'" if r == TOTAL else ""
            body += (f"<tr{cls}><td>{escape(grid._label(r, grid.rows))}</td>"
                     + "".join(f"<td class='num'>{escape(v)}</td>" for v in cells) + "</tr>")
        self._html(f"<h3>{escape(title or grid.title)}</h3><table><thead><tr>"
                   f"<th>{escape(grid.corner)}</th>{head}</tr></thead><tbody>{body}</tbody></table>")
        return suppressed

    def figure_rows(self, title: str, columns: Sequence[str],
                    rows: Sequence[tuple[str, Sequence[Figure]]], corner: str = "") -> None:
        """A table of figures with no totals: one row per label (primary suppression)."""
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = "".join(
            f"<tr><td>{escape(label)}</td>"
            + "".join(f"<td class='num'>{escape(self.shown_value(f))}</td>" for f in figs)
            + "</tr>" for label, figs in rows)
        self._html(f"<h3>{escape(title)}</h3><table><thead><tr><th>{escape(corner)}</th>{head}</tr>"
                   f"</thead><tbody>{body}</tbody></table>")

    def trend_table(self, title: str, trend: Sequence[tuple[periods.Period, Sequence[Figure]]]
                    ) -> dict[str, list]:
        """Each figure (a row) for the period and the ones before it (columns, oldest first).
        The current period's figures keep their keys; earlier ones are ``key@period``.
        Returns {key: [value shown, or None where suppressed or n/a]} for trend charts."""
        current = trend[-1][0]
        head = "".join(f"<th>{escape(p.label)}</th>" for p, _ in trend)
        series: dict[str, list] = {}
        body = ""
        for i, f0 in enumerate(trend[-1][1]):
            cells = []
            for p, figs in trend:
                f = figs[i]
                if p != current:
                    f = Figure(f"{f.key}@{p.label}", f"{f.label} ({p.label})", f.value, f.kind,
                               f.numerator, f.denominator)
                text = self.shown_value(f)
                series.setdefault(f0.key, []).append(
                    None if text == disclosure.SUPPRESSED else f.value)
                cells.append(text)
            body += (f"<tr><td>{escape(f0.label)}</td>"
                     + "".join(f"<td class='num'>{escape(v)}</td>" for v in cells) + "</tr>")
        self._html(f"<h3>{escape(title)}</h3><table><thead><tr><th>Figure</th>{head}</tr></thead>"
                   f"<tbody>{body}</tbody></table>")
        return series

    # -- lists of cases, audits, actions -------------------------------------------------------
    def records(self, title: str, columns: Sequence[tuple[str, str, str]], rows: Sequence[dict],
                empty: str, *, public: bool = False, limit: int = 100,
                more: str = "") -> None:
        """A list (one row per record). ``columns`` are (key, heading, what) where ``what``
        is "worker" (a worker's name: only where the audience may see names), "case" (an EHM
        number: internal audiences only) or "" (anything else). Every value is escaped.

        Lists of cases and audits are for internal audiences (who may see names): a board
        gets only how many there are (suppressed if small), unless the list is ``public``
        (e.g. themes recorded many times). A long list shows its first ``limit`` rows and
        says how many more there are (``more`` says where to find them all)."""
        if not rows:
            self._html(f"<h3>{escape(title)}</h3><p class='note'>{escape(empty)}</p>")
            return
        if not (self.audience.names or public):
            n = self.shown_value(metrics.count(f"list.{metrics.slug(title)}", title, len(rows)))
            self._html(f"<h3>{escape(title)}</h3><p class='note'>{escape(n)} listed in the Head of "
                       "Service's report only (case-level detail).</p>")
            return
        allowed = [(k, h) for k, h, what in columns
                   if (what != "worker" or self.audience.names)
                   and (what != "case" or self.audience.case_references)]
        head = "".join(f"<th>{escape(h)}</th>" for _, h in allowed)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape('' if r.get(k) is None else r.get(k))}</td>"
                             for k, _ in allowed) + "</tr>" for r in rows[:limit])
        rest = ""
        if len(rows) > limit:
            rest = (f"<p class='note'>The first {limit} of {len(rows):,} are shown. "
                    f"{escape(more)}</p>")
        self._html(f"<h3>{escape(title)}</h3><table class='list'><thead><tr>{head}</tr></thead>"
                   f"<tbody>{body}</tbody></table>{rest}")

    # -- charts ------------------------------------------------------------------------------
    def chart(self, fig, alt: str, figures: Sequence[Figure] = ()) -> None:
        """Show a chart, unless any figure it draws is suppressed for this audience."""
        if any(self.is_hidden(f) for f in figures):
            self._html(f"<p class='note'>Chart not shown: it would reveal small numbers "
                       f"({escape(alt)}).</p>")
            return
        self.flush()  # what comes before it, first
        show_chart(fig)

    # -- provenance -------------------------------------------------------------------------
    def footer(self) -> None:
        from IPython.display import display

        imports = list(self.db.query(
            "SELECT file_name, sha256, imported_at FROM imports ORDER BY id DESC LIMIT 3"))
        # A file's name can hold a family's name or case number: outside the Head of
        # Service's report an import is known by its hash alone.
        source = "; ".join((f"{i['file_name']} " if self.audience.case_references else "")
                           + f"(sha256 {i['sha256'][:12]}, {i['imported_at']})"
                           for i in imports) or "no imported files (generated or entered data)"
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items() if k != "db")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._html(f"""<footer>Generated by ehkit {escape(__version__)} on {escape(now)} ·
audit tool: {escape(self.template.title)} (template {escape(self.template.key)}
v{escape(self.template.version)}) · parameters: {escape(params)} ·
data fingerprint {escape(store.data_fingerprint(self.db))} · latest imports: {escape(source)}
</footer>""")
        self.flush()
        seen, shown = set(), []
        for row in self.shown:  # a figure shown in two tables is one row of the file
            if row["key"] not in seen:
                seen.add(row["key"])
                shown.append(row)
        display({FIGURES_MIME: json.dumps(shown)}, raw=True)


def decisions(db, kind: str, period: periods.Period, template: str, threshold: int
              ) -> dict[str, bool]:
    """{key: suppressed?} for every figure in a table of a ``kind`` report for ``period``,
    decided with every other report of the audience that shows the same figures.

    Each period's own figures are decided together (``metrics.shown_for``, one
    ``disclosure.decide``), whichever report asks, so a quarter is decided the same in its
    quarterly report, in the next four quarterlies' trend (keys ``key@2025Q3``) and in the
    annual report's by-quarter rows. A quarter's headline figures (``metrics.headline``, the
    trend's rows) are suppressed by the primary rule alone and never chosen to protect
    another cell, so the trend needs no more than them. The annual report's figures for the
    year keep its quarters' decisions and protect the year's totals around them.
    Deterministic: the same data gives the same decisions."""
    if kind == "quarterly":
        out: dict[str, bool] = {}
        for q in period.trend(5)[:-1]:
            out |= {f"{f.key}@{q.label}": disclosure.primary(f, threshold)
                    for f in metrics.headline(db, q)}
        return out | _decided(db, kind, period, template, threshold)
    if kind == "annual":
        quarters = {f"{k}@{q.label}": v for q in period.quarters()
                    for k, v in _decided(db, "quarterly", q, template, threshold).items()}
        grids, figures = metrics.shown_for(db, kind, period, template)
        year = disclosure.decide(grids, figures, threshold,
                                 published={k for k, v in quarters.items() if not v},
                                 suppressed={k for k, v in quarters.items() if v})
        return year | quarters
    return _decided(db, kind, period, template, threshold)


@metrics.remembered
def _items_decided(db, kind: str, period: periods.Period, template: str, threshold: int
                   ) -> list[tuple[str, bool]]:
    grids, figures = metrics.shown_for(db, kind, period, template)
    headline = ({f.key: disclosure.primary(f, threshold) for f in metrics.headline(db, period)}
                if kind == "quarterly" else {})
    return list(disclosure.decide(
        grids, figures, threshold, published={k for k, off in headline.items() if not off},
        suppressed={k for k, off in headline.items() if off}).items())


def _decided(db, kind, period, template, threshold) -> dict[str, bool]:
    return dict(_items_decided(db, kind, period, template, threshold))


def resolve_period(db, kind: str, text: str | None) -> periods.Period:
    """The period a report covers: as given, else the last full one in the data."""
    first, latest = metrics.data_span(db)
    if not latest:
        raise periods.PeriodError("the database holds no episodes or audits yet: nothing to report")
    if text:
        p = periods.parse(text)
        if p.start > dt.date.fromisoformat(latest) or p.end < dt.date.fromisoformat(first):
            raise periods.PeriodError(
                f"no data in {p.label}: the data runs from {first} to {latest}")
        wanted = {"monthly": ("month",), "quarterly": ("quarter",),
                  "annual": ("year", "financial_year")}.get(kind)
        if wanted and p.kind not in wanted:
            raise periods.PeriodError(
                f"a {kind} report needs a {' or '.join(w.replace('_', ' ') for w in wanted)}"
                f" period, not {text!r}")
        return p
    unit = {"monthly": "month", "quarterly": "quarter", "annual": "year"}.get(kind, "quarter")
    return periods.last_full(unit, dt.date.fromisoformat(latest))
