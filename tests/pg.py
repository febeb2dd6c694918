"""The tests' PostgreSQL server: ehkit/pg_server.py (shared with the benchmarks); and a store
a test built in SQLite, put on either back end."""

from __future__ import annotations

import os
from pathlib import Path

from ehkit.pg_server import LOGIN, PG_BIN, Server  # noqa: F401


def on_back_end(built: str | os.PathLike, back_end: str, request) -> Path | str:
    """The SQLite store ``built`` on ``back_end``: the file itself, or its ``ehkit copy`` in a
    new database of the ``pg_server`` fixture (same rows, same ids). A path or a URL."""
    if back_end == "sqlite":
        return Path(built)
    from ehkit import copying

    url = request.getfixturevalue("pg_server").new_database()
    copying.copy(built, url)
    return url
