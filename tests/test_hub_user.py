"""``ehkit serve --hub`` as each person's own server, the way Zero to JupyterHub runs it
(deploy/z2jh), for real but without Kubernetes: JupyterHub with configurable-http-proxy and a
local spawner that does what KubeSpawner does (the server is told ``ip = 0.0.0.0`` and is
reached at its "pod's" address: here this machine's own non-loopback address), whose ``cmd``
is the z2jh sketch's ``ehkit serve --hub --notebook audit``, on the sketch's store, PostgreSQL
(the demo store's ``ehkit copy``). Two synthetic logins, both ehkit auditors: the first
logs in through the hub's login page, her server starts, her form comes through the proxy,
her kernel is handed her login, the hub is told of her activity; the second, logged in
too, is refused at her server (by the hub, and by the server itself when he brings his own
hub token), and no kernel is handed to him."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from test_security_browser import ready
from voila_harness import chromium_fixture  # noqa: F401 (fixture)

from bench.local_hub import PROXY, free_port
from ehkit import access
from ehkit import db as store

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "synthetic-test-password"
OWNER, OTHER = "amara.auditor", "ben.auditor"  # invented logins
SKETCH_CMD = yaml.safe_load((ROOT / "deploy" / "z2jh" / "config.yaml").read_text(
    encoding="utf-8"))["singleuser"]["cmd"]
PROBE_TOKEN = "probe-" + "0" * 32  # the test's own hub service, to read the hub's API

HUB_CONFIG = """
import sys
from jupyterhub.spawner import SimpleLocalProcessSpawner

class PodSpawner(SimpleLocalProcessSpawner):
    # KubeSpawner's way: the server is told to listen on every address (ip 0.0.0.0), and the
    # hub and its proxy reach it at its pod's address, not this machine's loopback.
    async def start(self):
        _, port = await super().start()
        return ({pod!r}, port)

c.JupyterHub.bind_url = {hub_url!r}
c.JupyterHub.hub_bind_url = {api_url!r}
c.ConfigurableHTTPProxy.api_url = {proxy_api_url!r}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {work!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {work!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {work!r} + "/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {logins!r}
c.JupyterHub.spawner_class = PodSpawner
c.Spawner.ip = "0.0.0.0"
c.Spawner.cmd = {cmd!r}
c.Spawner.environment = {environment!r}
c.Spawner.start_timeout = c.Spawner.http_timeout = 180
c.SimpleLocalProcessSpawner.home_dir_template = {work!r} + "/home/{{username}}"
# only the server's own reports move its activity here (the proxy's poll would too)
c.JupyterHub.last_activity_interval = 3600
c.JupyterHub.services = [{{"name": "probe", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "probe", "services": ["probe"], "scopes": [
    "read:users", "read:servers", "proxy", "tokens"]}}]
"""


def pod_address() -> str:
    """This machine's first non-loopback IPv4 address (a pod's address, for the test)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name == "AF_INET" and not address.address.startswith("127."):
                return address.address
    pytest.skip("this machine has no non-loopback address to stand for a pod's")


class UserHub:
    """The hub, in its own process session; its log (and the servers' own) in hub.log."""

    def __init__(self, work: Path, db_url: str):
        if not PROXY.exists():
            pytest.skip(f"{PROXY} is missing: `make hub-proxy` installs configurable-http-proxy")
        self.work, self.pod = work, pod_address()
        self.url = f"http://127.0.0.1:{free_port()}"
        bin_dir = Path(sys.executable).parent
        for login in (OWNER, OTHER):
            (work / "home" / login).mkdir(parents=True)
        (work / "settings.toml").write_text("[serve]\npreheat = 1\n")
        (work / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
            pod=self.pod, hub_url=self.url, api_url=f"http://127.0.0.1:{free_port()}",
            proxy_api_url=f"http://127.0.0.1:{free_port()}", proxy=str(PROXY), work=str(work),
            password=PASSWORD, logins={OWNER, OTHER}, token=PROBE_TOKEN,
            # the z2jh sketch's command (singleuser.cmd), from this interpreter's environment
            cmd=[str(bin_dir / SKETCH_CMD[0]), *SKETCH_CMD[1:]],
            environment={"EHKIT_DB": db_url, "EHKIT_SETTINGS": str(work / "settings.toml"),
                         "EHKIT_REPORTS_DIR": str(work / "reports"),
                         "JUPYTERHUB_ACTIVITY_INTERVAL": "2"}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EHKIT_", "JUPYTERHUB_"))}
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.log_path = work / "hub.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = psutil.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(work / "jupyterhub_config.py")],
            cwd=work, env=env, stdout=self._log, stderr=self._log, start_new_session=True)
        try:
            self.wait(lambda: self.api("GET", "/proxy").ok, "the hub and its proxy to answer")
        except BaseException:  # a hub that never came up is stopped too, with its proxy
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                    headers={"Authorization": f"token {PROBE_TOKEN}"},
                                    **kwargs)
        except requests.ConnectionError:  # not up yet
            down = requests.Response()
            down.status_code = 503
            return down

    def wait(self, ready, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyterhub exited:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.5)
        raise AssertionError(f"waited {timeout}s for {what}:\n{self.log()[-3000:]}")

    def login(self, name: str) -> requests.Session:
        """A browser's session logged in through the hub's login page."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=30).text
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page)[1]
        done = session.post(f"{self.url}/hub/login?next=", timeout=30, allow_redirects=False,
                            data={"username": name, "password": PASSWORD, "_xsrf": xsrf})
        assert done.status_code == 302, done.text[:500]
        return session

    def server(self, name: str) -> dict:
        return self.api("GET", f"/users/{name}").json()["servers"].get("", {})

    def stop(self) -> None:
        for child in self.proc.children(recursive=True):  # its proxy, servers, kernels
            child.terminate()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except psutil.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="module")
def hub(demo_db_path, pg_server, tmp_path_factory):
    """The hub, on a writable `ehkit copy` of the demo store in PostgreSQL (the z2jh sketch's
    store), with two ehkit auditors."""
    from ehkit import copying

    url = pg_server.new_database()
    copying.copy(demo_db_path, url)
    database = store.connect(url)
    try:
        first, second = (row[0] for row in database.execute(
            "SELECT id FROM practitioners ORDER BY id LIMIT 2").fetchall())
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EHKIT_LOGIN", "it.admin")
            access.add_user(database, "it.admin", roles=["admin"])
            access.add_user(database, OWNER, roles=["auditor"], practitioner_id=first)
            access.add_user(database, OTHER, roles=["auditor"], practitioner_id=second)
    finally:
        database.close()
    running = UserHub(tmp_path_factory.mktemp("hub-user"), url)
    yield running
    running.stop()


def kernel_of(page: str) -> str | None:
    """The kernel id Voila wrote into a form's page."""
    found = re.search(r"kernelId[^0-9a-f]{1,12}([0-9a-f]{8}-[0-9a-f-]{27})", page)
    return found and found[1]


@pytest.fixture(scope="module")
def owner(hub):
    """The owner logged in through the hub's login page, her server started from the hub's
    spawn page, her form opened through the proxy: (session, page, when asked)."""
    session = hub.login(OWNER)
    session.get(f"{hub.url}/hub/spawn/{OWNER}", timeout=30, allow_redirects=False)
    hub.wait(lambda: hub.server(OWNER).get("ready"), f"{OWNER}'s server to start")
    asked = time.time()
    page = session.get(f"{hub.url}/user/{OWNER}/", timeout=180)
    return session, page, asked


def started_server(hub) -> tuple[str, int, psutil.Process]:
    """The address the proxy sends the owner's pages to, and her server's process."""
    target = hub.api("GET", "/proxy").json()[f"/user/{OWNER}/"]["target"]
    host, port = re.fullmatch(r"http://([\d.]+):(\d+)/?", target).groups()
    (process,) = [p for p in hub.proc.children(recursive=True)
                  if {"serve", "--hub"} <= set(p.cmdline())]
    return host, int(port), process


def test_the_owners_form_comes_through_the_proxy_with_her_login(hub, owner):
    _, page, _ = owner
    assert page.status_code == 200, page.text[:500]
    assert page.url == f"{hub.url}/user/{OWNER}/"  # after the hub's OAuth, at her server
    kernel = kernel_of(page.text)
    assert kernel, page.text[:1000]
    # the server handed the page's kernel the login of the request, before serving it
    assert f"Handed pre-heated kernel {kernel} to {OWNER}" in hub.log()


def test_the_server_listens_on_every_address_and_the_proxy_reaches_it_at_the_pods(hub, owner):
    host, port, process = started_server(hub)
    assert host == hub.pod and not host.startswith("127.")
    listening = {(c.laddr.ip, c.laddr.port) for c in process.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
    assert ("0.0.0.0", port) in listening
    # straight at the pod's address, no login: sent to the hub's OAuth, no form
    asked = requests.get(f"http://{host}:{port}/user/{OWNER}/", timeout=30,
                         allow_redirects=False)
    assert asked.status_code == 302 and "/hub/api/oauth2/authorize" in asked.headers["Location"]


def test_a_second_logged_in_person_is_refused_at_the_owners_server(hub, owner):
    other = hub.login(OTHER)
    assert other.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == OTHER
    refused = other.get(f"{hub.url}/user/{OWNER}/", timeout=60)
    assert refused.status_code == 403 and not kernel_of(refused.text)
    # with a hub token of his own, straight at her server: the server itself refuses him
    made = hub.api("POST", f"/users/{OTHER}/tokens", json={"note": "test"})
    assert made.status_code == 201, made.text
    host, port, _ = started_server(hub)
    asked = requests.get(f"http://{host}:{port}/user/{OWNER}/", timeout=60,
                         headers={"Authorization": f"token {made.json()['token']}"})
    assert asked.status_code == 403 and not kernel_of(asked.text)
    assert f"Not allowing user {OTHER}" in hub.log()
    assert f" to {OTHER}" not in "".join(re.findall(r"Handed pre-heated kernel .*", hub.log()))


def test_the_hub_is_told_when_the_owner_used_her_server(hub, owner):
    _, _, asked = owner

    def told() -> bool:
        when = hub.server(OWNER).get("last_activity")
        return bool(when) and datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() \
            >= asked - 1
    hub.wait(told, "the server to tell the hub of the form's use", timeout=60)
    assert re.search(rf"POST /hub/api/users/{re.escape(OWNER)}/activity", hub.log())


@pytest.mark.browser
def test_in_chromium_the_owner_logs_in_and_her_form_works_through_the_proxy(hub, owner, chromium):
    """The whole way a person goes: the hub's login page, then her own server's form, its
    widgets over the kernel's websocket through the proxy to the "pod" address."""
    context = chromium.new_context()
    context.set_default_timeout(120_000)
    try:
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{hub.url}/hub/login?next=/user/{OWNER}/")
        page.fill("#username_input", OWNER)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        ready(page)  # the form is built and its lists filled from the store
        assert page.url == f"{hub.url}/user/{OWNER}/"
        (kernel,) = {url.split("/api/kernels/")[1].split("/")[0] for url in sockets
                     if "/api/kernels/" in url}
        assert f"Handed pre-heated kernel {kernel} to {OWNER}" in hub.log()
    finally:
        context.close()
