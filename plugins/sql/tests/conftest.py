"""Fixtures: a PostgreSQL database of this test session's own, and unique table names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from limelight_testsupport import require_tcp, unavailable

PG_HOST = os.environ.get("LIMELIGHT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LIMELIGHT_TEST_PG_PORT", "5432"))
PG_USERS = ("postgres", "root")
PG_ADMIN_DB = "test"


def _admin_connect() -> Any:
    import psycopg

    errors = []
    for user in PG_USERS:
        try:
            return psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname=PG_ADMIN_DB, autocommit=True
            )
        except psycopg.OperationalError as exc:
            errors.append(f"{user}: {exc}")
    unavailable(f"cannot connect to PostgreSQL on {PG_HOST}:{PG_PORT}: {'; '.join(errors)}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def pg_params() -> Iterator[dict[str, Any]]:
    """Connection parameters of a database created for this session and dropped after it."""
    require_tcp("PostgreSQL", PG_HOST, PG_PORT)
    admin = _admin_connect()
    name = f"limelight_sql_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"host": PG_HOST, "port": PG_PORT, "user": admin.info.user, "dbname": name}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_dsn(pg_params: dict[str, Any]) -> str:
    """A libpq connection string for the session's database."""
    return " ".join(f"{k}={v}" for k, v in pg_params.items())


@pytest.fixture
def pg_url(pg_params: dict[str, Any]) -> str:
    """A SQLAlchemy URL (without driver) for the session's database."""
    p = pg_params
    return f"postgresql://{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"


@pytest.fixture
def table() -> str:
    """A table name no other test uses."""
    return f"items_{uuid.uuid4().hex[:10]}"
