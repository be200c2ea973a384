"""The real PostgreSQL the tests use (HOTLINE_TEST_PG, default 127.0.0.1:5432, trust auth,
database test: CI and dev machines have it).

Each test gets a schema of its own, dropped afterwards, so tests never see each other's
rows. Without a server a test is skipped on a developer's machine but fails in CI
(CI=true), where a silent skip would hide that PostgreSQL is not running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

PG_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is not running: {err}")
        pytest.skip(f"no PostgreSQL at {PG_URL} (set HOTLINE_TEST_PG)")


def _drop_from(admin: psycopg.Connection, prefix: str) -> None:
    made = admin.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
    ).fetchall()
    for (name,) in made:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def fresh_schema(prefix: str = "hl_test") -> Iterator[str]:
    """A new, empty schema's name; it and every schema named after it are dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        try:
            yield name
        finally:
            _drop_from(admin, name)


def fresh_schema_url() -> Iterator[str]:
    """A postgresql:// URL whose search_path is a new, empty schema (see `fresh_schema`).
    For a fixture: `yield from fresh_schema_url()`."""
    with fresh_schema("test") as name:
        separator = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{separator}options=-csearch_path%3D{name}"


def schema_of(url: str) -> str:
    """The schema a `fresh_schema_url` URL points at; a test may make more named after it."""
    return url.rpartition("search_path%3D")[2]
