"""The web app is closed by default: tested against the real `ehkit serve` (Voila) server.

No notebook source and no .py file is served; `/static/` path traversal is refused; without
the token there is no form; an error inside a callback shows a friendly message with no
traceback, path or code; two pages saving at the same moment both get their audit stored.
"""

from __future__ import annotations

import http.client
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    chromium_fixture,
    copy_db,
    free_port,
    pages_fixture,
    select_by_text,
    wait_for_text,
)

import ehkit

pytestmark = pytest.mark.browser
FORM = ".ehkit-grade-pre_eha"
NOTEBOOK_SOURCE = "from ehkit.forms.audit import audit_app"  # a line of notebooks/audit.ipynb
DB_PY_SOURCE = "def chain_hash("  # a line of ehkit/db.py
PACKAGE = Path(ehkit.__file__).parent


@pytest.fixture(scope="module")
def work(demo_db_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    return folder, copy_db(demo_db_path, folder / "ehkit.db")


@pytest.fixture(scope="module")
def server(work):
    folder, db = work
    with VoilaServer(db, notebook="audit", cwd=folder) as s:  # the shipped defaults
        yield s


def get(server, path: str, *, token: bool = True) -> tuple[int, str, str]:
    """GET exactly ``path`` (no client-side normalising of '..'); status, Location, body."""
    if token:
        path += ("&" if "?" in path else "?") + f"token={server.token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Location") or "", r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def follow(server, path: str, *, token: bool = True, hops: int = 5) -> tuple[int, str]:
    """Follow redirects; a redirect to the login page counts as refused (403)."""
    status, location, body = get(server, path, token=token)
    while status in (301, 302, 303, 307, 308) and hops:
        if location.startswith("/login"):
            return 403, get(server, location, token=False)[2]
        status, location, body = get(server, location, token=token)
        hops -= 1
    return status, body


def test_server_listens_on_localhost_only_with_a_token(server):
    assert server.url.startswith("http://127.0.0.1:") and len(server.token) >= 24
    from ehkit import serve
    argv = serve.configure(server.db, port=free_port()).argv()  # the shipped defaults
    assert "--Voila.ip=127.0.0.1" in argv and "--show_tracebacks=False" in argv
    assert "--strip_sources=True" in argv
    assert "--token=" not in argv and any(a.startswith("--token=") for a in argv)


def test_voila_is_new_enough_to_refuse_static_traversal():
    from importlib.metadata import version
    major, minor, patch = (int(x) for x in version("voila").split(".")[:3])
    assert (major, minor, patch) >= (0, 5, 6)


@pytest.mark.parametrize("path", [
    "/voila/files/audit.ipynb", "/audit.ipynb", "/voila/render/audit.ipynb",
    "/api/contents/audit.ipynb", "/files/audit.ipynb", "/notebooks/audit.ipynb",
    "/tree", "/lab", "/edit/audit.ipynb", "/nbconvert/html/audit.ipynb",
    "/nbconvert/script/audit.ipynb",
])
def test_the_notebooks_source_is_refused(server, path):
    status, body = follow(server, path)
    assert status in (403, 404), (path, status)
    assert NOTEBOOK_SOURCE not in body


@pytest.mark.parametrize("path", [
    "/voila/files/../ehkit/db.py", "/voila/files/..%2fehkit%2fdb.py", "/ehkit/db.py",
    "/voila/files/ehkit/db.py", f"/voila/files/{quote(str(PACKAGE / 'db.py'))}",
    "/api/contents/../ehkit/db.py", "/files/../ehkit/db.py",
])
def test_a_python_file_is_refused(server, path):
    status, body = follow(server, path)
    assert status in (403, 404), (path, status)
    assert DB_PY_SOURCE not in body


@pytest.mark.parametrize("path", [
    "/static/../ehkit/db.py", "/static/..%2f..%2fehkit%2fdb.py",
    "/voila/static/../../ehkit/db.py", "/voila/static/..%2f..%2f..%2fehkit%2fdb.py",
    "/voila/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    f"/voila/static/{quote(str(PACKAGE / 'db.py'), safe='')}",
])
@pytest.mark.parametrize("token", [True, False], ids=["with-token", "no-token"])
def test_static_path_traversal_is_refused(server, path, token):
    status, body = follow(server, path, token=token)
    # Voila >= 0.5.6 answers 403 ("not in root static directory"); never the file.
    assert status in (403, 404), (path, status)
    assert DB_PY_SOURCE not in body and "root:x:0:0" not in body


def test_without_the_token_the_form_is_refused(server, chromium):
    status, location, body = get(server, "/", token=False)
    assert status in (302, 403) and "widget" not in body
    assert status == 403 or location.startswith("/login")
    status, _, body = get(server, "/?token=wrong-token", token=False)
    assert status in (302, 403) and "widget" not in body
    for path in ("/api/kernels", "/api/sessions", "/voila/api/shutdown/x"):
        assert get(server, path, token=False)[0] in (302, 403, 404), path
    # And in a browser: a login page asking for a token, no form.
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(server.base)
        page.wait_for_load_state("networkidle")
        assert page.locator(FORM).count() == 0
        assert "token" in page.content().lower()
    finally:
        context.close()


def free_case(db: Path, offset: int) -> dict:
    """An open episode of the demo store and an auditor free of any conflict of interest."""
    with sqlite3.connect(str(db)) as con:
        eps = con.execute(
            "SELECT e.id, e.ehm_number, e.lead_professional_id, e.team_manager_id,"
            " lp.line_manager_id FROM episodes e JOIN practitioners lp"
            " ON lp.id = e.lead_professional_id WHERE e.status = 'open'"
            " AND e.start_date < '2026-09-01' AND (SELECT count(*) FROM episodes x"
            " WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY e.id DESC").fetchall()
        ep = eps[offset]
        people = [r for r in con.execute("SELECT id, name FROM practitioners"
                                         " WHERE is_auditor = 1 ORDER BY name, id")
                  if r[0] not in set(ep[2:])]
    return {"episode_id": ep[0], "ehm": ep[1], "auditor": people[0]}


def ready(page) -> None:
    page.wait_for_selector(f"{FORM} button")
    page.wait_for_function(
        "document.querySelectorAll('.ehkit-auditor1 select option').length > 1")


def fill_case(page, case: dict, date: str = "2026-10-20") -> None:
    page.locator(".ehkit-date-audit_date input").fill(date)
    select_by_text(page, ".ehkit-auditor1", case["auditor"][1])
    page.locator(".ehkit-ehm_number input").fill(case["ehm"])
    wait_for_text(page, ".ehkit-case-lead_professional", " ")


def _boom_trigger(db: Path) -> None:
    """Make every new audit fail inside SQLite with a message full of internals."""
    con = sqlite3.connect(str(db))
    try:
        con.execute("CREATE TRIGGER IF NOT EXISTS test_boom BEFORE INSERT ON audits BEGIN"
                    " SELECT RAISE(ABORT, 'boom at /srv/secret/ehkit/db.py line 42'); END")
        con.commit()
    finally:
        con.close()


def _drop_boom(db: Path) -> None:
    con = sqlite3.connect(str(db))
    try:
        con.execute("DROP TRIGGER IF EXISTS test_boom")
        con.commit()
    finally:
        con.close()


def test_an_error_inside_a_callback_shows_a_friendly_message_only_and_no_source(server, pages,
                                                                               work):
    _, db = work
    case = free_case(db, 5)
    page = pages(server, wait_for=FORM)
    ready(page)
    fill_case(page, case)
    _boom_trigger(db)
    try:
        page.locator("button.ehkit-save").click()
        msg = wait_for_text(page, ".ehkit-messages", "Something went wrong")
        page.wait_for_timeout(500)  # anything the kernel would print arrives by now
        shown = page.locator("body").inner_text()
        html = page.content()
    finally:
        _drop_boom(db)
    assert "try again" in msg
    for leak in ("Traceback", "boom", "/srv/secret", "IntegrityError", ".py", 'File "',
                 "sqlite3", "ehkit/"):
        assert leak not in shown, leak
    assert "Traceback" not in html and "/srv/secret" not in html
    # Sources stripped: the page carries none of the notebook's code.
    assert NOTEBOOK_SOURCE not in html and "audit_app(" not in html
    with sqlite3.connect(str(db)) as con:  # and nothing was half-saved
        assert con.execute("SELECT count(*) FROM audits WHERE episode_id = ? AND"
                           " audit_date = '2026-10-20'", [case["episode_id"]]).fetchone()[0] == 0


def test_two_pages_saving_at_the_same_moment_both_store_their_audit(server, pages, work):
    _, db = work
    first, second = free_case(db, 6), free_case(db, 7)
    a, b = pages(server, wait_for=FORM), pages(server, wait_for=FORM)
    for page, case in ((a, first), (b, second)):
        ready(page)
        fill_case(page, case)
    a.locator("button.ehkit-save").click(no_wait_after=True)
    b.locator("button.ehkit-save").click(no_wait_after=True)
    ids = []
    for page in (a, b):
        text = wait_for_text(page, ".ehkit-messages", "Saved draft no.")
        ids.append(int(text.split("Saved draft no. ")[1].split(" ")[0]))
    assert len(set(ids)) == 2
    with sqlite3.connect(str(db)) as con:
        got = con.execute(f"SELECT episode_id FROM audits WHERE id IN ({ids[0]}, {ids[1]})"
                          " ORDER BY id").fetchall()
        assert sorted(e for (e,) in got) == sorted([first["episode_id"], second["episode_id"]])
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
