"""Run a report notebook with papermill and export it with nbconvert, in one process.

``run("quarterly", period="2026Q3", audience="board")`` executes
``notebooks/quarterly_report.ipynb`` with its parameters, exports HTML with the code hidden
(images embedded, HTML sanitised) and writes, side by side in ``reports/``:

- ``quarterly-2026Q3-board.html``: one self-contained file to email;
- ``quarterly-2026Q3-board.figures.csv``: every figure the report shows (key, label, value).

A notebook that fails keeps its executed copy in ``reports/failed/`` and the error names the
cell that failed.

``run_all("2026Q3")`` renders every report due for a period (:func:`due`) in parallel
processes, one per report (each executes and exports its own notebook), up to the number of
cores; one failing does not stop the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import access, home, jupyter_lean, periods, spreadsheet
from . import db as store
from .errors import EhkitError
from .presentation import FIGURES_MIME, TITLES, resolve_period

NOTEBOOKS = home.packaged("notebooks")  # ehkit's own; a working folder's come first
KINDS = ("monthly", "quarterly", "annual")
FIGURE_COLUMNS = ("key", "label", "value")


class ReportError(EhkitError):
    pass


@dataclass(frozen=True)
class Result:
    kind: str
    period: str
    audience: str
    html: Path
    figures: Path


def notebook_for(kind: str, notebooks: str | Path | None = None) -> Path:
    name = f"{kind}_report.ipynb"
    path = Path(notebooks) / name if notebooks else home.find("notebooks", name)
    if not path.exists():
        raise ReportError(f"no report notebook for {kind!r} (looked for {path})")
    return path


def _kernel_manager(socket_dir: str):
    """A kernel manager whose kernel talks over local sockets in ``socket_dir`` (IPC), not
    TCP ports: nothing listens on the network, and ipykernel has no "running over TCP
    without encryption" warning to print on the user's terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", os.path.join(socket_dir, "kernel"))
            super().__init__(**kw)

    return IPCKernelManager


def run(kind: str, *, db: str | Path | None = None, period: str | None = None,
        audience: str = "board", out_dir: str | Path = "reports",
        notebooks: str | Path | None = None) -> Result:
    jupyter_lean.leave_out_iri_parsers()
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .disclosure import audience as check_audience

    names = check_audience(audience).names
    notebook = notebook_for(kind, notebooks)
    db_path = store.location(db)
    database = store.connect(db_path, must_exist=True)
    try:
        access.require_report(database, names)
        label = resolve_period(database, kind, period).label
    finally:
        database.close()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{label}-{audience}"
    kernel_db, password = _password_apart(_for_kernel(db_path))
    params = {"db": kernel_db, "period": label, "audience": audience}
    # papermill writes the executed copy once it ends (not after every cell); it is kept,
    # in reports/failed/, only when a cell fails.
    # pinned: the kernel (in the notebook's folder, maybe the package's) uses this working folder
    with (tempfile.TemporaryDirectory(prefix="ehkit-kernel-") as work, home.pinned(),
          _environment(PGPASSWORD=password)):
        executed = Path(work) / f"{stem}.ipynb"
        try:
            nb = papermill.execute_notebook(
                str(notebook), str(executed), parameters=params, kernel_name="python3",
                progress_bar=False, cwd=str(notebook.parent), request_save_on_cell_execute=False,
                # the outputs are in: stop the kernel at once (a graceful stop now and then
                # waited seconds for it to exit)
                shutdown_kernel="immediate",
                kernel_manager_class=_kernel_manager(work),
            )
        except PapermillExecutionError as e:
            kept = out / "failed" / executed.name
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(executed, kept)
            first = next((ln for ln in (e.source or "").splitlines() if ln.strip()), "")
            raise ReportError(
                f"{notebook.name} failed in cell {e.exec_count} [{first.strip()[:60]}] "
                f"({e.ename}: {e.evalue}); the executed notebook is kept at {kept}"
            ) from None
    figures = collect_figures(nb)
    html = export_html(nb, title=f"{TITLES.get(kind, kind)}: {label}")
    html_path, figures_path = out / f"{stem}.html", out / f"{stem}.figures.csv"
    html_path.write_text(html, encoding="utf-8")
    spreadsheet.write_csv(figures_path, FIGURE_COLUMNS,
                          ([f[k] for k in FIGURE_COLUMNS] for f in figures), excel=False)
    return Result(kind, label, audience, html_path, figures_path)


def _for_kernel(where: str | Path) -> str:
    """The store as another process finds it: a URL as it is, a file by its whole path."""
    return where if isinstance(where, str) else str(where.resolve())


def _password_apart(where: str) -> tuple[str, str | None]:
    """A PostgreSQL URL without its password, and the password (given to the kernel in
    PGPASSWORD): a notebook kept when it fails holds its parameters."""
    if not store.postgres_url(where):
        return where, None
    from .postgres import password_apart

    return password_apart(where)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """These variables set for the block (None: left as they are), as they were after."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in before.items():
            if values[k] is not None:
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


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
# Charts are image outputs (SVG), which the template embeds as images.
SAFE_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "footer",
             "h1", "h2", "h3", "h4", "i", "li", "ol", "p", "section", "small", "span", "strong",
             "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
SAFE_ATTRIBUTES = {"*": {"class"}, "td": {"class", "colspan", "rowspan"},
                   "th": {"class", "colspan", "rowspan", "scope"}, "abbr": {"title"}}


def clean_html(element) -> str:
    """Sanitise report HTML with the tags a report needs. nh3 (Rust's ammonia): bleach, which
    nbconvert uses, is deprecated upstream, and took ten times the CPU on a quarterly
    report's tables (0.07 s of 0.45 s of its own work, bench/RESULTS.md). A tag not allowed
    goes, and a script's or style's content with it; text stays escaped."""
    import nh3

    text = element.decode() if isinstance(element, bytes) else str(element)
    return nh3.clean(text, tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES,
                     url_schemes={"https", "mailto"}, strip_comments=True, link_rel=None)


REPORT_TEMPLATES = Path(__file__).with_name("nbconvert")


def export_html(nb, title: str) -> str:
    """One self-contained HTML file: code hidden, images embedded, HTML sanitised."""
    from .exporter import ReportExporter

    exporter = ReportExporter()
    nb.metadata["title"] = title
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


# -- every report due for a period, in parallel ---------------------------------------------
@dataclass(frozen=True)
class Job:
    kind: str
    period: str
    audience: str


@dataclass(frozen=True)
class Outcome:
    job: Job
    result: Result | None = None
    error: str | None = None


def due(period: str | periods.Period) -> list[Job]:
    """The reports due for a period: for a quarter, the Head of Service's report for each of
    its months, the quarterly report for the Early Help Board and for the LSCB, and the
    LSCB's annual report when the quarter closes a calendar year. A month gives its monthly
    report; a year (or financial year) every report of its quarters and the annual one."""
    p = periods.parse(period) if isinstance(period, str) else period
    if p.kind == "month":
        return [Job("monthly", p.label, "head_of_service")]
    if p.kind == "quarter":
        jobs = [Job("monthly", m.label, "head_of_service") for m in p.months()]
        jobs += [Job("quarterly", p.label, a) for a in ("board", "lscb")]
        if p.end.month == 12:  # the quarter closes the (calendar) year
            jobs.append(Job("annual", str(p.start.year), "lscb"))
        return jobs
    jobs = [j for q in p.quarters() for j in due(q) if j.kind != "annual"]
    return jobs + [Job("annual", p.label, "lscb")]


def _run_job(job: Job, db: str, out_dir: str, notebooks: str | None) -> Outcome:
    try:
        return Outcome(job, result=run(job.kind, db=db, period=job.period,
                                       audience=job.audience, out_dir=out_dir,
                                       notebooks=notebooks))
    except EhkitError as e:
        return Outcome(job, error=str(e))
    except Exception as e:  # a bug in one report must not stop the others
        return Outcome(job, error=f"{type(e).__name__}: {e}")


def run_all(period: str, *, db: str | Path | None = None, out_dir: str | Path = "reports",
            notebooks: str | Path | None = None, jobs: int | None = None,
            progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Render every report due for ``period`` in parallel processes (at most ``jobs``,
    default the number of cores). Returns one Outcome per report, in :func:`due` order;
    ``progress`` is called as each finishes."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    todo = due(period)
    db_path = store.location(db)
    store.connect(db_path, must_exist=True).close()  # migrate once, before the workers
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    args = (_for_kernel(db_path), str(out_dir), str(notebooks) if notebooks else None)
    done: dict[Job, Outcome] = {}
    # spawn: a clean interpreter per worker (no forked threads or open database handles)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_run_job, job, *args): job for job in todo}
        for f in as_completed(futures):
            try:
                outcome = f.result()
            except Exception as e:  # the worker process itself died
                outcome = Outcome(futures[f], error=f"{type(e).__name__}: {e}")
            done[outcome.job] = outcome
            if progress:
                progress(outcome)
    return [done[j] for j in todo]


def summary_table(outcomes: list[Outcome]) -> str:
    """The files written (and the failures) as a plain-text table."""
    rows = [("report", "period", "audience", "files written")]
    for o in outcomes:
        files = (f"{o.result.html}\n{o.result.figures}" if o.result
                 else f"FAILED: {o.error}")
        lines = files.split("\n")
        rows.append((o.job.kind, o.job.period, o.job.audience, lines[0]))
        rows += [("", "", "", extra) for extra in lines[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 13)
    return "\n".join(out)
