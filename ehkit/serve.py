"""``ehkit serve``: the auditor's app (and the other forms) served by Voila, closed by default.

* binds to 127.0.0.1 only; to reach it from other machines put it behind JupyterHub or a
  reverse proxy with its own login (see the README);
* a token is required (a fresh random one each start, printed in the URL) unless
  ``token=""`` / ``--no-token``;
* ``show_tracebacks`` off and ``strip_sources`` on, so no code or path reaches a browser;
* serves one notebook (the working folder's, else ehkit's: :mod:`ehkit.home`) from its
  folder (Voila's root), nothing else: no tree, no notebook sources, no ``.py`` files;
* preheated kernels on by default: Voila runs the notebook ahead of the first request so the
  form opens at once (``preheat=False`` / ``--no-preheat`` turns it off, e.g. on a small
  machine; ``pool_size`` kernels wait ready per notebook).
* kernels are bounded (``[serve]`` settings): one no page is connected to (a closed or
  crashed tab, a page that never connected) is stopped after ``idle_seconds``; at most
  ``max_kernels`` run at once, a page beyond that says the server is busy; a broken preheated
  kernel is discarded for a fresh one (:mod:`ehkit.serve_kernels`);
* a browser without the link's key gets a page saying how to get the link, and the log's
  request lines hide keys (:mod:`ehkit.serve_door`);
* the page (``jupyter/voila/templates/ehkit``) warns at once, in a ``role=alert`` banner,
  when it loses its server, and when its form has not come up after ``start_seconds``.

Under JupyterHub (``hub=True`` / ``--hub``, started by the one-server hub as a service on
127.0.0.1, or by a spawner as a person's own server, e.g. Zero to JupyterHub's KubeSpawner in a
pod, on the address it was given: see :mod:`ehkit.serve_hub` and :mod:`ehkit.hub`) the hub's
login replaces the token, the address and path prefix are the hub's, and each page's kernel
acts as the page's login: ``[serve] preheat`` forms are kept ready with no login (nobody) and
the server hands each its login as a page takes it; with ``preheat = 0`` each page's kernel is
started with it in ``EHKIT_LOGIN``.

The database (a file, or a ``postgresql://`` URL: the kernels connect to the server
themselves) is handed to the kernels in ``EHKIT_DB`` and the printable records go under
``EHKIT_REPORTS_DIR`` (default ``reports/`` in the folder ``ehkit serve`` was started from).
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import db as store
from . import home, jupyter_lean, netfs, settings
from .errors import EhkitError

HOST = "127.0.0.1"
DEFAULT_PORT = 8866
# Voila finds the page template (the lost-server banner) in this Jupyter data folder.
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"


class ServeError(EhkitError):
    pass


def available_notebooks() -> list[str]:
    """The working folder's notebooks and ehkit's (:mod:`ehkit.home`)."""
    return home.names("notebooks", ".ipynb")


@dataclass
class ServeConfig:
    db: Path | str  # the SQLite file, or a PostgreSQL store's URL
    notebook: str = "audit"
    port: int = DEFAULT_PORT
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    preheat: bool = True
    pool_size: int = 1
    reports_dir: Path = field(default_factory=lambda: home.reports_dir().resolve())
    kernels: dict = field(default_factory=lambda: kernel_settings())
    hub: bool = False
    host: str = HOST  # under the hub, where it said to listen (hub_address)

    @property
    def notebook_path(self) -> Path:
        return home.find("notebooks", f"{self.notebook}.ipynb")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def argv(self) -> list[str]:
        """Voila's command line for this configuration."""
        args = [
            str(self.notebook_path),
            f"--port={self.port}",
            # Fail if the port is taken rather than quietly move to another one, so the URL
            # printed above is the one served.
            "--Voila.port_retries=0",
            f"--Voila.ip={self.host}",
            "--no-browser",
            "--show_tracebacks=False",
            "--strip_sources=True",
            f"--Voila.root_dir={self.notebook_path.parent}",
            # Nothing but the page itself: no files from the notebooks folder.
            "--VoilaConfiguration.file_allowlist=^$",
            "--template=ehkit",
            f"--VoilaConfiguration.resources=ehkit_start_seconds={self.kernels['start_seconds']}",
            # Kernels are bounded: see ehkit.serve_kernels.
            "--VoilaConfiguration.multi_kernel_manager_class=" + (
                "ehkit.serve_hub.HubKernelManager" if self.hub
                else "ehkit.serve_kernels.FormKernelManager"),
            f"--FormKernelManager.max_kernels={self.kernels['max_kernels']}",
            f"--FormKernelManager.start_timeout={self.kernels['start_seconds']}",
            f"--FormKernelManager.cull_idle_timeout={self.kernels['idle_seconds']}",
            f"--FormKernelManager.cull_interval={self.kernels['check_seconds']}",
            "--FormKernelManager.cull_connected=False",
            # nbclient's 4 s wait for a cell's output is too short on a busy server: the form's
            # output was dropped and the page left blank.
            "--VoilaExecutor.iopub_timeout=60",
        ]
        if self.hub:
            args += [f"--Voila.base_url={os.environ['JUPYTERHUB_SERVICE_PREFIX']}",
                     "--Voila.identity_provider_class=ehkit.serve_hub.HubIdentity"]
        else:
            args.append(f"--token={self.token}" if self.token else "--token=")
            # Without the link's key: ehkit's page saying how to get the link (serve_door).
            args.append("--Voila.identity_provider_class=ehkit.serve_door.FrontDoorIdentity")
        if self.preheat and self.pool_size:
            args += ["--preheat_kernel=True", f"--pool_size={max(1, self.pool_size)}",
                     # The pool refills soon after a page takes a kernel.
                     "--VoilaKernelManager.fill_delay=0"]
        return args

    @property
    def shown_db(self) -> str:
        """The store as a person may see it (a URL's password never shown)."""
        from .postgres import shown

        return shown(self.db) if isinstance(self.db, str) else str(self.db)

    def environment(self) -> dict[str, str]:
        # A URL's password goes apart, in PGPASSWORD (libpq reads it), as a report's kernel
        # is given it: the URL a kernel holds may be shown, logged or kept with a traceback.
        from .postgres import password_apart

        db, password = (password_apart(self.db) if isinstance(self.db, str)
                        else (str(self.db.resolve()), None))
        return {"EHKIT_DB": db, **({"PGPASSWORD": password} if password else {}),
                "EHKIT_REPORTS_DIR": str(self.reports_dir.resolve()),
                # Where Voila finds the page template (--template=ehkit).
                "JUPYTER_PATH": os.pathsep.join(
                    filter(None, [str(JUPYTER_DATA), os.environ.get("JUPYTER_PATH")])),
                **home.environment()}


KERNEL_SETTINGS = ("idle_seconds", "check_seconds", "max_kernels", "start_seconds")


def kernel_settings() -> dict[str, int]:
    """The ``[serve]`` settings, each checked to be a whole number of at least 1."""
    given = settings.get("serve")
    for key in KERNEL_SETTINGS:
        value = given.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ServeError(f"the setting [serve] {key} = {value!r} (in "
                             f"{settings.source('serve', key)}) must be a "
                             "whole number of at least 1: correct it and start again")
    return {key: given[key] for key in KERNEL_SETTINGS}


def preheat_setting() -> int:
    """``[serve] preheat``: forms kept ready under the hub, a whole number (0: none)."""
    value = settings.get("serve").get("preheat", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServeError(f"the setting [serve] preheat = {value!r} (in "
                         f"{settings.source('serve', 'preheat')}) must be a whole number of "
                         "forms kept ready (0: none): correct it and start again")
    return value


# What JupyterHub hands a service it starts, and a spawner a person's server
# (`ehkit serve --hub`).
HUB_ENV = ("JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN",
           "JUPYTERHUB_API_URL")


def persons_server() -> bool:
    """Started by a spawner as a person's own server (a hub service is named, a server has
    its owner), not as the one-server hub's service."""
    return bool(os.environ.get("JUPYTERHUB_USER")) and not os.environ.get(
        "JUPYTERHUB_SERVICE_NAME")


def hub_address() -> tuple[str, int]:
    """Where JupyterHub said to listen (JUPYTERHUB_SERVICE_URL): a service on this machine's
    loopback (the hub's proxy is on this machine); a person's server on the address its
    spawner was given (z2jh: 0.0.0.0 in the pod, which the proxy reaches over the pod
    network)."""
    missing = [name for name in HUB_ENV if not os.environ.get(name)]
    if missing:
        raise ServeError("ehkit serve --hub is started by JupyterHub (as the service in "
                         "deploy/jupyterhub_config.py, or as a person's server under Zero to "
                         f"JupyterHub), not by hand (missing: {', '.join(missing)}); to try "
                         "the form alone run `ehkit serve`")
    given = os.environ["JUPYTERHUB_SERVICE_URL"]
    url = urlsplit(given)
    try:
        port = url.port
    except ValueError:
        port = None
    if not persons_server():
        if url.hostname not in (HOST, "localhost") or not port:
            raise ServeError(f"the ehkit service's url {given} must be http://{HOST}:PORT "
                             "(the hub's proxy reaches it on this machine): correct it in "
                             "jupyterhub_config.py")
        return HOST, port
    if url.scheme != "http" or not url.hostname or not port:
        raise ServeError(f"the server's url JUPYTERHUB_SERVICE_URL={given} (from the hub's "
                         "spawner) must be http://ADDRESS:PORT/...: ehkit serve --hub speaks "
                         "plain HTTP (no internal_ssl) on the address and port the spawner "
                         "gives it; set the spawner's ip (0.0.0.0 in a pod) and port in the "
                         "hub's configuration")
    return url.hostname, port


def check_free(host: str, port: int, hub: bool) -> None:
    """Bind the way the server will (SO_REUSEADDR on POSIX, as tornado does): a port only
    held by the last run's closed connections (TIME_WAIT) is free to listen on."""
    where = (f"{host}:{port} (from the hub: JUPYTERHUB_SERVICE_URL="
             f"{os.environ.get('JUPYTERHUB_SERVICE_URL')})" if hub else f"port {port} on {host}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise ServeError(f"cannot listen on {where}: {host} is not a name this machine "
                         "knows; give the hub's spawner an address of this machine "
                         "(0.0.0.0 for all of them)") from None
    with socket.socket(family, kind, proto) as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
            probe.listen()
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise ServeError(f"cannot listen on {where}: {host} is not an address of "
                                 "this machine; give the hub's spawner one of its addresses "
                                 "(0.0.0.0 for all of them)") from None
            raise ServeError(f"{where} is already in use (another ehkit serve?): " + (
                "stop it, or give the hub another port" if hub
                else "choose another with --port")) from None


def configure(db=None, *, notebook: str = "audit", port: int = DEFAULT_PORT,
              token: str | None = None, no_token: bool = False, preheat: bool = True,
              pool_size: int = 1, reports_dir: str | os.PathLike | None = None,
              hub: bool = False) -> ServeConfig:
    """Check the request and build the configuration (no server started)."""
    host = HOST
    if hub:  # the pool's size is the settings' (the hub starts the server, not a person)
        (host, port), no_token, pool_size = hub_address(), True, preheat_setting()
        preheat = pool_size > 0
    path = store.location(db)
    if isinstance(path, Path) and not path.exists():
        raise ServeError(f"no database at {path}: create one with `ehkit demo` or "
                         "`ehkit import`, or point --db / EHKIT_DB at an existing file")
    # a file that is no store, or a server that cannot be reached, is named now, not per page
    store.connect(path, must_exist=True).close()
    known = available_notebooks()
    if notebook not in known:
        places = " or ".join(map(str, home.folders("notebooks")))
        raise ServeError(f"there is no notebook '{notebook}' in {places} "
                         f"(available: {', '.join(known) or 'none'})")
    if not 0 < port < 65536:
        raise ServeError(f"--port {port} is not a port number (1-65535)")
    check_free(host, port, hub)
    cfg = ServeConfig(db=path, notebook=notebook, port=port, preheat=preheat,
                      pool_size=pool_size, kernels=kernel_settings(), hub=hub, host=host)
    if no_token:
        cfg.token = ""
    elif token:
        cfg.token = token
    if reports_dir:
        cfg.reports_dir = Path(reports_dir)
    return cfg


def run(cfg: ServeConfig) -> int:
    """Start Voila in this process (blocks until stopped with Ctrl+C)."""
    os.environ.update(cfg.environment())
    # Make sure the kernels run this interpreter (the venv's), whatever is on PATH.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    print(f"ehkit: serving {cfg.notebook} for {cfg.shown_db} at {cfg.url}", flush=True)
    fstype = not isinstance(cfg.db, str) and netfs.network_filesystem(cfg.db)
    if fstype:  # the kernels warn too, but only into Voila's log
        print(f"ehkit: warning: {netfs.warning_text(cfg.db, fstype)}", flush=True)
    if not cfg.token and not cfg.hub:
        print("ehkit: warning: no token - anyone who can reach this machine's localhost can "
              "open the form", flush=True)
    jupyter_lean.leave_out_iri_parsers()  # a second of Voila's start
    import voila.app

    from .serve_door import LOG_SETTINGS
    from .serve_kernels import checked_pool

    if cfg.hub:
        from .serve_hub import HandOver, HubVoila

        app, pool_mixin = HubVoila, HandOver
    else:
        app, pool_mixin = voila.app.Voila, None
    voila.app.voila_kernel_manager_factory = checked_pool(voila.app.voila_kernel_manager_factory,
                                                          pool_mixin)
    app.launch_instance(argv=cfg.argv(), tornado_settings=LOG_SETTINGS)
    return 0
