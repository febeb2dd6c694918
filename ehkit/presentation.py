"""What a report notebook calls to show things: header, figure tables, grids, lists, charts,
footer.

A notebook makes one :class:`Report` from its parameters and calls blocks
(``ehkit.report_blocks``) that call its methods; each method displays escaped HTML or an
embedded PNG, applies the audience's disclosure control, and records every figure it shows,
so the runner can write a figures file holding exactly what the report shows (emitted as a
hidden output of type FIGURES_MIME by :meth:`Report.footer`).

Disclosure control lives here once for every report: a count from 1 to the threshold, a
cell chosen by secondary suppression (``disclosure.protect``) and any figure already
suppressed in an earlier table print ``c``; a percentage, median or ratio over a suppressed
count is suppressed too. A figure shown in two tables (a grid's total and a headline figure)
has one key, so it is suppressed in both or in neither.
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
from .metrics import TOTAL, Figure, Grid

FIGURES_MIME = "application/vnd.ehkit.figures+json"

TITLES = {
    "monthly": "Early Help audit report to the Head of Service",
    "quarterly": "Early Help quality assurance: quarterly report",
    "annual": "Early Help quality assurance: annual report",
}
NO_AUDITS = "No audits in this period."


def _html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(f'<div class="ehkit">{markup}</div>'))


def show_png(fig, alt: str = "") -> None:
    """Display a chart as an image/png output: nbconvert embeds it, so the HTML is one file.
    ``alt`` (default: the chart's title) is the image's text for screen readers."""
    from IPython.display import Image, display

    if not alt and fig.axes:
        alt = fig.axes[0].get_title(loc="left") or fig.axes[0].get_title()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    display(Image(data=buf.getvalue(), format="png", metadata={"alt": alt or "Chart"}))


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
        self.published: set[str] = set()  # keys shown with their value
        self.hidden: set[str] = set()  # keys shown as "c"

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

    def note(self, text: str) -> None:
        _html(f"<p class='note'>{escape(text)}</p>")

    def definitions(self, keys: Iterable[str] | None = None) -> None:
        keys = list(keys or metrics.DEFINITIONS)
        items = "".join(f"<li>{escape(metrics.DEFINITIONS[k])}</li>" for k in keys)
        suppression = ""
        if self.audience.suppress:
            suppression = (f"<li>Counts from 1 to {self.audience.threshold} are shown as "
                           f"<strong>{disclosure.SUPPRESSED}</strong> to protect families, and "
                           "so is any other count that would let one be worked out from a "
                           "total; a percentage, median or ratio built on such a count is "
                           "suppressed too. A true zero is shown as 0.</li>")
        _html(f"<h3>How these figures are defined</h3><ul class='note'>{items}{suppression}</ul>")

    # -- disclosure ------------------------------------------------------------------------
    def is_hidden(self, f: Figure) -> bool:
        """Is this figure suppressed for this audience (primary, or hidden earlier)?"""
        if not self.audience.suppress:
            return False
        if f.key in self.hidden:
            return True
        if f.kind == "count":
            return self.audience.hides(f.value)
        # A share and its complement (acceptable / unacceptable) give each other away.
        rest = (f.denominator - f.numerator if f.key.split("@")[0] in metrics.COMPLEMENTARY
                and f.numerator is not None and f.denominator is not None else None)
        return (self.audience.hides(f.numerator) or self.audience.hides(f.denominator)
                or self.audience.hides(rest) or f"{f.key}:numerator" in self.hidden)

    def shown_value(self, f: Figure, hidden: bool | None = None) -> str:
        """The figure as this audience sees it (suppression applied), and record it."""
        hidden = self.is_hidden(f) if hidden is None else hidden
        if hidden:
            self.hidden.add(f.key)
        else:
            self.published.add(f.key)
            if f.kind == "percent" and f.value is not None:
                self.published.add(f"{f.key}:numerator")
        self.shown.append({"key": f.key, "label": f.label,
                           "value": disclosure.SUPPRESSED if hidden else
                           ("" if f.value is None else f.value)})
        return disclosure.SUPPRESSED if hidden else f.display

    def grid_hidden(self, grid: Grid) -> set[str]:
        """The keys of the grid's figures to suppress: primary, secondary (no suppressed cell
        recoverable from the totals shown, nor from a percentage's numerator), and any
        figure hidden earlier in the report."""
        if not self.audience.suppress:
            return set()
        values, keys, lines = {}, {}, []
        for r in grid.row_keys:
            for c in grid.col_keys:
                f = grid.figure(r, c)
                values[(r, c)], keys[(r, c)] = f.value, f.key
        lines += disclosure.grid_lines([r for r, _ in grid.rows], [c for c, _ in grid.cols],
                                       row_totals=grid.row_totals, col_totals=grid.col_totals)
        all_cols = {c for c, _ in grid.cols}
        known = set()
        for r in grid.row_keys:
            shares = []
            for pc in grid.percents:
                f = grid.percent_figure(r, pc)
                cell = (r, f"%{pc.key}")
                values[cell], keys[cell] = f.numerator, f"{f.key}:numerator"
                lines.append(disclosure.Line(tuple((r, c) for c in pc.numerator), cell))
                if pc.denominator == TOTAL and grid.row_totals:
                    shares.append((cell, set(pc.numerator)))
                if f.key in self.published:  # its numerator and denominator are known
                    known |= {cell, (r, pc.denominator)}
            # shares that split the whole row (acceptable + unacceptable) add up to its total
            if len(shares) == 2 and shares[0][1] | shares[1][1] == all_cols \
                    and not shares[0][1] & shares[1][1]:
                lines.append(disclosure.Line((shares[0][0], shares[1][0]), (r, TOTAL)))
        # A cell that is a headline share's numerator is known when that share was shown.
        for cell, pct in grid.numerator_of.items():
            if cell in values and f"{pct}:numerator" in self.published:
                known.add(cell)
        # Figures suppressed earlier stay suppressed; those published are known to readers.
        forced = {cell for cell, k in keys.items() if k in self.hidden}
        forced |= {cell for cell, pct in grid.numerator_of.items()
                   if cell in values and f"{pct}:numerator" in self.hidden}
        fixed = {cell for cell, k in keys.items() if k in self.published} | known
        threshold = self.audience.threshold
        marked = dict(values)
        for cell in forced:
            marked[cell] = 1  # treat as a primary suppression
        hidden = disclosure.protect(marked, lines, threshold, fixed=fixed - forced)
        return {keys[c] for c in hidden}

    # -- figures --------------------------------------------------------------------------
    def table(self, figures: Sequence[Figure], title: str | None = None) -> None:
        rows = "".join(
            f"<tr><td>{escape(f.label)}</td><td class='num'>{escape(self.shown_value(f))}</td></tr>"
            for f in figures
        )
        head = f"<h3>{escape(title)}</h3>" if title else ""
        _html(f"{head}<table><thead><tr><th>Figure</th><th>Value</th></tr></thead>"
              f"<tbody>{rows}</tbody></table>")

    def grid(self, grid: Grid, title: str | None = None) -> set[str]:
        """Show a grid with its totals and percentages; returns the keys suppressed."""
        hidden = self.grid_hidden(grid)
        for cell, pct in grid.numerator_of.items():  # a later share on it is hidden too
            if cell[0] in grid.row_keys and grid.figure(*cell).key in hidden:
                self.hidden.add(f"{pct}:numerator")
        cols = [grid._label(c, grid.cols) for c in grid.col_keys] + [p.label for p in grid.percents]
        head = "".join(f"<th>{escape(c)}</th>" for c in cols)
        body, suppressed = "", set()
        for r in grid.row_keys:
            cells = []
            for c in grid.col_keys:
                f = grid.figure(r, c)
                off = f.key in hidden or self.is_hidden(f)
                cells.append(self.shown_value(f, off))
                suppressed |= {f.key} if off else set()
            for pc in grid.percents:
                f = grid.percent_figure(r, pc)
                den = grid.figure(r, pc.denominator).key
                off = (f"{f.key}:numerator" in hidden or den in hidden or f.key in hidden
                       or self.is_hidden(f))
                if off:
                    self.hidden.add(f"{f.key}:numerator")
                    suppressed.add(f.key)
                cells.append(self.shown_value(f, off))
            cls = " class='total'" if r == TOTAL else ""
            body += (f"<tr{cls}><td>{escape(grid._label(r, grid.rows))}</td>"
                     + "".join(f"<td class='num'>{escape(v)}</td>" for v in cells) + "</tr>")
        _html(f"<h3>{escape(title or grid.title)}</h3><table><thead><tr>"
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
        _html(f"<h3>{escape(title)}</h3><table><thead><tr><th>{escape(corner)}</th>{head}</tr>"
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
        _html(f"<h3>{escape(title)}</h3><table><thead><tr><th>Figure</th>{head}</tr></thead>"
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
            _html(f"<h3>{escape(title)}</h3><p class='note'>{escape(empty)}</p>")
            return
        if not (self.audience.names or public):
            n = self.shown_value(metrics.count(f"list.{metrics.slug(title)}", title, len(rows)))
            _html(f"<h3>{escape(title)}</h3><p class='note'>{escape(n)} listed in the Head of "
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
        _html(f"<h3>{escape(title)}</h3><table class='list'><thead><tr>{head}</tr></thead>"
              f"<tbody>{body}</tbody></table>{rest}")

    # -- charts ------------------------------------------------------------------------------
    def chart(self, fig, alt: str, figures: Sequence[Figure] = ()) -> None:
        """Show a chart, unless any figure it draws is suppressed for this audience."""
        if any(f.key in self.hidden or self.is_hidden(f) for f in figures):
            _html(f"<p class='note'>Chart not shown: it would reveal small numbers "
                  f"({escape(alt)}).</p>")
            return
        show_png(fig)

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
        _html(f"""<footer>Generated by ehkit {escape(__version__)} on {escape(now)} ·
audit tool: {escape(self.template.title)} (template {escape(self.template.key)}
v{escape(self.template.version)}) · parameters: {escape(params)} ·
data fingerprint {escape(store.data_fingerprint(self.db))} · latest imports: {escape(source)}
</footer>""")
        seen, shown = set(), []
        for row in self.shown:  # a figure shown in two tables is one row of the file
            if row["key"] not in seen:
                seen.add(row["key"])
                shown.append(row)
        display({FIGURES_MIME: json.dumps(shown)}, raw=True)


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
