"""A real PostgreSQL for the tests, started by them in a temporary folder and stopped after.

Debian's ``postgresql`` package (15) gives ``initdb`` and ``pg_ctl`` (``make test`` and
``.ci/run`` install it; ``EHKIT_PG_BIN`` names another folder of them, and an ``initdb``
on the PATH, as conda's ``postgresql`` gives, is found). The server listens
only on a unix socket in its folder (no port to clash with another test worker), without
fsync (a test's data need not survive a power cut), with the C collation ehkit's PostgreSQL
stores use. PostgreSQL refuses to run as root: as root the server runs as ``nobody``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
# EHKIT_PG_BIN, else Debian's folder, else wherever initdb is on the PATH (conda's postgresql).
PG_BIN = Path(os.environ.get("EHKIT_PG_BIN") or (
    DEBIAN_BIN if DEBIAN_BIN.exists() else Path(shutil.which("initdb") or DEBIAN_BIN).parent))
LOGIN = "ehkit"


class Server:
    """One PostgreSQL server: :meth:`new_database` gives each test a database of its own."""

    def __init__(self):
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
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "120", "-o",
                  f"-k {self.folder} -c listen_addresses='' -F", "start")
        self._names = itertools.count(1)

    def _run(self, tool: str, *args) -> None:
        subprocess.run([*self._as, PG_BIN / tool, *map(str, args)], check=True,
                       capture_output=True, timeout=180)

    def url(self, database: str) -> str:
        return f"postgresql://{LOGIN}@/{database}?host={self.folder}"

    def new_database(self) -> str:
        """A new, empty database's URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
