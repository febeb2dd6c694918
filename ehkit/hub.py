"""JupyterHub's side of the one-server deployment: ``deploy/jupyterhub_config.py`` is
``load(c)``.

The hub logs people in (the council's Entra ID, GitHub or Google through OAuthenticator; the
server's accounts through PAM; NativeAuthenticator's own sign-up for a small office) and starts
each ehkit app as a *managed service* (``ehkit serve --hub``) run by the hub's one service
account. Users get no server of their own (:class:`NoServerSpawner`): there is no JupyterLab,
terminal, contents or kernel API to reach, only the apps, each behind the hub's OAuth.

Everything is chosen by environment variables (``deploy/ehkit-hub.env`` for systemd), listed
in :data:`SETTINGS` and the README.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import Spawner
from tornado import web

from .errors import EhkitError

AUTHENTICATORS = {
    "entra": "oauthenticator.azuread.AzureAdOAuthenticator",
    "github": "oauthenticator.github.GitHubOAuthenticator",
    "google": "oauthenticator.google.GoogleOAuthenticator",
    "pam": "jupyterhub.auth.PAMAuthenticator",
    "native": "nativeauthenticator.NativeAuthenticator",
    # Tests and trying it out: one shared password (EHKIT_HUB_PASSWORD) for every login.
    "shared-password": "jupyterhub.authenticators.shared.SharedPasswordAuthenticator",
}

# name: (default, what it is). The README's table of these is checked against this.
SETTINGS = {
    "EHKIT_HUB_AUTH": ("", "who logs people in: " + ", ".join(AUTHENTICATORS)),
    "EHKIT_HUB_USERS": ("", "logins allowed in, separated by commas"),
    "EHKIT_HUB_ALLOW_ALL": ("", "1: everyone the login accepts is let in (e.g. the council's "
                            "whole Entra tenant); ehkit's own roles still apply"),
    "EHKIT_HUB_ADMINS": ("", "logins that administer the hub, separated by commas"),
    "EHKIT_HUB_APPS": ("audit", "the forms served, notebook names separated by spaces; the "
                       "first is where people land"),
    "EHKIT_HUB_URL": ("http://127.0.0.1:8000", "where the hub's proxy listens (HTTPS in front)"),
    "EHKIT_HUB_API_URL": ("http://127.0.0.1:8081", "the hub's own API, for the proxy and apps"),
    "EHKIT_HUB_PROXY_API_URL": ("http://127.0.0.1:8001", "the proxy's API, for the hub"),
    "EHKIT_HUB_APPS_PORT": ("8870", "the first app's port; each further app the next"),
    "EHKIT_HUB_PROXY": ("configurable-http-proxy", "the proxy's command"),
    "EHKIT_HUB_STATE": (".", "the folder for the hub's own database and cookie secret"),
    "EHKIT_HUB_PASSWORD": ("", "the one password of the shared-password login (tests and "
                           "trying it out only; 8 characters or more)"),
}

HOME_PAGE = Path(__file__).resolve().parent / "jupyter" / "hub"
NO_SERVER = ("There is no Jupyter server here: ehkit's forms are the only apps on this hub. "
             "Open them from the Services menu or the hub's home page.")


class HubConfigError(EhkitError):
    pass


class NoServerSpawner(Spawner):
    """Users have no server of their own: asked to start one, the hub says why not."""

    async def start(self):
        raise web.HTTPError(403, NO_SERVER)

    async def poll(self):
        return 0  # never running

    async def stop(self, now=False):
        return None


def setting(name: str, env=os.environ) -> str:
    return env.get(name) or SETTINGS[name][0]


def _names(name: str, env) -> set[str]:
    return {n.strip() for n in setting(name, env).split(",") if n.strip()}


def authenticator(env=os.environ) -> str:
    chosen = setting("EHKIT_HUB_AUTH", env).strip().lower()
    if chosen not in AUTHENTICATORS:
        raise HubConfigError(
            f"EHKIT_HUB_AUTH={chosen!r} is not a login ehkit knows: set it to one of "
            f"{', '.join(AUTHENTICATORS)} (in deploy/ehkit-hub.env)")
    return chosen


def proxy_command(env=os.environ) -> list[str]:
    command = shlex.split(setting("EHKIT_HUB_PROXY", env))
    if not shutil.which(command[0]):
        raise HubConfigError(
            f"the hub's proxy {command[0]!r} was not found: install it (`npm install --prefix "
            "/opt/ehkit/node configurable-http-proxy`) and point EHKIT_HUB_PROXY at "
            "/opt/ehkit/node/node_modules/.bin/configurable-http-proxy")
    return command


def services(env=os.environ) -> list[dict]:
    """One managed service per form: ``ehkit serve --hub`` as the hub's own account."""
    first = int(setting("EHKIT_HUB_APPS_PORT", env))
    passed = {k: env[k] for k in ("EHKIT_DB", "EHKIT_HOME", "EHKIT_SETTINGS",
                                  "EHKIT_REPORTS_DIR", "PATH", "PYTHONPATH") if env.get(k)}
    return [{"name": name, "url": f"http://127.0.0.1:{first + i}", "display": True,
             "oauth_no_confirm": True, "environment": passed,
             "command": [sys.executable, "-m", "ehkit.cli", "serve", "--hub",
                         "--notebook", name]}
            for i, name in enumerate(setting("EHKIT_HUB_APPS", env).split())]


def configure(c, env=os.environ) -> None:
    """Fill JupyterHub's configuration object ``c`` from the ``EHKIT_HUB_*`` settings."""
    chosen = authenticator(env)
    c.JupyterHub.authenticator_class = AUTHENTICATORS[chosen]
    c.Authenticator.allowed_users = _names("EHKIT_HUB_USERS", env)
    c.Authenticator.admin_users = _names("EHKIT_HUB_ADMINS", env)
    c.Authenticator.allow_all = setting("EHKIT_HUB_ALLOW_ALL", env) == "1"
    if not (c.Authenticator.allowed_users or c.Authenticator.allow_all):
        raise HubConfigError("nobody could log in: list the logins in EHKIT_HUB_USERS, or set "
                             "EHKIT_HUB_ALLOW_ALL=1 to let in everyone the login accepts")
    if chosen == "shared-password":
        if len(setting("EHKIT_HUB_PASSWORD", env)) < 8:
            raise HubConfigError("the shared-password login needs EHKIT_HUB_PASSWORD of 8 "
                                 "characters or more (it is for tests and trying ehkit out: "
                                 "choose entra, github, google, pam or native for people)")
        c.SharedPasswordAuthenticator.user_password = setting("EHKIT_HUB_PASSWORD", env)
    # OAuthenticator reads OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_CALLBACK_URL (and Entra
    # ID's AAD_TENANT_ID) from the environment itself.

    c.JupyterHub.bind_url = setting("EHKIT_HUB_URL", env)
    c.JupyterHub.hub_bind_url = setting("EHKIT_HUB_API_URL", env)
    c.ConfigurableHTTPProxy.api_url = setting("EHKIT_HUB_PROXY_API_URL", env)
    c.ConfigurableHTTPProxy.command = proxy_command(env)
    state = Path(setting("EHKIT_HUB_STATE", env)).resolve()
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")

    # No single-user servers: the forms are the hub's services, and people land on the first.
    c.JupyterHub.spawner_class = NoServerSpawner
    c.JupyterHub.redirect_to_server = False
    apps = services(env)
    if not apps:
        raise HubConfigError("EHKIT_HUB_APPS names no form: set it to e.g. 'audit'")
    c.JupyterHub.services = apps
    c.JupyterHub.default_url = f"/services/{apps[0]['name']}/"
    c.JupyterHub.template_paths = [str(HOME_PAGE)]  # the forms, not "Start My Server"
    c.JupyterHub.load_roles = [{
        "name": "user", "description": "a logged-in person: the ehkit forms, nothing else",
        "scopes": ["self", *(f"access:services!service={app['name']}" for app in apps)]}]


def load(c) -> None:
    """:func:`configure`, or stop the hub with one line saying what to fix (JupyterHub would
    print a traceback)."""
    try:
        configure(c)
    except HubConfigError as e:
        sys.exit(f"ehkit: error: {e}")
