"""An auditor's browser without the browser, for the team benchmark (``bench/team.py``).

It does over HTTP and the kernel's websocket what Chromium and Voila's page do, against the
real hub, proxy and form: log in on the hub's page (its shared-password login) and follow
its OAuth redirects to the form with a cookie jar (``aiohttp``, which JupyterHub itself
needs); get the form's page, which starts its kernel and runs the form (or, with preheated
kernels, hands over one that ran it earlier); read the kernel's id from the page's
``jupyter-config-data``; open the kernel's websocket with the session's cookies (Jupyter's
``v1.kernel.websocket.jupyter.org`` protocol, framed by jupyter_server's own functions); and
do what the widget manager does: ``kernel_info_request``, then the
``jupyter.widget.control`` comm's ``request_states`` for every widget's state. Then it finds
the form's controls by the ``ehkit-*`` classes the form gives them (``ehkit.forms.common.tag``,
the hooks the browser tests use), sends what a person's typing and clicks send (comm
``update`` and ``custom`` click messages) and keeps every widget's state as the kernel
updates it, as the page would show it. Leaving asks the kernel's shutdown as Voila's page
does on unload (``voila/api/shutdown/<id>`` with the ``_xsrf`` cookie), or just drops the
connection, as a crashed tab does.

The server is measured, not 30 browsers rendering 30 forms on its own cores.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Callable

import aiohttp
from jupyter_client.session import Session, json_packer
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

PROTOCOL = "v1.kernel.websocket.jupyter.org"
CONTROL = "jupyter.widget.control"
CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                    re.S)
XSRF = re.compile(r'name="_xsrf"\s+value="([^"]*)"')
TAGS = re.compile(r"<[^>]+>")


def text(value) -> str:
    """What a person reads of an HTML widget's value (its tags dropped)."""
    return html.unescape(TAGS.sub(" ", str(value or ""))).strip()


class Browser:
    """One person's cookies (one login) on the hub at ``hub_url``."""

    def __init__(self, hub_url: str, timeout: float):
        self.hub_url, self.timeout = hub_url, timeout
        # unsafe: the hub is on 127.0.0.1, and aiohttp keeps no cookies of an IP by default
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=timeout))
        self._login_xsrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def login_page(self) -> None:
        """The hub's login page (its form carries the _xsrf the login must send back)."""
        async with self.session.get(self.hub_url + "/hub/login") as r:
            page = await r.text()
        found = XSRF.search(page)
        if r.status != 200 or not found:
            raise RuntimeError(f"the hub's login page did not come (HTTP {r.status})")
        self._login_xsrf = found.group(1)

    async def log_in(self, login: str, password: str) -> FormPage:
        """Submit the login (after :meth:`login_page`); the hub lands it on the form."""
        async with self.session.post(
                self.hub_url + "/hub/login?next=",
                data={"_xsrf": self._login_xsrf, "username": login, "password": password}
        ) as r:
            return await self._page(r)

    async def open(self, path: str) -> FormPage:
        """Open the page at ``path`` (a reload: a new page and kernel)."""
        async with self.session.get(self.hub_url + path) as r:
            return await self._page(r)

    async def _page(self, r: aiohttp.ClientResponse) -> FormPage:
        page = await r.text()
        found = CONFIG.search(page)
        if r.status != 200 or not found:
            raise RuntimeError(f"no form at {r.url.path} (HTTP {r.status}): "
                               f"{text(page)[:200]}")
        config = json.loads(found.group(1))
        base = str(r.url.with_path(config["baseUrl"]).with_query(None))
        form = FormPage(self, base, config["kernelId"])
        await form.connect()
        return form


class FormPage:
    """One open form: its kernel's websocket, and every widget's state as the page has it."""

    def __init__(self, browser: Browser, base: str, kernel_id: str):
        self.browser, self.base, self.kernel_id = browser, base.rstrip("/") + "/", kernel_id
        self.session = Session(session=str(uuid.uuid4()), username="")
        self.states: dict[str, dict] = {}  # widget model id -> state
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        """As Voila's widget manager: the kernel's model, its websocket, its info, then every
        widget's state."""
        http = self.browser.session
        async with http.get(f"{self.base}api/kernels/{self.kernel_id}") as r:
            if r.status != 200:
                raise RuntimeError(f"the page's kernel is not there (HTTP {r.status})")
        ws_url = (f"{self.base}api/kernels/{self.kernel_id}/channels"
                  f"?session_id={self.session.session}").replace("http", "ws", 1)
        self.ws = await http.ws_connect(ws_url, protocols=(PROTOCOL,), max_msg_size=0,
                                        origin=self.browser.hub_url)
        info = await self._send("kernel_info_request", {})
        await self.until(lambda m: m["parent_header"].get("msg_id") == info
                         and m["msg_type"] == "kernel_info_reply")
        comm = str(uuid.uuid4())
        await self._send("comm_open", {"comm_id": comm, "target_name": CONTROL, "data": {}},
                   metadata={"version": "1.0.0"})
        ask = await self._send("comm_msg", {"comm_id": comm, "data": {"method": "request_states"}})
        reply = await self.until(lambda m: m["parent_header"].get("msg_id") == ask
                                 and m["msg_type"] == "comm_msg")
        self.states.update({k: v["state"] for k, v in reply["content"]["data"]["states"].items()})
        await self._send("comm_close", {"comm_id": comm, "data": {}})

    async def _send(self, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg = self.session.msg(msg_type, content, metadata=metadata or {})
        await self.ws.send_bytes(serialize_msg_to_ws_v1(msg, "shell", json_packer))
        return msg["header"]["msg_id"]

    async def until(self, done: Callable[[dict], bool] | None = None, *,
                    shown: Callable[[], bool] | None = None) -> dict:
        """Read the kernel's messages (keeping the widgets' states) until ``done`` holds for
        one (returned) or ``shown`` holds for the page; within the browser's timeout."""
        deadline = time.monotonic() + self.browser.timeout
        while not (shown and shown()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the form in {self.browser.timeout:g} s")
            frame = await self.ws.receive(timeout=left)
            if frame.type != aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"the form's connection closed ({frame.type.name})")
            _channel, parts = deserialize_msg_from_ws_v1(frame.data)
            header, parent, metadata, content = (json.loads(p) for p in parts[:4])
            msg = {"header": header, "msg_type": header["msg_type"], "parent_header": parent,
                   "content": content}
            self._keep(msg)
            if done and done(msg):
                return msg
        return {}

    def _keep(self, msg: dict) -> None:
        """A widget's new state, as the widget manager applies it."""
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.states[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content.get("comm_id") in self.states:
            if content["data"].get("method") in ("update", "echo_update"):
                self.states[content["comm_id"]].update(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_close":
            self.states.pop(content.get("comm_id"), None)

    def find(self, name: str) -> str:
        """The widget the form tags ``ehkit-<name>`` (its model id; the newest, should the
        form have rebuilt it since the page came)."""
        for model_id, state in reversed(self.states.items()):
            if f"ehkit-{name}" in state.get("_dom_classes", ()):
                return model_id
        raise LookupError(f"no ehkit-{name} on the form")

    def value(self, name: str) -> str:
        """What a person reads in the widget tagged ``ehkit-<name>``, or in the element so
        tagged inside a widget's HTML (a read-only case field: one widget, its label and value)."""
        try:
            return text(self.states[self.find(name)].get("value"))
        except LookupError:
            inner = re.compile(r'<(\w+)[^>]*\bclass="(?:[^"]*\s)?' + re.escape(f"ehkit-{name}")
                               + r'(?:\s[^"]*)?"[^>]*>(.*?)</\1>', re.S)
            for state in reversed(self.states.values()):
                found = inner.search(str(state.get("value") or ""))
                if found:
                    return text(found[2])
            raise

    async def set(self, name: str, **state) -> None:
        """What typing into (or choosing in) the widget sends."""
        model_id = self.find(name)
        self.states[model_id].update(state)
        await self._send("comm_msg", {"comm_id": model_id, "data": {
            "method": "update", "state": state, "buffer_paths": []}})

    async def click(self, name: str) -> None:
        """What clicking the button (or a choice of the toggle buttons) sends."""
        await self._send("comm_msg", {"comm_id": self.find(name), "data": {
            "method": "custom", "content": {"event": "click"}}})

    async def leave(self, *, shutdown: bool) -> None:
        """Leave the page: ask its kernel's shutdown as Voila's page does on unload, or not
        (a crashed tab); the connection goes either way."""
        http = self.browser.session
        if shutdown:
            xsrf = http.cookie_jar.filter_cookies(self.base).get("_xsrf")
            async with http.post(f"{self.base}voila/api/shutdown/{self.kernel_id}",
                                 data={"_xsrf": xsrf.value if xsrf else ""}) as r:
                if r.status >= 400:
                    raise RuntimeError(f"the kernel's shutdown was refused (HTTP {r.status})")
        await self.ws.close()
