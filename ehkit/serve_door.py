"""``ehkit serve``'s front door and quiet log (Voila loads this module by name; see
:mod:`ehkit.serve`).

* A browser that comes without the link's key gets a page that says in plain words how to
  get the link (``jupyter/voila/templates/ehkit/front_door.html``), not Jupyter's login page,
  which speaks of ``jupyter server list`` and setting up a password.
* Request lines in the server's log show no key: jupyter_server's request logger (which
  writes ``token=[secret]``) replaces tornado's, which writes the URL as it came. The link
  the login page was asked to go back to (``next``) may hold a key too: it is hidden as well.
"""

from __future__ import annotations

import functools

import jinja2
from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.log import log_request
from voila.voila_identity_provider import VoilaLoginHandler

from .serve import JUPYTER_DATA

_PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(JUPYTER_DATA / "voila" / "templates" / "ehkit"),
    autoescape=True)

# For Voila's ``tornado_settings``: every request logged with its keys hidden.
LOG_SETTINGS = {"log_function": functools.partial(log_request, record_prometheus_metrics=False),
                "extra_log_scrub_param_keys": ["next"]}


class FrontDoor(VoilaLoginHandler):
    """The login page: how to get the link. A link whose key is wrong (the server makes a
    new one each start) is told that its link is out of date."""

    def _render(self, message=None):
        old_link = "token=" in self.get_argument("next", "") or message is not None
        self.write(_PAGES.get_template("front_door.html").render(old_link=old_link))


class FrontDoorIdentity(PasswordIdentityProvider):
    """Voila's identity provider with :class:`FrontDoor` as its login page."""

    def get_handlers(self):
        return [(path, FrontDoor if path == r"/login" else handler)
                for path, handler in super().get_handlers()]
