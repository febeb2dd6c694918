"""`ehkit serve` stays bounded and never leaves a page blank: the real server, real kernels.

* the kernels of pages left behind (closed tabs, pages that never connected) are stopped and
  the memory comes back; never more kernels than the cap, a page beyond it says so;
* a preheated kernel that breaks in the pool is replaced at once; a page whose form does not
  come up says so;
* a page that loses its server says so at once, and that its last changes are not saved;
* a restarted server may listen on the port its last run used.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    chromium_fixture,
    copy_db,
    free_port,
    pages_fixture,
)

from ehkit import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FORM = ".ehkit-grade-pre_eha"
ALERT = "#ehkit-alert[role=alert]"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the form, in a page's HTML


def serve_settings(folder, **values) -> dict[str, str]:
    """The environment for a server with these ``[serve]`` settings."""
    path = folder / "serve-settings.toml"
    path.write_text("[serve]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"EHKIT_SETTINGS": str(path)}


def kernels(server: VoilaServer) -> list[psutil.Process]:
    """The server's (running) kernel processes (not a kernel's own short-lived forks)."""
    found = []
    for p in psutil.Process(server.proc.pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:  # ended while we looked
            pass
    return found


def memory_mb(server: VoilaServer) -> float:
    """Resident memory of the server and all its kernels."""
    server_process = psutil.Process(server.proc.pid)
    procs = [server_process, *server_process.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def load(server: VoilaServer) -> tuple[int, str]:
    """One page load with the token, the way a browser asks (status, page)."""
    try:
        with urllib.request.urlopen(server.url, timeout=240) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def wait_until(check, timeout: float, what: str, server: VoilaServer | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s" + (f":\n{server.log()[-3000:]}"
                                                           if server else ""))


# -- the port ---------------------------------------------------------------------------
def test_a_port_only_held_by_the_last_runs_closed_connections_is_free_to_serve_on(
        demo_db_path, tmp_path):
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    port = free_port()
    # The last run's server closed its connections first: they linger in TIME_WAIT.
    listener = socket.create_server(("127.0.0.1", port))
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()
    time.sleep(0.2)
    client.close()
    listener.close()
    assert serve.configure(db, port=port).port == port
    # But a port someone listens on is still refused, in plain words.
    with socket.create_server(("127.0.0.1", port)), pytest.raises(serve.ServeError,
                                                                    match="already in use"):
        serve.configure(db, port=port)


def test_ehkit_serve_restarts_at_once_on_the_port_it_just_served(demo_db_path, tmp_path):
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    port = free_port()
    with VoilaServer(db, cwd=tmp_path, port=port, preheat=False) as first:
        held = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        held.request("GET", "/voila/api/shutdown/x")  # a connection the server will close
        held.getresponse().read()
    with VoilaServer(db, cwd=tmp_path, port=port, preheat=False) as again:
        assert again.port == port and "already in use" not in again.log()
    held.close()
    assert first.port == port


@pytest.mark.parametrize("bad", ["0", '"ten"', "-5", "1.5"])
def test_a_serve_setting_that_is_not_a_whole_number_is_refused_in_plain_words(
        demo_db_path, tmp_path, monkeypatch, bad):
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    env = serve_settings(tmp_path, max_kernels=bad)
    monkeypatch.setenv("EHKIT_SETTINGS", env["EHKIT_SETTINGS"])
    with pytest.raises(serve.ServeError, match=r"\[serve\] max_kernels = .* must be a whole "
                       "number of at least 1"):
        serve.configure(db, port=free_port())


# -- kernels: culled, capped ----------------------------------------------------------------
CAP = 4


@pytest.fixture(scope="module")
def bounded(demo_db_path, tmp_path_factory):
    """A server that stops a kernel left idle 4 s, looks every second, runs at most 4."""
    folder = tmp_path_factory.mktemp("bounded")
    db = copy_db(demo_db_path, folder / "ehkit.db")
    env = serve_settings(folder, idle_seconds=4, check_seconds=1, max_kernels=CAP)
    with VoilaServer(db, cwd=folder, env=env) as s:
        yield s


class Peak:
    """The most kernel processes seen at once while the block runs."""

    def __init__(self, server):
        self.server, self.most, self._stop = server, 0, threading.Event()

    def _watch(self):
        while not self._stop.is_set():
            now = kernels(self.server)
            if len(now) > self.most:
                self.most = len(now)
            time.sleep(0.1)

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(600)  # 30 real page loads on a busy test machine
def test_kernels_of_pages_left_behind_are_stopped_and_the_memory_comes_back(bounded):
    # Warmed up: one page served and its kernel stopped, the next preheated one built.
    assert load(bounded)[0] == 200
    wait_until(lambda: len(kernels(bounded)) == 1, 60, "one preheated kernel", bounded)
    time.sleep(5)
    before = memory_mb(bounded)
    with Peak(bounded) as peak:
        # 30 page loads with the token, never connected to (like a closed tab), 2 at a time,
        # one a second each: paced so that pages left behind are stopped while others come.
        statuses = []

        def visitor():
            for _ in range(15):
                statuses.append(load(bounded)[0])
                time.sleep(1)

        threads = [threading.Thread(target=visitor) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(statuses) == 30 and set(statuses) <= {200, 503}, statuses
        # More pages got a form than the cap allows at once: left-behind kernels were stopped.
        assert statuses.count(200) > CAP, statuses
        # Left alone, every page's kernel is stopped; only the preheated one stays.
        wait_until(lambda: len(kernels(bounded)) == 1, 60, "kernels stopped", bounded)
    assert peak.most <= CAP, peak.most
    after = memory_mb(bounded)
    assert after < before + 150, (before, after)
    assert "Culling 'idle' kernel" in bounded.log()


def test_a_page_beyond_the_most_kernels_says_the_server_is_busy(bounded):
    with Peak(bounded) as peak:
        pages = []
        threads = [threading.Thread(target=lambda: pages.append(load(bounded)))
                   for _ in range(CAP + 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    busy = [body for status, body in pages if status == 503]
    assert busy and peak.most <= CAP, ([s for s, _ in pages], peak.most)
    assert f"already has {CAP} forms open" in busy[0] and "reload this page" in busy[0]
    assert "Traceback" not in busy[0]
    # Once they are stopped, a page gets its form again.
    wait_until(lambda: len(kernels(bounded)) == 1, 60, "kernels stopped", bounded)
    status, body = load(bounded)
    assert status == 200 and WIDGET_VIEW in body


def test_the_kernel_of_an_open_page_is_never_stopped_and_is_once_the_page_closes(bounded,
                                                                               pages):
    wait_until(lambda: len(kernels(bounded)) == 1, 60, "kernels stopped", bounded)
    page = pages(bounded, wait_for=FORM)
    time.sleep(10)  # idle well past the 4 s: connected, so kept
    assert len(kernels(bounded)) == 2
    assert not page.locator(ALERT).is_visible()
    page.context.close()
    wait_until(lambda: len(kernels(bounded)) == 1, 30, "the closed page's kernel stopped",
               bounded)


def test_without_preheated_kernels_too_a_page_beyond_the_most_kernels_says_the_server_is_busy(
        demo_db_path, tmp_path):
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    env = serve_settings(tmp_path, idle_seconds=600, max_kernels=2)
    with VoilaServer(db, cwd=tmp_path, env=env, preheat=False) as server:
        served = [load(server) for _ in range(3)]
        assert [status for status, _ in served] == [200, 200, 503]
        assert WIDGET_VIEW in served[1][1] and "already has 2 forms open" in served[2][1]
        assert len(kernels(server)) == 2


# -- pages that lose their server or never get their form ------------------------------------
def _own_server(demo_db_path, tmp_path, **settings):
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    s = VoilaServer(db, cwd=tmp_path, env=serve_settings(tmp_path, **settings))
    yield s
    for k in kernels(s) if s.proc.poll() is None else []:
        k.send_signal(signal.SIGCONT)
    s.stop()


@pytest.fixture
def own_server(demo_db_path, tmp_path):
    """A server of the test's own (it may stop it or break its kernels); forms give up at 15 s."""
    yield from _own_server(demo_db_path, tmp_path, start_seconds=15)


@pytest.fixture
def patient_server(demo_db_path, tmp_path):
    """A server of the test's own, its forms given the default time to come up (on a busy
    machine a form can take longer than 15 s, and the page then rightly says it did not start)."""
    yield from _own_server(demo_db_path, tmp_path)


def test_a_page_that_loses_its_server_says_at_once_that_its_changes_are_not_saved(
        patient_server, pages):
    page = pages(patient_server, wait_for=FORM)
    page.wait_for_timeout(1000)
    assert not page.locator(ALERT).is_visible(), page.locator(ALERT).inner_text()
    patient_server.stop()
    page.wait_for_selector(ALERT, state="visible", timeout=5000)
    said = page.locator(ALERT).inner_text()
    assert "connection to the ehkit server is lost" in said and "NOT saved" in said
    assert "reload this page" in said and "Saved audits" in said
    page.locator("button.ehkit-save").click()  # Save does nothing: the warning stays
    page.wait_for_timeout(1000)
    assert page.locator(ALERT).is_visible()


def preheated_kernel(server: VoilaServer) -> psutil.Process:
    wait_until(lambda: len(kernels(server)) == 1, 60, "the preheated kernel", server)
    time.sleep(3)  # it is building the form, as a page would find it
    return kernels(server)[0]


def test_a_preheated_kernel_that_breaks_in_the_pool_is_replaced_before_a_page_asks(own_server,
                                                                                   pages):
    broken = preheated_kernel(own_server)
    broken.kill()  # it dies; the server restarts it empty, without the form
    said = "broke before a page took it: replacing it"
    wait_until(lambda: said in own_server.log(), 60, "the broken kernel replaced", own_server)
    # at once, not when the next page comes: a fresh kernel builds the form in the pool
    wait_until(lambda: [k.pid for k in kernels(own_server)] not in ([], [broken.pid]), 60,
               "the replacement started", own_server)
    page = pages(own_server, wait_for=FORM, timeout_ms=90_000)
    assert page.locator(f"{FORM} button").count() > 0
    assert "Discarding broken pre-heated kernel" not in own_server.log()  # none handed out
    assert own_server.log().count(said) == 1


def test_a_page_whose_form_does_not_come_up_says_so_and_a_reload_gets_a_fresh_one(
        own_server, chromium):
    hung = preheated_kernel(own_server)
    hung.send_signal(signal.SIGSTOP)  # alive, but never answers: the page's form never comes
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(own_server.url, wait_until="commit")
        page.wait_for_selector(ALERT, state="visible", timeout=40_000)
        said = page.locator(ALERT).inner_text()
        assert "This form did not start" in said and "Reload the page" in said
        assert page.locator(FORM).count() == 0
        # The server stops the hung kernel; a reload gets a fresh one with the form.
        wait_until(lambda: not hung.is_running() or hung.status() == psutil.STATUS_ZOMBIE,
                   40, "the hung kernel stopped", own_server)
        page.reload(wait_until="commit")
        page.wait_for_selector(FORM, state="visible", timeout=90_000)
        assert not page.locator(ALERT).is_visible()
    finally:
        context.close()



class HeldBack:
    """A page's kernel connections, open, but what the server says held back until let
    through (in order)."""

    def __init__(self):
        self.opened, self.held, self.through = 0, [], False

    def route(self, ws) -> None:
        server = ws.connect_to_server()
        self.opened += 1
        server.on_message(lambda message: ws.send(message) if self.through
                          else self.held.append((ws, message)))

    def let_through(self) -> None:
        while self.held:  # those that come meanwhile join the queue
            ws, message = self.held.pop(0)
            ws.send(message)
        self.through = True


@pytest.fixture
def late_server(demo_db_path, tmp_path):
    """A server whose pages say their form did not start after 40 s: time for a busy machine
    to bring the page and its kernel connection up first."""
    yield from _own_server(demo_db_path, tmp_path, start_seconds=40)


def test_a_form_that_comes_after_the_page_said_it_did_not_start_takes_the_warning_back(
        late_server, chromium):
    """The page's kernel connection is open, but the form's widgets come only after the
    page's 40 s (the server's messages held back until the warning shows): once the form is
    there the page no longer says it did not start."""
    kernel = HeldBack()
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.route_web_socket(re.compile(r"/api/kernels/[^/?]+/channels"), kernel.route)
        page.goto(late_server.url, wait_until="commit")
        for _ in range(300):  # the connection opens before the page's 40 s are up
            if kernel.opened:
                break
            page.wait_for_timeout(100)
        assert kernel.opened, "the page did not open its kernel connection in 30 s"
        assert not page.locator(ALERT).is_visible() and page.locator(FORM).count() == 0
        page.wait_for_selector(ALERT, state="visible", timeout=60_000)
        said = page.locator(ALERT).inner_text()
        assert "This form did not start" in said and page.locator(FORM).count() == 0
        kernel.let_through()
        page.wait_for_selector(FORM, state="visible", timeout=90_000)
        page.wait_for_timeout(500)
        assert not page.locator(ALERT).is_visible(), page.locator(ALERT).inner_text()
    finally:
        context.close()
