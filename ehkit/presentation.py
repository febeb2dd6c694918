"""What a report notebook calls to show things: header, figure tables, charts, footer.

A notebook makes one :class:`Report` from its parameters and calls its methods; each method
displays escaped HTML or an embedded PNG, applies the audience's disclosure control, and
records every figure it shows, so the runner can write a figures file holding exactly what
the report shows (emitted as a hidden output of type FIGURES_MIME by :meth:`Report.footer`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence

from markupsafe import escape

from . import __version__, disclosure, metrics, periods
from . import db as store
from . import template as templates
from .metrics import Figure

FIGURES_MIME = "application/vnd.ehkit.figures+json"

TITLES = {
    "monthly": "Early Help audit report to the Head of Service",
    "quarterly": "Early Help quality assurance: quarterly report",
    "annual": "Early Help quality assurance: annual report",
}

def _html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(f'<div class="ehkit">{markup}</div>'))


def show_png(fig) -> None:
    """Display a chart as an image/png output: nbconvert embeds it, so the HTML is one file."""
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    display(Image(data=buf.getvalue(), format="png"))


class Report:
    def __init__(self, kind: str, *, db: str | None, period: str | None, audience: str,
                 template: str = templates.DEFAULT_TEMPLATE):
        self.kind = kind
        self.db_path = store.db_path(db)
        self.db = store.connect(self.db_path, must_exist=True)
        self.period = resolve_period(self.db, kind, period)
        self.audience = disclosure.audience(audience)
        self.template = templates.load(template)
        self.parameters = {"db": str(self.db_path), "period": self.period.label,
                           "audience": self.audience.key, "template": self.template.key}
        self.shown: list[dict] = []

    # -- text -----------------------------------------------------------------------------
    def header(self) -> None:
        _html(f"""<h1>{escape(TITLES.get(self.kind, self.kind.title()))}</h1>
<p class="sub"><strong>Period:</strong> {escape(self.period.title)}
&nbsp;·&nbsp; <strong>For:</strong> {escape(self.audience.label)}</p>""")

    def section(self, title: str, note: str | None = None) -> None:
        body = f'<h2 class="ehkit-section">{escape(title)}</h2>'
        if note:
            body += f'<p class="note">{escape(note)}</p>'
        _html(body)

    def definitions(self, keys: Iterable[str] | None = None) -> None:
        keys = list(keys or metrics.DEFINITIONS)
        items = "".join(f"<li>{escape(metrics.DEFINITIONS[k])}</li>" for k in keys)
        suppression = ""
        if self.audience.suppress:
            suppression = (f"<li>Counts from 1 to {self.audience.threshold} are shown as "
                           f"<strong>{disclosure.SUPPRESSED}</strong> to protect families; a "
                           "percentage built on such a count is suppressed too.</li>")
        _html(f"<h3>How these figures are defined</h3><ul class='note'>{items}{suppression}</ul>")

    # -- figures --------------------------------------------------------------------------
    def shown_value(self, f: Figure) -> str:
        """The figure as this audience sees it (suppression applied), and record it."""
        hidden = self.audience.hides(f.value if f.kind == "count" else None) or (
            f.kind == "percent" and (self.audience.hides(f.numerator)
                                     or self.audience.hides(f.denominator)))
        text = disclosure.SUPPRESSED if hidden else f.display
        self.shown.append({"key": f.key, "label": f.label,
                           "value": disclosure.SUPPRESSED if hidden else
                           ("" if f.value is None else f.value)})
        return text

    def table(self, figures: Sequence[Figure], title: str | None = None) -> None:
        rows = "".join(
            f"<tr><td>{escape(f.label)}</td><td class='num'>{escape(self.shown_value(f))}</td></tr>"
            for f in figures
        )
        head = f"<h3>{escape(title)}</h3>" if title else ""
        _html(f"{head}<table><thead><tr><th>Figure</th><th>Value</th></tr></thead>"
              f"<tbody>{rows}</tbody></table>")

    def grid(self, title: str, row_labels: Sequence[str], col_labels: Sequence[str],
             cells: Sequence[Sequence[Figure]]) -> None:
        """A table of figures: one row per row label, one column per column label."""
        head = "".join(f"<th>{escape(c)}</th>" for c in col_labels)
        body = "".join(
            f"<tr><td>{escape(r)}</td>"
            + "".join(f"<td class='num'>{escape(self.shown_value(f))}</td>" for f in row)
            + "</tr>"
            for r, row in zip(row_labels, cells, strict=True)
        )
        _html(f"<h3>{escape(title)}</h3><table><thead><tr><th></th>{head}</tr></thead>"
              f"<tbody>{body}</tbody></table>")

    def chart(self, fig, alt: str, figures: Sequence[Figure] = ()) -> None:
        """Show a chart, unless any figure it draws is suppressed for this audience."""
        if any(self.audience.hides(f.value) for f in figures if f.kind == "count"):
            _html(f"<p class='note'>Chart not shown: it would reveal small numbers "
                  f"({escape(alt)}).</p>")
            return
        show_png(fig)

    # -- provenance -------------------------------------------------------------------------
    def footer(self) -> None:
        from IPython.display import display

        imports = list(self.db.query(
            "SELECT file_name, sha256, imported_at FROM imports ORDER BY id DESC LIMIT 3"))
        source = "; ".join(f"{i['file_name']} (sha256 {i['sha256'][:12]}, {i['imported_at']})"
                           for i in imports) or "no imported files (generated or entered data)"
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items() if k != "db")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        _html(f"""<footer>Generated by ehkit {escape(__version__)} on {escape(now)} ·
audit tool: {escape(self.template.title)} (template {escape(self.template.key)}
v{escape(self.template.version)}) · parameters: {escape(params)} ·
data fingerprint {escape(store.data_fingerprint(self.db))} · latest imports: {escape(source)}
</footer>""")
        display({FIGURES_MIME: json.dumps(self.shown)}, raw=True)


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


# -- blocks: a titled piece of a report (figures, table and chart) -----------------------------
def episodes_block(report: Report) -> None:
    report.section("Early help assessments",
                   "Open and closed early help assessments, outcomes, step-up and step-down.")
    report.table(metrics.episode_figures(report.db, report.period))


def sectors_block(report: Report) -> None:
    from . import charts

    figs = metrics.by_sector(report.db, report.period)
    sectors = [f.label.split(": ", 1)[1] for f in figs[::2]]
    report.grid("Assessments by lead agency sector", sectors,
                ["Open at period end", "Closed in period"],
                [figs[i:i + 2] for i in range(0, len(figs), 2)])
    opened = figs[::2]
    report.chart(charts.bars("Open assessments at period end, by lead agency sector", sectors,
                             [f.value for f in opened], xlabel="Lead agency sector",
                             ylabel="Open assessments"),
                 "open assessments by sector", opened)


def quality_block(report: Report) -> None:
    from . import charts

    report.section("Quality of practice",
                   "From case audits submitted or moderated in the period.")
    report.table(metrics.quality_figures(report.db, report.period, report.template.key))
    figs = metrics.grade_distribution(report.db, report.period, report.template.key)
    tpl = report.template
    keys = [s.key for s in tpl.graded_sections] + [templates.OVERALL]
    titles = [s.label for s in tpl.graded_sections] + ["Overall grading"]
    n = len(tpl.grades)
    cells = [figs[i * n:(i + 1) * n] for i in range(len(keys))]
    report.grid("Grades given, by audit section", titles, [g.label for g in tpl.grades], cells)
    if sum(f.value for f in figs) == 0:
        _html("<p class='note'>No audits in this period.</p>")
        return
    counts = {(t, int(f.key.rsplit(".", 1)[1])): f.value
              for t, row in zip(titles, cells, strict=True) for f in row}
    report.chart(charts.stacked_grades("How practice was graded in each section", titles,
                                       [(g.value, g.label) for g in tpl.grades], counts),
                 "grade distribution by section", figs)
