"""Run a report notebook with papermill and export it with nbconvert, in one process.

``run("quarterly", period="2026Q3", audience="board")`` executes
``notebooks/quarterly_report.ipynb`` with its parameters, exports HTML with the code hidden
(images embedded, HTML sanitised) and writes, side by side in ``reports/``:

- ``quarterly-2026Q3-board.html``: one self-contained file to email;
- ``quarterly-2026Q3-board.figures.csv``: every figure the report shows (key, label, value).

A notebook that fails keeps its executed copy in ``reports/failed/`` and the error names the
cell that failed.
"""

from __future__ import annotations

import contextlib
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from . import db as store
from .errors import EhkitError
from .presentation import FIGURES_MIME, TITLES, resolve_period

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KINDS = ("monthly", "quarterly", "annual")


class ReportError(EhkitError):
    pass


@dataclass(frozen=True)
class Result:
    kind: str
    period: str
    audience: str
    html: Path
    figures: Path


def notebook_for(kind: str) -> Path:
    path = NOTEBOOKS / f"{kind}_report.ipynb"
    if not path.exists():
        raise ReportError(f"no report notebook for {kind!r} (looked for {path})")
    return path


def run(kind: str, *, db: str | Path | None = None, period: str | None = None,
        audience: str = "board", out_dir: str | Path = "reports") -> Result:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .disclosure import audience as check_audience

    check_audience(audience)
    notebook = notebook_for(kind)
    db_path = store.db_path(db)
    database = store.connect(db_path, must_exist=True)
    try:
        label = resolve_period(database, kind, period).label
    finally:
        database.close()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{label}-{audience}"
    params = {"db": str(db_path.resolve()), "period": label, "audience": audience}
    # papermill saves the executed copy as it goes; it is kept only when a cell fails.
    kept = out / "failed" / f"{stem}.ipynb"
    kept.parent.mkdir(exist_ok=True)
    try:
        nb = papermill.execute_notebook(
            str(notebook), str(kept), parameters=params, kernel_name="python3",
            progress_bar=False, cwd=str(NOTEBOOKS),
        )
    except PapermillExecutionError as e:
        raise ReportError(
            f"{notebook.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); "
            f"the executed notebook is kept at {kept}"
        ) from None
    kept.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        kept.parent.rmdir()  # only when empty
    figures = collect_figures(nb)
    html = export_html(nb, title=f"{TITLES.get(kind, kind)}: {label}")
    html_path, figures_path = out / f"{stem}.html", out / f"{stem}.figures.csv"
    html_path.write_text(html, encoding="utf-8")
    with figures_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["key", "label", "value"])
        w.writeheader()
        w.writerows(figures)
    return Result(kind, label, audience, html_path, figures_path)


def collect_figures(nb) -> list[dict]:
    """Take the figures the notebook recorded out of its outputs (and drop those outputs)."""
    figures: list[dict] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if FIGURES_MIME in data:
                payload = data[FIGURES_MIME]
                figures.extend(json.loads(payload) if isinstance(payload, str) else payload)
            else:
                kept.append(output)
        cell["outputs"] = kept
    return figures


# What report HTML may contain after sanitising: structure and text, nothing that runs.
# Charts are image/png outputs, which nbconvert embeds itself.
SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "footer",
             "h1", "h2", "h3", "h4", "i", "li", "ol", "p", "section", "small", "span", "strong",
             "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"]
SAFE_ATTRIBUTES = {"*": ["class"], "td": ["class", "colspan", "rowspan"],
                   "th": ["class", "colspan", "rowspan", "scope"], "abbr": ["title"]}


def clean_html(element) -> str:
    """Sanitise report HTML (bleach, as nbconvert does) with the tags a report needs."""
    import bleach

    text = element.decode() if isinstance(element, bytes) else str(element)
    return bleach.clean(text, tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES,
                        protocols=["https", "mailto"], strip_comments=True)


REPORT_TEMPLATES = Path(__file__).with_name("nbconvert")


def export_html(nb, title: str) -> str:
    """One self-contained HTML file: code hidden, images embedded, HTML sanitised."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        # nbconvert's own clean_html allows no headings or paragraphs; ours allows structure
        # and still nothing that runs.
        filters={"clean_html": clean_html},
        template_name="ehkit_report",
        extra_template_basedirs=[str(REPORT_TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        sanitize_html=True,
        embed_images=True,
    )
    nb.metadata["title"] = title
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body
