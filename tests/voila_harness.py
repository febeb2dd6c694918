"""Run the real Voila server (through ``ehkit serve``) and drive it in headless Chromium.

Shared by every browser test: the audit form, feedback, action tracker, sampling forms and
the security tests. Nothing is mocked: the server is ``python -m ehkit.cli serve`` in its own
process, the browser is Debian's chromium driven by Playwright.

Importing ``chromium_fixture`` and ``pages_fixture`` makes the ``chromium`` fixture (one
headless browser per test process) and the ``pages`` fixture (opens pages, closes them after
the test) available in the module. Typical use (one server per module, reused by its tests)::

    import pytest
    from voila_harness import VoilaServer, chromium_fixture, copy_db, pages_fixture  # noqa: F401

    pytestmark = pytest.mark.browser

    @pytest.fixture(scope="module")
    def server(demo_db_path, tmp_path_factory):
        work = tmp_path_factory.mktemp("voila")
        db = copy_db(demo_db_path, work / "ehkit.db")        # never write to the shared demo db
        with VoilaServer(db, notebook="audit", cwd=work) as s:  # started and ready
            yield s

    def test_something(server, pages):
        page = pages(server, wait_for=".ehkit-form")         # closed again after the test
        page.locator("button.ehkit-save").click()            # forms tag widgets ehkit-<name>
        wait_for_text(page, ".ehkit-messages", "Saved")

``VoilaServer(db, notebook=..., token=True|False, preheat=True|False, port=None, cwd=...,
env={...})``: ``.url`` (with the token), ``.base`` (without), ``.token``, ``.log()`` (server
output, for failure messages), ``.stop()``. ``token=False`` runs ``--no-token``.
``ready_timeout`` bounds the wait for the port and, with preheat, for the kernel pool.

``pages(server, **kw)`` / ``open_page(chromium, server, path="", query="",
wait_for=".jupyter-widgets", with_token=True)`` opens a
fresh browser context (no shared cookies) and returns a Playwright page once ``wait_for`` is
visible. Helpers: :func:`open_audit` (a saved audit opened on the audit form, by its
number), :func:`select_by_text` (ipywidgets dropdowns render spaces as no-break
spaces), :func:`click_choice` (a ToggleButtons choice by its exact label),
:func:`wait_for_text`, :func:`copy_db`. Pages open with ``locale="en-GB"`` (the browser's
language, as a British user's is).

Both back ends (issue 18): importing ``back_end_fixture`` gives the module-scoped ``back_end``
fixture ("sqlite", then "postgresql"); :func:`on_back_end` serves the SQLite store a test
built as it is, or its ``ehkit copy`` in a new database of the ``pg_server`` fixture (the
same ids), so a module builds its store once and its store tests run on each. :func:`rows`
reads either. Parametrize the tests that exercise the store, not the layout checks.

Accessibility (WCAG 2.2 AA): :func:`assert_accessible` runs axe-core (the copy the
``axe-playwright-python`` package ships, nothing downloaded) and fails on a critical or
serious violation; :func:`unnamed_controls` reads Chromium's accessibility tree for controls
a screen reader would announce without a name; :func:`open_file` opens a saved HTML file.
"""

from __future__ import annotations

import atexit
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pg import on_back_end  # noqa: F401 (the browser tests' too)

from bench.local_hub import free_port  # noqa: F401 (the tests' too)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
NBSP = "\xa0"


def copy_db(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a store safely (SQLite backup API: consistent even with a WAL beside it)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(src)) as a, sqlite3.connect(str(dest)) as b:
        a.backup(b)
    return dest


def notebook(path, *cells: str) -> Path:
    """A notebook of these code cells at ``path``, for a server to run (a bench's own pages)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return Path(path)


def rows(db: str | os.PathLike, sql: str, params=()) -> list[tuple]:
    """Read the store the browser wrote (closed afterwards): a SQLite file with plain
    sqlite3, a PostgreSQL URL through ehkit's connection (``?`` placeholders on both)."""
    if str(db).startswith("postgresql://"):
        from ehkit import db as store

        database = store.connect(str(db), must_exist=True, migrate=False)
        try:
            return [tuple(r) for r in database.execute(sql, list(params)).fetchall()]
        finally:
            database.close()
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


BACK_ENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module", params=BACK_ENDS, name="back_end")
def back_end_fixture(request) -> str:
    """The store's back end for the module's tests that take it: each runs on both."""
    return request.param


def work_on(back_end: str, demo_db_path, tmp_path_factory, request, name: str):
    """A module's (folder, store) on ``back_end``: on SQLite the module's own ``work``
    fixture; on PostgreSQL the demo store's ``ehkit copy`` and a folder of its own."""
    if back_end == "sqlite":
        return request.getfixturevalue("work")
    folder = tmp_path_factory.mktemp(f"{name}-pg")
    return folder, on_back_end(demo_db_path, back_end, request)


class VoilaServer:
    """``ehkit serve`` in a subprocess, on a free port, against ``db``."""

    def __init__(self, db: str | os.PathLike, *, notebook: str = "audit", token: bool = True,
                 preheat: bool = True, port: int | None = None,
                 cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                 ready_timeout: float = 90):
        # a SQLite file, or a PostgreSQL store's URL (then give cwd)
        self.db = db if str(db).startswith("postgresql://") else Path(db)
        self.notebook = notebook
        self.port = port or free_port()
        self.preheat = preheat
        self.cwd = Path(cwd) if cwd else self.db.parent
        self.ready_timeout = ready_timeout
        self.log_path = self.cwd / f"voila-{self.port}.log"
        self.url = ""
        self.token = ""
        cmd = [sys.executable, "-m", "ehkit.cli", "serve", "--db", str(self.db),
               "--port", str(self.port), "--notebook", notebook]
        if not token:
            cmd.append("--no-token")
        if not preheat:
            cmd.append("--no-preheat")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("EHKIT_DB", None)  # the --db argument decides
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=full_env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ehkit serve exited ({self.proc.returncode}):\n{self.log()}")
            text = self.log()
            m = re.search(r"at (http://\S+)", text)
            if m and not self.url:
                self.url = m.group(1)
                q = re.search(r"token=([^&\s]+)", self.url)
                self.token = q.group(1) if q else ""
            pool_ready = (not self.preheat) or "is filled with" in text
            if self.url and pool_ready and self._answers():
                return
            time.sleep(0.2)
        raise TimeoutError(f"Voila not ready after {self.ready_timeout}s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.base + "voila/api/shutdown/x", timeout=2)
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # this process only (it leads its own session)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> VoilaServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_playwright = None
_browser = None


def _close_browser() -> None:
    global _playwright, _browser
    if _browser is not None:
        try:
            _browser.close()
            _playwright.stop()
        except Exception:  # noqa: BLE001 - the process is ending anyway
            pass
    _playwright = _browser = None


def shared_browser():
    """The one headless Chromium of this process (Playwright's sync API allows one driver
    per thread, so every module importing the fixture must share it)."""
    global _playwright, _browser
    if _browser is None:
        from playwright.sync_api import sync_playwright

        _playwright = sync_playwright().start()
        _browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        atexit.register(_close_browser)
    return _browser


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture():
    """Headless Chromium, one per test process (xdist worker), shared by every module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (`make browser` installs Debian's chromium)")
    return shared_browser()


@pytest.fixture(name="pages")
def pages_fixture(chromium):
    """``pages(server, **open_page_kwargs)`` opens a page; all are closed after the test."""
    opened = []

    def make(server: VoilaServer, **kwargs):
        page = open_page(chromium, server, **kwargs)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.context.close()


def open_page(browser, server: VoilaServer, *, path: str = "", query: str = "",
              wait_for: str = ".jupyter-widgets", timeout_ms: float = 60_000,
              with_token: bool = True, locale: str = "en-GB"):
    """A fresh context and page on the server, returned once ``wait_for`` is visible."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=locale)
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    params = [f"token={server.token}"] if (with_token and server.token) else []
    if query:
        params.append(query)
    page.goto(server.base + path + ("?" + "&".join(params) if params else ""))
    if wait_for:
        page.wait_for_selector(wait_for, state="visible", timeout=timeout_ms)
    return page


def _norm(text: str) -> str:
    return " ".join(text.replace(NBSP, " ").split())


def select_by_text(page, css: str, contains: str) -> str:
    """Choose the first option of the <select> inside ``css`` whose label contains the text."""
    select = page.locator(f"{css} select").first
    labels = [_norm(t) for t in select.locator("option").all_inner_texts()]
    for i, label in enumerate(labels):
        if contains in label:
            select.select_option(index=i)
            return label
    raise AssertionError(f"no option containing {contains!r} in {css}: {labels[:20]}")


def click_choice(page, css: str, label: str) -> None:
    """Click the ToggleButtons choice labelled exactly ``label`` inside ``css``."""
    page.locator(css).first.get_by_role("button", name=label, exact=True).click()


def wait_for_text(page, css: str, text: str, timeout_ms: float = 30_000) -> str:
    """Wait until the element ``css`` contains ``text``; return its (normalised) text."""
    loc = page.locator(css).first
    deadline = time.monotonic() + timeout_ms / 1000
    seen = ""
    while time.monotonic() < deadline:
        seen = _norm(loc.inner_text()) if loc.count() else ""
        if text in seen:
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"{css} never showed {text!r}; it shows {seen!r}")


def open_file(browser, path: str | os.PathLike):
    """A saved HTML file (a printed record, a report) in a fresh context; close its context."""
    page = browser.new_context(locale="en-GB").new_page()
    page.goto(Path(path).resolve().as_uri())
    return page


# -- accessibility ---------------------------------------------------------------------------
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]  # axe-core's rule tags
SERIOUS = {"critical", "serious"}
# What a screen reader announces as something to operate or fill in.
CONTROL_ROLES = {"button", "checkbox", "combobox", "listbox", "menuitem", "radio", "searchbox",
                 "slider", "spinbutton", "switch", "tab", "textbox", "togglebutton"}


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.0-2.2 A and AA violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    return Axe().run(page, options=options).response["violations"]


def _described(violations: list[dict]) -> str:
    return "\n".join(f"  {v['impact']}: {v['id']} ({v['help']}) at "
                      + "; ".join(f"{n['target']} {n['html'][:120]}" for n in v["nodes"][:5])
                      for v in violations)


def assert_accessible(page, where: str) -> list[dict]:
    """No critical or serious axe violation on the page; the others are printed (they show
    in pytest's output for a failing test, or with ``-s``) and returned."""
    found = axe_violations(page)
    serious = [v for v in found if v["impact"] in SERIOUS]
    others = [v for v in found if v["impact"] not in SERIOUS]
    if others:
        print(f"axe, {where}: {len(others)} moderate or minor finding(s):\n{_described(others)}")
    assert not serious, f"axe, {where}: critical or serious violations:\n{_described(serious)}"
    # ipywidgets gives a label an unset tooltip as its title: the word "null" under a pointer
    nulls = page.locator('[title="null"]').count()
    assert not nulls, f"{where}: {nulls} label(s) titled \"null\" (forms.common.untitled)"
    return others


def unnamed_controls(page) -> list[str]:
    """Controls in Chromium's accessibility tree (what a screen reader reads) with no name,
    each described by its role and HTML."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        cdp.send("DOM.getDocument")  # lets DOM.getOuterHTML describe a node below
        bad = []
        for n in nodes:
            role = n.get("role", {}).get("value")
            if n.get("ignored") or role not in CONTROL_ROLES:
                continue
            if str(n.get("name", {}).get("value") or "").strip():
                continue
            html = ""
            if "backendDOMNodeId" in n:
                html = cdp.send("DOM.getOuterHTML",
                                {"backendNodeId": n["backendDOMNodeId"]})["outerHTML"][:160]
            bad.append(f"{role}: {html}")
        return bad
    finally:
        cdp.detach()


def open_audit(page, audit_id: int) -> None:
    """Open a saved audit on the audit form as a person does: its number under "Saved
    audits", Find, then the audit found."""
    page.locator(".ehkit-find-number input").fill(str(audit_id))
    page.locator("button.ehkit-find").click()
    wait_for_text(page, ".ehkit-found-said", "1 audit found")
    # A click can land before the found button's view is wired to its kernel (seen once in
    # a whole suite on each back end, under load): nothing happens, so a person clicks again.
    for attempt in range(3):
        page.locator(".ehkit-found button", has_text=f"Open no. {audit_id}:").click()
        try:
            wait_for_text(page, ".ehkit-state", f"Audit no. {audit_id}", timeout_ms=30_000)
            return
        except AssertionError:
            if attempt == 2:
                raise
