"""Shared fixtures: real SQLite files in a temporary folder, built the way users build them."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from ehkit import db as store
from ehkit import demo

# The demo data used by read-only tests ends here, so its quarters are fixed: 2026Q3 is the
# last full quarter.
DEMO_UNTIL = dt.date(2026, 10, 31)


@pytest.fixture
def db(tmp_path):
    """An empty, migrated store in a real file."""
    database = store.connect(tmp_path / "ehkit.db")
    yield database
    database.close()


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory):
    """A small synthetic service (read-only: copy it before writing)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    database = store.connect(path)
    demo.generate(database, episodes=400, seed=7, until=DEMO_UNTIL)
    database.close()
    return path


# -- PostgreSQL (issue 18): the same store on both back ends -----------------------------
@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (tests/pg.py), started once per test process."""
    from pg import Server

    server = Server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request, tmp_path):
    """Where a new store goes on each back end: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ehkit.db")
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def db_both(store_at):
    """An empty, migrated store, on SQLite and on PostgreSQL."""
    database = store.connect(store_at)
    yield database
    database.close()


@pytest.fixture(scope="session")
def demo_pg(pg_server, demo_db_path):
    """The demo store's `ehkit copy` in a PostgreSQL database (read-only), made once per test
    process: its URL."""
    from ehkit import copying

    url = pg_server.new_database()
    copying.copy(demo_db_path, url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def demo_both(request, demo_db_path):
    """The demo store on each back end (read-only): the SQLite file, and its `ehkit copy` in a
    PostgreSQL database (demo_pg). A path or a URL, for store.connect."""
    if request.param == "sqlite":
        return str(demo_db_path)
    return request.getfixturevalue("demo_pg")


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_copy_both(request, demo_db_path, tmp_path):
    """A copy of the demo store to write to, on each back end: a file, or its `ehkit copy`
    in a new PostgreSQL database. A path or a URL, for store.connect."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(demo_db_path, path)
        return str(path)
    from ehkit import copying

    url = request.getfixturevalue("pg_server").new_database()
    copying.copy(demo_db_path, url)
    return url


@pytest.fixture
def log_key(tmp_path, monkeypatch):
    """The change log's HMAC key (EHKIT_LOG_KEY), a file only its owner reads."""
    key = tmp_path / "secret" / "ehkit-log.key"
    key.parent.mkdir()
    key.write_text("3f9c2a7d1e8b4c6a9d0e2f4b6c8a1d3e5f7a9c0b2d4e6f8a\n")
    key.chmod(0o600)
    monkeypatch.setenv("EHKIT_LOG_KEY", str(key))
    return key
