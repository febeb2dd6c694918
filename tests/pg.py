"""The tests' PostgreSQL server: ehkit/pg_server.py (shared with the benchmarks)."""

from ehkit.pg_server import LOGIN, PG_BIN, Server  # noqa: F401
