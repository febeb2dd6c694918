"""``ehkit serve --hub``: the apps as a JupyterHub service, behind the hub's login.

JupyterHub starts ``ehkit serve --hub`` as a managed service (``deploy/jupyterhub_config.py``,
:mod:`ehkit.hub`); users have no server of their own, so no JupyterLab, terminal, contents or
kernel API. Under Zero to JupyterHub a spawner (KubeSpawner) starts it instead as each
person's own server, in a pod (``deploy/z2jh``): the same server, on the address the spawner
gave (:func:`ehkit.serve.hub_address`); the hub's OAuth lets in only the logins its scopes
allow at that server (``access:servers!user=NAME``: the owner, and admins), any other is
refused before a form is built; and the server tells the hub when it was last used
(:class:`ActivityReport`), so z2jh's culler stops a pod nobody uses. Here, in either:

* :class:`HubIdentity`: every request is the hub's OAuth login (jupyterhub's own identity
  provider, its handlers mounted under the service's prefix); a browser without one is sent
  to the hub's login page.
* :class:`HubKernelManager`: a page's kernel is started with ``EHKIT_LOGIN`` = the login of
  the request that asked for it (jupyter_server's ``CallContext`` holds that request), never
  with anything the browser sends; the service's own hub token is not handed to kernels; the
  kernel's owner is remembered. A login the hub let in that is not an ehkit user gets a
  plain page saying to ask the ehkit admin, and no kernel.
* :class:`HandOver`, the preheated pool (``[serve] preheat`` forms kept ready): a pooled
  kernel is started with no login, marked ``access.AWAITING``, so it is nobody (every act
  refused) while it runs the form. A request takes one only after its login is checked (a
  stranger gets the refusal page and takes none); the server then records the owner and
  hands the login over its own ZMQ channel to the kernel (an ``execute`` of
  ``ehkit.forms.common.hand_over``, the reply awaited before the page is served). Voila's
  own ``wait_for_request`` was weighed and not used: it has the kernel open a websocket back
  to the server's ``/voila/query/<kernel_id>``, a handler with no login that sends whoever
  connects first the request's query string and headers (what the browser sends), so the
  login would have to ride in a message a local process can also ask for, and the form would
  trust a socket rather than the server that started it. Refills start a few kernels at a
  time (half the cores), not all at once, so saves are not starved while a pool refills.
* :class:`HubVoila`: every handler addressed by a kernel id (its websocket, its model, its
  shutdown) answers only that kernel's owner. The websocket passes only the message types
  Voila allows for widgets (comm messages, kernel_info, shutdown); an ``execute_request`` is
  dropped by jupyter_server, so a browser can never run ``hand_over``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from math import inf

from jupyter_server.base.call_context import CallContext
from jupyter_server.utils import url_path_join
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from jupyterhub.utils import isoformat, utcnow
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop
from traitlets import Dict as DictTrait
from voila.app import Voila
from voila.static_file_handler import TemplateStaticFileHandler

from . import access
from . import db as store
from .errors import EhkitError
from .serve import persons_server
from .serve_kernels import NOT_STARTED, FormKernelManager

# Environment variables of the service that its kernels must not inherit: the service's own
# hub credentials (a kernel acts only through ehkit, as the page's login).
PRIVATE_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID",
               "JUPYTERHUB_OAUTH_CALLBACK_URL", "JUPYTERHUB_USER")
NOT_YOURS = "This form belongs to another login."
CLOSED = ("This form was closed after being unused (or the server restarted): reload the "
          "page to open it again.")
# What the server runs in a pooled kernel to hand it its page's login (never a browser).
HAND_OVER = "import ehkit.forms.common as _ehkit_form\n_ehkit_form.hand_over({login!r})"


def request_login() -> str | None:
    """The hub login of the request being served, if there is one (set by jupyter_server
    from the authenticated request, never from what the browser sends)."""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    user = getattr(handler, "current_user", None) if handler is not None else None
    return getattr(user, "username", None)


def refuse_a_stranger(login: str) -> None:
    """A login the hub let in that is not an ehkit user (users are defined, it is not one)
    gets a page saying to ask the ehkit admin instead of a form that would refuse everything."""
    try:
        db = store.connect(read_only=True)  # the store the forms use (EHKIT_DB)
        try:
            me = access.person(db, login)
        finally:
            db.close()
    except EhkitError:
        return  # the form itself says what is wrong with the store or the settings
    if access.is_stranger(me):
        said = access.not_a_user(login)
        raise web.HTTPError(403, reason=said[0].upper() + said[1:] + ".")


def form_login() -> str:
    """The login of the request asking for a form, once it is known to be one that may have
    one (else the page saying why, and no kernel)."""
    login = request_login()
    if not login:
        raise web.HTTPError(403, reason="Log in through JupyterHub to open this form.")
    refuse_a_stranger(login)
    return login


class HubIdentity(JupyterHubIdentityProvider):
    """jupyterhub's OAuth identity (only logins with the hub's access scopes for this service
    or server: JUPYTERHUB_OAUTH_ACCESS_SCOPES), its callback and logout under the prefix
    (Voila mounts an identity provider's handlers as they are)."""

    last_seen: datetime | None = None  # a login's last request (the activity the hub is told)

    async def get_user(self, handler):
        user = await super().get_user(handler)
        if user is not None:
            self.last_seen = utcnow()
        return user

    def get_handlers(self):
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        return [(url_path_join(prefix, path), *rest) for path, *rest in super().get_handlers()]


class HubKernelManager(FormKernelManager):
    """Each kernel is started for the login of the request that asked for it, or (the
    preheated pool) for nobody until :meth:`hand_over`."""

    owners = DictTrait()
    # kernel id -> when it was handed to its page (time.monotonic), until the page comes for it
    handed_at = DictTrait()

    async def start_kernel(self, **kwargs) -> str:
        return await self._start(kwargs, form_login())

    async def start_pooled_kernel(self, **kwargs) -> str:
        """A kernel for the pool: no login (whatever request's context started the refill)."""
        return await self._start(kwargs, None)

    async def _start(self, kwargs: dict, login: str | None) -> str:
        env = {k: v for k, v in (kwargs.pop("env", None) or os.environ).items()
               if k not in (*PRIVATE_ENV, "EHKIT_LOGIN", access.AWAITING)}
        env.update({"EHKIT_LOGIN": login} if login else {access.AWAITING: "1"})
        kernel_id = await super().start_kernel(env=env, **kwargs)
        if login:
            self.owners[kernel_id] = login
        return kernel_id

    async def hand_over(self, kernel_id: str, login: str) -> None:
        """Give a pooled kernel to ``login``: its owner from now on, and the form filled for
        it, over the server's own channel to the kernel; returns once the kernel has."""
        if kernel_id in self.owners:  # never a second login
            raise RuntimeError(f"kernel {kernel_id} already belongs to a login")
        self.owners[kernel_id] = login
        client = self.get_kernel(kernel_id).client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            reply = await client.execute(HAND_OVER.format(login=login), store_history=False,
                                         reply=True, timeout=self.start_timeout)
        finally:
            client.stop_channels()
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"kernel {kernel_id} refused its login: "
                               f"{reply['content'].get('ename')}")
        self.handed_at[kernel_id] = time.monotonic()
        self.log.info("Handed pre-heated kernel %s to %s", kernel_id, login)

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):
        self.owners.pop(kernel_id, None)
        self.handed_at.pop(kernel_id, None)
        return await super().shutdown_kernel(kernel_id, *args, **kwargs)


class HandOver:
    """Mixed into Voila's preheated pool under the hub (:func:`serve_kernels.checked_pool`):
    pooled kernels start with no login, a few at a time, and each is handed to the login of
    the request that takes it."""

    _refilling: asyncio.Semaphore | None = None

    async def _initialize(self, notebook_path: str, kernel_id: str | None = None, **kwargs):
        # One kernel per two cores runs the form at a time: Voila would start every missing
        # one at once, a CPU storm just when a team is saving.
        if self._refilling is None:
            self._refilling = asyncio.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        async with self._refilling:
            if kernel_id is None:
                kernel_id = await self.start_pooled_kernel(
                    kernel_name=self.default_kernel_name, **kwargs)
            self.log.info("Pool %s: building a form in kernel %s", self.parent.base_url,
                          kernel_id)
            content = await super()._initialize(notebook_path, kernel_id, **kwargs)
            # The form is built (or given up on) before the next kernel starts.
            await asyncio.wait([content["task"]], timeout=self.start_timeout)
            self.log.info("Pool %s: form ready in kernel %s", self.parent.base_url, kernel_id)
            return content

    async def cull_kernel_if_idle(self, kernel_id: str):
        # A page given its form has start_seconds to come for it (OwnKernelOnly ends the
        # wait): under load a browser can take longer than the cull time to load the page.
        if time.monotonic() - self.handed_at.get(kernel_id, -inf) < self.start_timeout:
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    async def get_rendered_notebook(self, notebook_name: str, **kwargs):
        login = form_login()  # before a kernel is taken from the pool
        task, cache, kernel_id = await super().get_rendered_notebook(notebook_name, **kwargs)
        try:
            await self.hand_over(kernel_id, login)
        except Exception:  # noqa: BLE001 - a kernel that cannot take its login is not served
            self.log.warning("Stopping pre-heated kernel %s: it did not take its login",
                             kernel_id, exc_info=True)
            await self.shutdown_kernel(kernel_id, now=True)
            raise web.HTTPError(503, reason=NOT_STARTED) from None
        return task, cache, kernel_id


class OwnKernelOnly:
    """Mixed into every handler addressed by a kernel id: only its owner gets through."""

    async def prepare(self):
        await super().prepare()
        kernel_id = self.path_kwargs.get("kernel_id") or (self.path_args or [None])[0]
        owner = self.kernel_manager.owners.get(kernel_id)
        if owner is None and kernel_id not in self.kernel_manager:
            # Culled (or never there): the page's own form was closed, not someone else's.
            self.log.info("%s (kernel %s, %s)", CLOSED, kernel_id, request_login())
            raise web.HTTPError(404, reason=CLOSED)
        if owner is None or owner != request_login():
            self.log.warning("Refused %s to %s for kernel %s (not its owner)",
                             self.request.path, request_login(), kernel_id)
            raise web.HTTPError(403, reason=NOT_YOURS)
        self.kernel_manager.handed_at.pop(kernel_id, None)  # its page came: culled as usual


class TemplateFiles(TemplateStaticFileHandler):
    """Voila's template files, where a path not of the form TEMPLATE/static/FILE (e.g. one
    climbing out with ``..``) is "not found" rather than a server error."""

    def parse_url_path(self, path):
        if len(parts := path.split("/", 2)) < 3 or parts[1] != "static" or ".." in parts[0]:
            raise web.HTTPError(404)
        return super().parse_url_path(path)


class ActivityReport:
    """A person's server tells the hub when it was last used (JUPYTERHUB_ACTIVITY_URL, as
    jupyterhub-singleuser does): a login's request or a kernel's message (a form in use), every
    JUPYTERHUB_ACTIVITY_INTERVAL seconds (the hub's 300 by default), only when newer than the
    last told. The hub's culler stops a server whose activity is older than its timeout."""

    def __init__(self, app: Voila):
        self.app, self.told = app, None
        self.url = os.environ["JUPYTERHUB_ACTIVITY_URL"]
        given = os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or "300"
        self.every = int(given) if given.isdigit() and int(given) > 0 else 300
        if not (given.isdigit() and int(given) > 0):
            app.log.warning("JUPYTERHUB_ACTIVITY_INTERVAL=%r is not a whole number of seconds: "
                            "telling the hub every 300 seconds", given)

    def last_activity(self) -> datetime | None:
        times = [getattr(self.app.identity_provider, "last_seen", None),
                 getattr(self.app.kernel_manager, "last_kernel_activity", None)]
        return max((t for t in times if t is not None), default=None)

    async def tell(self) -> None:
        last = self.last_activity()
        if last is None or (self.told is not None and last <= self.told):
            return
        when = isoformat(last)
        body = {"servers": {os.environ.get("JUPYTERHUB_SERVER_NAME", ""): {"last_activity": when}},
                "last_activity": when}
        try:
            await AsyncHTTPClient().fetch(
                self.url, method="POST", body=json.dumps(body), request_timeout=30,
                headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}",
                         "Content-Type": "application/json"})
        except Exception as error:  # noqa: BLE001 - the hub may be restarting: told next time
            self.app.log.warning("Could not tell the hub of this server's activity: %s", error)
            return
        self.told = last

    async def run(self) -> None:
        self.app.log.info("Telling the hub of activity every %s seconds", self.every)
        while True:
            await self.tell()
            await asyncio.sleep(self.every)


class HubVoila(Voila):
    """Voila whose kernel handlers answer only the kernel's owner; a person's server also
    tells the hub of its activity."""

    def start(self):
        if os.environ.get("JUPYTERHUB_ACTIVITY_URL") and persons_server():
            report = ActivityReport(self)
            IOLoop.current().add_callback(lambda: asyncio.ensure_future(report.run()))
        super().start()

    def init_handlers(self):
        handlers = []
        for pattern, handler, *rest in super().init_handlers():
            if "kernel_id" in pattern or handler.__name__ == "VoilaShutdownKernelHandler":
                handler = type(f"Own{handler.__name__}", (OwnKernelOnly, handler), {})
            elif handler is TemplateStaticFileHandler:
                handler = TemplateFiles
            handlers.append((pattern, handler, *rest))
        return handlers

