"""JupyterHub as a council runs it, on this machine's loopback: the shipped
``deploy/jupyterhub_config.py``, configurable-http-proxy (``make hub-proxy``) and the forms
as ``ehkit serve --hub`` services, with the shared-password test login. Started by the team
benchmark (``bench/team.py``) and the hub's browser tests (``tests/test_hub_browser.py``)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "jupyterhub_config.py"
PROXY = ROOT / "build" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    """A free port below the ephemeral range: the kernels' ZMQ sockets and outgoing
    connections take theirs from that range, so none of them can take this one between now
    and the server binding it (with several test processes at once, one did)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]) \
        if Path("/proc/sys/net/ipv4/ip_local_port_range").exists() else 0
    for _ in range(100) if low > 11000 else ():
        port = random.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no room below the range: the system's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ports_in_a_row(n: int) -> Iterator[int]:
    """The first of ``n`` free ports one after another (the hub's apps listen on the first
    and the next ones), held while the block asks for other ports."""
    while True:
        with contextlib.ExitStack() as held:
            first = free_port()
            try:
                for port in range(first, first + n):
                    held.enter_context(socket.create_server(("127.0.0.1", port)))
            except OSError:
                continue
            yield first
            return


class LocalHub:
    """The hub in its own process session (stopped whole by :meth:`stop`), serving ``apps``
    (notebook names; people land on the first) to ``logins`` with one ``password``."""

    def __init__(self, work: Path, db: Path, logins: list[str], password: str, *,
                 apps: tuple[str, ...] = ("audit",), env: dict[str, str] | None = None,
                 timeout: float = 120):
        self.work, self.db, self.apps = work, db, apps
        with ports_in_a_row(len(apps)) as apps_port:  # the others are not among them
            port, api_port, proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        environment = {
            **os.environ, "PYTHONUNBUFFERED": "1",
            "EHKIT_HUB_AUTH": "shared-password", "EHKIT_HUB_PASSWORD": password,
            "EHKIT_HUB_USERS": ",".join(logins), "EHKIT_DB": str(db),
            "EHKIT_HUB_APPS": " ".join(apps), "EHKIT_HUB_URL": self.url,
            "EHKIT_HUB_API_URL": f"http://127.0.0.1:{api_port}",
            "EHKIT_HUB_PROXY_API_URL": f"http://127.0.0.1:{proxy_api_port}",
            "EHKIT_HUB_APPS_PORT": str(apps_port), "EHKIT_HUB_PROXY": str(PROXY),
            "EHKIT_HUB_STATE": str(work),
            # The kernels run this interpreter (the venv's), whatever is on PATH.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                     os.environ.get("PATH", "")]),
            **(env or {})}
        environment.pop("EHKIT_LOGIN", None)  # the hub's logins, not this process's
        self.log_path = work / "hub.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=work, env=environment,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        """Up when the proxy routes the first app (without a login it sends us to the hub's)
        and every app is added to the proxy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({self.proc.returncode}):\n"
                                   f"{self.log()[-3000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/services/{self.apps[0]}/", timeout=5)
            except urllib.error.HTTPError:
                pass
            except OSError:
                time.sleep(0.5)
                continue
            if all(f"Adding service {name} to proxy" in self.log() for name in self.apps):
                return
            time.sleep(0.5)
        raise TimeoutError(f"the hub was not ready after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the hub stops its services and its proxy
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything of this hub's session still running (it leads it)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()
