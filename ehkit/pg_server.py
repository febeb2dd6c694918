"""A real PostgreSQL for the tests and the benchmarks, started in a temporary folder and
stopped after (not for a council's store: IT runs that server).

Debian's ``postgresql`` package (15) gives ``initdb`` and ``pg_ctl`` (``make test`` and
``.ci/run`` install it; ``EHKIT_PG_BIN`` names another folder of them, and an ``initdb``
on the PATH, as conda's ``postgresql`` gives, is found). The server listens
only on a unix socket in its folder (no port to clash with another test worker), with the
C collation ehkit's PostgreSQL stores use; for the tests without fsync (a test's data need
not survive a power cut), for the benchmarks with it (as SQLite's synchronous FULL).
PostgreSQL refuses to run as root: as root the server runs as ``nobody``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
# EHKIT_PG_BIN, else Debian's folder, else wherever initdb is on the PATH (conda's postgresql).
PG_BIN = Path(os.environ.get("EHKIT_PG_BIN") or (
    DEBIAN_BIN if DEBIAN_BIN.exists() else Path(shutil.which("initdb") or DEBIAN_BIN).parent))
LOGIN = "ehkit"


class Server:
    """One PostgreSQL server: :meth:`new_database` gives each test a database of its own."""

    def __init__(self, *, fsync: bool = False):
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"no PostgreSQL in {PG_BIN}: install Debian's postgresql package "
                               "(`make test` does), or set EHKIT_PG_BIN")
        self.folder = Path(tempfile.mkdtemp(prefix="ehkit-pg-"))
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "nobody", "nogroup")
            self._as = ["runuser", "-u", "nobody", "--"]
        self._run("initdb", "-D", self.data, "-U", LOGIN, "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")
        self._options = f"-k {self.folder} -c listen_addresses=''" + ("" if fsync else " -F")
        self.start()
        self._names = itertools.count(1)

    def start(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "120", "-o",
                  self._options, "start")

    def _run(self, tool: str, *args) -> None:
        subprocess.run([*self._as, PG_BIN / tool, *map(str, args)], check=True,
                       capture_output=True, timeout=180)

    def url(self, database: str) -> str:
        return f"postgresql://{LOGIN}@/{database}?host={self.folder}"

    def new_database(self, like: str | None = None) -> str:
        """A new database's URL: empty, or a copy of the database at the URL ``like`` (made
        by the server from its files, far quicker than a copy through ehkit; nobody may be
        connected to ``like`` meanwhile)."""
        import psycopg

        name = f"test_{next(self._names)}"
        template = f" TEMPLATE {like.split('@/')[1].split('?')[0]}" if like else ""  # url()
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the server; its folder goes too, unless ``keep`` (to :meth:`start` again)."""
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast" if keep else "immediate", "-w",
                      "stop")
        finally:
            if not keep:
                shutil.rmtree(self.folder, ignore_errors=True)
