"""``ehkit serve --hub``: the apps as a JupyterHub service, behind the hub's login.

JupyterHub starts ``ehkit serve --hub`` as a managed service (``deploy/jupyterhub_config.py``,
:mod:`ehkit.hub`); users have no server of their own, so no JupyterLab, terminal, contents or
kernel API. Here, in the service:

* :class:`HubIdentity`: every request is the hub's OAuth login (jupyterhub's own identity
  provider, its handlers mounted under the service's prefix); a browser without one is sent
  to the hub's login page.
* :class:`HubKernelManager`: a page's kernel is started with ``EHKIT_LOGIN`` = the login of
  the request that asked for it (jupyter_server's ``CallContext`` holds that request), never
  with anything the browser sends; the service's own hub token is not handed to kernels; the
  kernel's owner is remembered. A login the hub let in that is not an ehkit user gets a
  plain page saying to ask the ehkit admin, and no kernel.
* :class:`HubVoila`: every handler addressed by a kernel id (its websocket, its model, its
  shutdown) answers only that kernel's owner. The websocket passes only the message types
  Voila allows for widgets (comm messages, kernel_info, shutdown); an ``execute_request`` is
  dropped by jupyter_server.

Preheated kernels are off under the hub: a kernel started before a request cannot know whose
page it will be.
"""

from __future__ import annotations

import os

from jupyter_server.base.call_context import CallContext
from jupyter_server.utils import url_path_join
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado import web
from traitlets import Dict as DictTrait
from voila.app import Voila
from voila.static_file_handler import TemplateStaticFileHandler

from . import access
from . import db as store
from .errors import EhkitError
from .serve_kernels import FormKernelManager

# Environment variables of the service that its kernels must not inherit: the service's own
# hub credentials (a kernel acts only through ehkit, as the page's login).
PRIVATE_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID",
               "JUPYTERHUB_OAUTH_CALLBACK_URL", "JUPYTERHUB_USER")
NOT_YOURS = "This form belongs to another login."


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


class HubIdentity(JupyterHubIdentityProvider):
    """jupyterhub's OAuth identity, its callback and logout under the service's prefix
    (Voila mounts an identity provider's handlers as they are)."""

    def get_handlers(self):
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        return [(url_path_join(prefix, path), *rest) for path, *rest in super().get_handlers()]


class HubKernelManager(FormKernelManager):
    """Each kernel is started for the login of the request that asked for it."""

    owners = DictTrait()

    async def start_kernel(self, **kwargs) -> str:
        login = request_login()
        if not login:
            raise web.HTTPError(403, reason="Log in through JupyterHub to open this form.")
        refuse_a_stranger(login)
        env = {k: v for k, v in (kwargs.pop("env", None) or os.environ).items()
               if k not in PRIVATE_ENV}
        env["EHKIT_LOGIN"] = login
        kernel_id = await super().start_kernel(env=env, **kwargs)
        self.owners[kernel_id] = login
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):
        self.owners.pop(kernel_id, None)
        return await super().shutdown_kernel(kernel_id, *args, **kwargs)


class OwnKernelOnly:
    """Mixed into every handler addressed by a kernel id: only its owner gets through."""

    async def prepare(self):
        await super().prepare()
        kernel_id = self.path_kwargs.get("kernel_id") or (self.path_args or [None])[0]
        owner = self.kernel_manager.owners.get(kernel_id)
        if owner is None or owner != request_login():
            self.log.warning("Refused %s to %s for kernel %s (not its owner)",
                             self.request.path, request_login(), kernel_id)
            raise web.HTTPError(403, reason=NOT_YOURS)


class TemplateFiles(TemplateStaticFileHandler):
    """Voila's template files, where a path not of the form TEMPLATE/static/FILE (e.g. one
    climbing out with ``..``) is "not found" rather than a server error."""

    def parse_url_path(self, path):
        if len(parts := path.split("/", 2)) < 3 or parts[1] != "static" or ".." in parts[0]:
            raise web.HTTPError(404)
        return super().parse_url_path(path)


class HubVoila(Voila):
    """Voila whose kernel handlers answer only the kernel's owner."""

    def init_handlers(self):
        handlers = []
        for pattern, handler, *rest in super().init_handlers():
            if "kernel_id" in pattern or handler.__name__ == "VoilaShutdownKernelHandler":
                handler = type(f"Own{handler.__name__}", (OwnKernelOnly, handler), {})
            elif handler is TemplateStaticFileHandler:
                handler = TemplateFiles
            handlers.append((pattern, handler, *rest))
        return handlers

