"""The real PostgreSQL the tests use (127.0.0.1:5432, trust auth, on CI and dev machines).

Each test gets a schema of its own, dropped afterwards, so tests never see each other's
rows. HOTLINE_TEST_PG overrides the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

PG_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_schema(prefix: str = "hl_test") -> Iterator[str]:
    """A new, empty schema's name; the schema and all in it are dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as err:
        raise RuntimeError(
            f"these tests need PostgreSQL at {PG_URL} (trust auth); start it or set "
            f"HOTLINE_TEST_PG: {err}"
        ) from err
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
