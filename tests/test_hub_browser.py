"""The one-server JupyterHub deployment, for real: the shipped ``deploy/jupyterhub_config.py``,
JupyterHub, configurable-http-proxy and ``ehkit serve --hub``, driven in headless Chromium.

Two auditors and a coordinator log in through the hub's own login page (the shared-password
test login), each an ehkit user of the test store (``access.add_user``: the auditors mapped to
two practitioners with cases on their lists, the coordinator, and the admin who added them).
Each auditor saves an audit as their own practitioner whatever the page sends, sees the
children's names only on their own cases, and cannot open the other's audit; the change log
records each one's login and practitioner. An auditor is refused the coordinator's sampling
app's draw, saying which role is needed; the coordinator draws. A login the hub lets in that
is not an ehkit user is told to ask the ehkit admin. Nobody reaches JupyterLab, a terminal,
the contents or kernel API, the database file, or another login's kernel; a crafted
``execute_request`` over the kernel websocket does nothing. Only invented people.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient
from test_security_browser import ready
from voila_harness import (  # noqa: F401 (fixtures)
    assert_accessible,
    chromium_fixture,
    copy_db,
    rows,
    select_by_text,
    wait_for_text,
)

from bench.local_hub import PROXY, LocalHub
from ehkit import access, serve_hub
from ehkit import db as store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "synthetic-test-password"
APPS = ("audit", "sampling")  # the hub's forms; people land on the first
APP, SAMPLING = (f"/services/{name}/" for name in APPS)
FORM = ".ehkit-grade-pre_eha"
# Synthetic logins: two auditors and a coordinator (ehkit users), and one the hub lets in
# that ehkit does not know.
AUDITORS = ("amara.auditor", "ben.auditor")
COORDINATOR = "cora.coordinator"
LOGINS = (*AUDITORS, COORDINATOR)
STRANGER = "dan.visitor"


def listed_cases(db: Path) -> dict[int, dict]:
    """Two auditors of the demo store, each with a case on their list and on no other
    auditor's (its EHM number one case's, not audited yet): practitioner -> the case."""
    found = rows(db, "SELECT s.auditor_id, p.name, e.id, e.ehm_number FROM selections s"
                 " JOIN practitioners p ON p.id = s.auditor_id JOIN episodes e"
                 " ON e.id = s.episode_id WHERE (SELECT count(*) FROM episodes x"
                 " WHERE x.ehm_number = e.ehm_number) = 1 AND NOT EXISTS (SELECT 1 FROM"
                 " selections o WHERE o.episode_id = e.id AND o.auditor_id <> s.auditor_id)"
                 " AND NOT EXISTS (SELECT 1 FROM audits a WHERE a.episode_id = e.id)"
                 " ORDER BY s.auditor_id, e.id")
    cases: dict[int, dict] = {}
    for pid, name, episode_id, ehm in found:
        cases.setdefault(pid, {"practitioner": pid, "name": name, "episode_id": episode_id,
                               "ehm": ehm})
    assert len(cases) >= 2, "the demo store has no two auditors with cases on their lists"
    return dict(list(cases.items())[:2])


def add_users(db: Path) -> dict[str, dict]:
    """The logins as ehkit users (added by the admin): login -> its listed case."""
    cases = list(listed_cases(db).values())
    database = store.connect(db)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EHKIT_LOGIN", "it.admin")
            access.add_user(database, "it.admin", roles=["admin"])
            for login, case in zip(AUDITORS, cases, strict=True):
                access.add_user(database, login, roles=["auditor"],
                                practitioner_id=case["practitioner"])
            access.add_user(database, COORDINATOR, roles=["coordinator"])
    finally:
        database.close()
    return dict(zip(AUDITORS, cases, strict=True))


class Hub(LocalHub):
    """The shipped hub with the test login, serving the audit and sampling forms."""

    def __init__(self, work: Path, db: Path, timeout: float = 120):
        if not PROXY.exists():
            pytest.skip(f"{PROXY} is missing: `make hub-proxy` installs configurable-http-proxy")
        super().__init__(work, db, [*LOGINS, STRANGER], PASSWORD, apps=APPS, timeout=timeout)


@pytest.fixture(scope="module")
def hub(demo_db_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("hub")
    db = copy_db(demo_db_path, work / "ehkit.db")
    cases = add_users(db)
    hub = Hub(work, db)
    hub.cases = cases
    yield hub
    hub.stop()


class Person:
    """One login's browser (own cookies) with the audit form open through the hub."""

    def __init__(self, chromium, hub: Hub, login: str, *, landing: str | None = FORM):
        self.login = login
        self.context = chromium.new_context(viewport={"width": 1280, "height": 1000})
        self.context.set_default_timeout(90_000)
        self.page = self.context.new_page()
        self.sockets: list[str] = []
        self.page.on("websocket", lambda ws: self.sockets.append(ws.url))
        self.page.goto(hub.url + "/hub/login")
        self.page.fill("#username_input", login)
        self.page.fill("#password_input", PASSWORD)
        started = time.monotonic()
        self.page.click("#login_submit")
        if landing:
            self.page.wait_for_selector(landing, state="visible", timeout=120_000)
            ready(self.page)
        self.open_seconds = time.monotonic() - started

    @property
    def kernel_socket(self) -> str:
        """The websocket URL of this page's kernel."""
        return next(url for url in self.sockets if "/api/kernels/" in url)

    @property
    def kernel_id(self) -> str:
        return self.kernel_socket.split("/api/kernels/")[1].split("/")[0]

    def get(self, hub: Hub, path: str, **kwargs):
        return self.context.request.get(hub.url + path, **kwargs)


@pytest.fixture(scope="module")
def people(hub, chromium):
    """Each login's page, the audit form open through the hub."""
    opened = {login: Person(chromium, hub, login) for login in LOGINS}
    yield opened
    for person in opened.values():
        person.context.close()


def change_log_people(db: Path, audit_id: int) -> set[tuple[str, str]]:
    """Who the change log names for an audit: (login, practitioner) pairs."""
    return set(rows(db, "SELECT DISTINCT user, actor FROM change_log WHERE audit_id = ? OR"
                    " (table_name = 'audits' AND row_key = ?)", (audit_id, str(audit_id))))


def message(page, text: str) -> str:
    return wait_for_text(page, ".ehkit-messages", text, timeout_ms=90_000)


def saved_audits(hub) -> dict[str, int]:
    """login -> the audit it saved (the first test saves them)."""
    return {login: rows(hub.db, "SELECT id FROM audits WHERE episode_id = ?",
                        (case["episode_id"],))[0][0] for login, case in hub.cases.items()}


def test_an_auditor_saves_as_their_own_practitioner_whatever_the_page_sends(hub, people):
    for login, other in (AUDITORS, AUDITORS[::-1]):
        page, case = people[login].page, hub.cases[login]
        auditor1 = page.locator(".ehkit-auditor1 select").first
        assert auditor1.is_disabled()  # the login's practitioner, not a choice
        page.locator(".ehkit-date-audit_date input").fill("2026-10-20")
        page.locator(".ehkit-ehm_number input").fill(case["ehm"])
        wait_for_text(page, ".ehkit-case-lead_professional", " ")
        auditor1.evaluate("s => { s.disabled = false; }")  # a page that forces the choice
        select_by_text(page, ".ehkit-auditor1", hub.cases[other]["name"])
        page.locator("button.ehkit-save").click()
        text = message(page, "Saved draft no.")
        audit_id = int(text.split("Saved draft no. ")[1].split(" ")[0])
        assert rows(hub.db, "SELECT auditor1_id FROM audits WHERE id = ?",
                    (audit_id,)) == [(case["practitioner"],)], login
        # The change log names the hub login and the practitioner it acts as.
        assert change_log_people(hub.db, audit_id) == {(login, case["name"])}, login
    # The form opens through the hub (login, OAuth, a fresh kernel) in this long at most;
    # the README quotes the figure.
    print("form open after login (s):", {p.login: round(p.open_seconds, 1)
                                          for p in people.values()})
    assert max(p.open_seconds for p in people.values()) < 60


def child_name(db: Path, episode_id: int) -> str:
    return rows(db, "SELECT name FROM children WHERE episode_id = ? ORDER BY date_of_birth, id",
                (episode_id,))[0][0]


def test_an_auditor_sees_names_only_on_their_own_list(hub, people):
    page = people[AUDITORS[0]].page
    page.locator("button.ehkit-new").click()
    message(page, "New audit")
    for login in AUDITORS:
        case = hub.cases[login]
        page.locator(".ehkit-ehm_number input").fill(case["ehm"])
        if login == AUDITORS[0]:
            wait_for_text(page, ".ehkit-case-child_names", child_name(hub.db, case["episode_id"]))
        else:  # the other auditor's case: neither name nor date of birth
            wait_for_text(page, ".ehkit-case-child_names", access.NOT_ON_LIST)
            wait_for_text(page, ".ehkit-case-date_of_birth", access.NOT_ON_LIST)
            assert child_name(hub.db, case["episode_id"]) not in page.inner_text("body")


def test_the_coordinator_sees_every_case(hub, people):
    page = people[COORDINATOR].page
    case = hub.cases[AUDITORS[1]]
    page.locator(".ehkit-ehm_number input").fill(case["ehm"])
    wait_for_text(page, ".ehkit-case-child_names", child_name(hub.db, case["episode_id"]))


def open_found(page, audit_id: int) -> None:
    """Find an audit by its number under "Saved audits" and press it."""
    page.locator(".ehkit-find-number input").fill(str(audit_id))
    page.locator("button.ehkit-find").click()
    wait_for_text(page, ".ehkit-found-said", "1 audit found")
    page.locator(".ehkit-found button").first.click()


def test_an_auditor_opens_and_prints_their_own_audit(hub, people):
    page, mine = people[AUDITORS[1]].page, saved_audits(hub)[AUDITORS[1]]
    open_found(page, mine)
    message(page, f"Opened audit no. {mine}")
    page.locator("button.ehkit-print").click()
    message(page, "Printable record ready")


def test_an_auditor_cannot_find_or_open_the_other_auditors_audit(hub, people):
    page, theirs = people[AUDITORS[1]].page, saved_audits(hub)[AUDITORS[0]]
    page.locator(".ehkit-find-number input").fill(str(theirs))
    page.locator("button.ehkit-find").click()
    text = wait_for_text(page, ".ehkit-found-said", "Showing your audits and your list's "
                         "cases: no saved audit matches")
    assert "Traceback" not in text
    page.wait_for_selector(".ehkit-found button", state="detached", timeout=30_000)
    assert child_name(hub.db, hub.cases[AUDITORS[0]]["episode_id"]) not in page.inner_text("body")


def open_sampling(hub, person: Person):
    page = person.context.new_page()
    page.goto(hub.url + SAMPLING)
    page.wait_for_selector("button.ehkit-draw", state="visible", timeout=120_000)
    return page


def test_an_auditor_is_told_drawing_a_list_needs_the_coordinator_role(hub, people):
    page = open_sampling(hub, people[AUDITORS[0]])
    try:
        draws = rows(hub.db, "SELECT count(*) FROM selection_draws")
        page.locator("button.ehkit-draw").click()
        message(page, "Drawing or redrawing a month's audit list needs the coordinator role; "
                      f"your login '{AUDITORS[0]}' has auditor")
        assert rows(hub.db, "SELECT count(*) FROM selection_draws") == draws
    finally:
        page.close()


def test_the_coordinator_draws_the_list(hub, people):
    page = open_sampling(hub, people[COORDINATOR])
    try:
        page.locator("button.ehkit-draw").click()
        message(page, "Drawn for")
        assert ("selection_draws", COORDINATOR) in set(rows(
            hub.db, "SELECT table_name, user FROM change_log WHERE table_name ="
                    " 'selection_draws'"))
    finally:
        page.close()


def test_a_login_that_is_not_an_ehkit_user_is_told_to_ask_the_ehkit_admin(hub, chromium):
    person = Person(chromium, hub, STRANGER, landing=None)
    try:
        page = person.page
        page.wait_for_selector("text=ask an ehkit admin to add you", timeout=120_000)
        assert page.locator("h1").inner_text() == "This form is not open to you"
        text = page.inner_text("body")
        assert f"Your login '{STRANGER}' is not an ehkit user" in text
        assert "Traceback" not in text and page.locator(FORM).count() == 0
        assert_accessible(page, "the page for a login that is not an ehkit user")
        assert not any("/api/kernels/" in url for url in person.sockets)  # no kernel for it
        assert STRANGER not in handed_over(hub).values()  # none taken from the pool
    finally:
        person.context.close()


def kernel_process(kernel_id: str) -> Path:
    """The /proc folder of a kernel's process."""
    for proc in Path("/proc").iterdir():
        try:
            if f"kernel-{kernel_id}.json".encode() in (proc / "cmdline").read_bytes():
                return proc
        except OSError:
            continue
    raise AssertionError(f"no process for kernel {kernel_id}")


def kernel_environment(kernel_id: str) -> dict[str, str]:
    """The environment the server started a kernel with (read from /proc)."""
    pairs = (kernel_process(kernel_id) / "environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def run_in_kernel(kernel_id: str, code: str) -> str:
    """Run ``code`` in a kernel over its ZMQ channel with its connection file, as the server
    does (this test runs as the service's account; a browser has neither), and return what
    it printed."""
    args = (kernel_process(kernel_id) / "cmdline").read_bytes().decode().split("\0")
    client = BlockingKernelClient(connection_file=args[args.index("-f") + 1])
    client.load_connection_file()
    client.start_channels()
    printed: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive(code, timeout=60, output_hook=lambda m: printed.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    finally:
        client.stop_channels()
    return "".join(printed)


def kernel_login(kernel_id: str) -> str:
    """Who the form in that kernel acts as (ehkit.access.login), or its refusal."""
    return run_in_kernel(kernel_id, "from ehkit import access\ntry:\n print(access.login())\n"
                                    "except access.NotAllowed as e:\n print('refused:', e)")


def handed_over(hub) -> dict[str, str]:
    """Kernel id -> the login the server handed it (the service's log)."""
    found = re.findall(r"Handed pre-heated kernel (\S+) to (\S+)", hub.log())
    assert len({k for k, _ in found}) == len(found), "a kernel handed over twice"
    return dict(found)


def test_each_form_is_preheated_and_handed_its_pages_login_by_the_server(hub, people):
    handed = handed_over(hub)
    for person in people.values():
        # Started ahead of the page, with no login and no hub token: nobody until handed.
        env = kernel_environment(person.kernel_id)
        assert "EHKIT_LOGIN" not in env and env[access.AWAITING] == "1"
        assert not {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_USER"} & set(env)
        assert handed[person.kernel_id] == person.login
        assert kernel_login(person.kernel_id).strip() == person.login


def pooled_kernels(hub) -> list[str]:
    """The kernels waiting in the forms' pools: started for this hub, not handed over."""
    handed, found = handed_over(hub), []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if (m := re.search(r"kernel-([0-9a-f-]{36})\.json", cmdline)) and m[1] not in handed \
                and f"EHKIT_DB={hub.db}".encode() in environ.split(b"\0"):
            found.append(m[1])
    return found


def test_the_pool_builds_one_form_at_a_time_per_two_cores(hub, people):
    building, most, built = 0, 0, 0
    for step in re.findall(rf"Pool {APP}: (building a form|form ready)", hub.log()):
        building += 1 if step == "building a form" else -1
        most, built = max(most, building), built + (step == "form ready")
    assert built >= len(LOGINS) + 1  # the pages' forms and at least one refill
    assert most == max(1, (os.cpu_count() or 2) // 2)


def test_a_pooled_form_before_it_is_handed_over_refuses_to_act(hub, people):
    deadline = time.monotonic() + 120
    while not (pooled := pooled_kernels(hub)) and time.monotonic() < deadline:
        time.sleep(1)
    assert pooled, "no preheated form waiting"
    said = run_in_kernel(pooled[0], "from ehkit import access, db\ntry:\n"
                                    " access.require(db.connect(), 'audit')\n print('acted')\n"
                                    "except access.NotAllowed as e:\n print('refused:', e)")
    assert said.strip() == f"refused: {access.NOBODY_YET}"  # never the service's own login


def test_a_crafted_hand_over_over_the_websocket_does_not_change_the_login(hub, people):
    person, other = people[AUDITORS[0]], AUDITORS[1]
    mark = hub.work / "handed-by-browser"
    code = (f"import ehkit.forms.common as f\nf.hand_over({other!r})\n"
            f"open({str(mark)!r}, 'w').write('ran')")
    result = person.page.evaluate(SEND_ON_SOCKET, [person.kernel_socket, code])
    assert result["opened"] and "execute_reply" not in result["got"], result
    assert not mark.exists()
    assert kernel_login(person.kernel_id).strip() == person.login


def test_nothing_the_browser_sends_changes_the_login(hub, people):
    person, other = people[LOGINS[0]], LOGINS[1]
    page = person.context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.set_extra_http_headers({"EHKIT_LOGIN": other, "X-Forwarded-User": other,
                                 "X-Remote-User": other, "JupyterHub-User": other})
    try:
        page.goto(f"{hub.url}{APP}?EHKIT_LOGIN={other}&user={other}")
        page.wait_for_selector(FORM, state="visible", timeout=120_000)
        kernel_id = next(u for u in sockets if "/api/kernels/" in u).split("/api/kernels/")[1]
        assert kernel_login(kernel_id.split("/")[0]).strip() == person.login
    finally:
        page.close()


def test_a_closed_forms_page_is_told_to_reload(hub, people):
    gone = str(uuid.uuid4())  # as a culled kernel: no longer the server's
    response = people[LOGINS[0]].get(hub, f"{APP}api/kernels/{gone}")
    assert response.status == 404 and serve_hub.CLOSED in response.text()
    said = [line for line in hub.log().splitlines() if gone in line]
    assert said and not any(serve_hub.NOT_YOURS in line for line in said), said


def test_the_hubs_home_page_offers_the_forms_and_no_server(hub, people):
    page = people[LOGINS[2]].context.new_page()
    try:
        page.goto(hub.url + "/hub/home")
        links = page.locator(".ehkit-forms a")
        assert [links.nth(i).get_attribute("href").rsplit("/services", 1)[1]
                for i in range(links.count())] == ["/audit/", "/sampling/"]
        assert "My Server" not in page.inner_text("body")
    finally:
        page.close()


def test_without_a_login_the_form_is_not_served(hub, chromium):
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(hub.url + APP)
        page.wait_for_selector("#username_input")  # the hub's login page instead
        assert page.locator(FORM).count() == 0 and "/hub/login" in page.url
    finally:
        context.close()


@pytest.mark.parametrize("path", [
    "/user/{login}/lab", "/user/{login}/tree", "/user/{login}/terminals/1",
    "/user/{login}/api/contents", "/user/{login}/api/kernels", "/user/{login}/api/terminals",
    "/hub/spawn", APP + "api/kernels", APP + "api/sessions", APP + "api/contents",
    APP + "api/terminals", APP + "terminals/1", APP + "lab", APP + "tree",
])
def test_no_jupyterlab_terminal_contents_or_kernel_api(hub, people, path):
    person = people[LOGINS[0]]
    response = person.get(hub, path.format(login=person.login))
    assert response.status in (403, 404, 424), (path, response.status, response.url)
    assert "jupyter-config-data" not in response.text()  # no JupyterLab or notebook page


def test_a_browser_cannot_start_a_kernel(hub, people):
    person = people[LOGINS[0]]
    for path in (APP + "api/kernels", APP + "api/sessions",
                 f"/user/{person.login}/api/kernels", f"/hub/api/users/{person.login}/server"):
        response = person.context.request.post(hub.url + path, data={"name": "python3"})
        assert response.status in (403, 404, 405, 424), (path, response.status)


@pytest.mark.parametrize("path", [
    APP + "voila/files/ehkit.db", APP + "voila/files/{db}", APP + "files/ehkit.db",
    APP + "ehkit.db", APP + "voila/static/..%2f..%2f..%2f{db}", "/hub/static/..%2f{db}",
    APP + "voila/files/..%2fehkit.db", APP + "voila/templates/..%2f..%2f{db}",
])
def test_the_database_file_is_not_served(hub, people, path):
    response = people[LOGINS[0]].get(hub, path.format(db=str(hub.db).lstrip("/")))
    assert response.status in (403, 404), (path, response.status)
    assert not response.body().startswith(b"SQLite format 3")


# A message the page could send its kernel's websocket: the kernel_info_request shows the
# socket is live, the execute_request would write MARK if it ran.
SEND_ON_SOCKET = """async ([url, code]) => {
  const ws = new WebSocket(url.replace(/session_id=[^&]*/, 'session_id=crafted'));
  const got = [];
  const msg = (type, content) => JSON.stringify({
    header: {msg_id: type + Math.random(), msg_type: type, username: 'x', session: 'crafted',
             date: new Date().toISOString(), version: '5.3'},
    parent_header: {}, metadata: {}, content: content, channel: 'shell', buffers: []});
  const opened = await new Promise(resolve => {
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
    ws.onclose = () => resolve(false);
  });
  if (!opened) return {opened, got};
  ws.onmessage = e => got.push(JSON.parse(e.data).header.msg_type);
  ws.send(msg('execute_request', {code: code, silent: false, store_history: false,
                                  user_expressions: {}, allow_stdin: false, stop_on_error: true}));
  ws.send(msg('kernel_info_request', {}));
  const deadline = Date.now() + 20000;
  while (!got.includes('kernel_info_reply') && Date.now() < deadline)
    await new Promise(r => setTimeout(r, 100));
  await new Promise(r => setTimeout(r, 3000));  // an execute_reply would have come by now
  ws.close();
  return {opened, got};
}"""


def test_a_crafted_execute_request_over_the_websocket_does_nothing(hub, people):
    person = people[LOGINS[0]]
    mark = hub.work / "executed-by-browser"
    code = f"open({str(mark)!r}, 'w').write('ran')"
    result = person.page.evaluate(SEND_ON_SOCKET, [person.kernel_socket, code])
    assert result["opened"] and "kernel_info_reply" in result["got"], result  # a live socket
    assert "execute_reply" not in result["got"] and "execute_input" not in result["got"]
    assert not mark.exists()


def test_another_logins_kernel_is_refused(hub, people):
    owner, other = people[LOGINS[0]], people[LOGINS[1]]
    mark = hub.work / "executed-by-another"
    result = other.page.evaluate(SEND_ON_SOCKET, [owner.kernel_socket, f"open({str(mark)!r}, 'w')"])
    assert not result["opened"] and not mark.exists(), result
    assert owner.get(hub, f"{APP}api/kernels/{owner.kernel_id}").status == 200  # its owner's
    for path in (f"{APP}api/kernels/{owner.kernel_id}",
                 f"{APP}api/kernels/{owner.kernel_id}/channels"):
        assert other.get(hub, path).status == 403, path
    for method in ("delete", "post"):  # neither stopping it nor its shutdown handler
        response = getattr(other.context.request, method)(
            f"{hub.url}{APP}api/kernels/{owner.kernel_id}" if method == "delete"
            else f"{hub.url}{APP}voila/api/shutdown/{owner.kernel_id}")
        assert response.status in (403, 404), (method, response.status)
    # The owner's form still works.
    assert owner.page.evaluate(SEND_ON_SOCKET, [owner.kernel_socket, "1"])["opened"]
