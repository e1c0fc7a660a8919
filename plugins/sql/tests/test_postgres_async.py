"""psycopg's AsyncConnection, instrumented in place through its cursor factories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from limelight_sql import instrument_connection, plugin

from limelight.testing import Harness

pytestmark = [pytest.mark.limelight(plugins=[plugin]), pytest.mark.asyncio]


def count(telemetry: Harness, op: str, result: str) -> float:
    return telemetry.value("sql_ops_total", db_system="postgresql", op=op, result=result, default=0)


@pytest_asyncio.fixture
async def aconn(pg_dsn: str, table: str) -> AsyncIterator[Any]:
    """An instrumented AsyncConnection with an empty table ``table``."""
    raw = await psycopg.AsyncConnection.connect(pg_dsn)
    await raw.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text UNIQUE)")
    await raw.commit()
    yield instrument_connection(raw)
    if not raw.closed:
        await raw.rollback()
        await raw.execute(f"DROP TABLE IF EXISTS {table}")
        await raw.commit()
        await raw.close()
    else:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as cleanup:
            await cleanup.execute(f"DROP TABLE IF EXISTS {table}")


class TestAsyncStatements:
    """Awaited statements are counted and timed like sync ones."""

    async def test_query_and_exec(self, telemetry: Harness, aconn: Any, table: str) -> None:
        assert isinstance(aconn, psycopg.AsyncConnection)
        async with aconn.cursor() as cur:
            await cur.execute(f"INSERT INTO {table} (name) VALUES (%s)", ("a",))
            await cur.execute(f"SELECT name FROM {table}")
            assert [("a",)] == await cur.fetchall()
            await cur.execute(f"SELECT name FROM {table}")
            assert [("a",)] == [row async for row in cur]
        cur2 = await aconn.execute(f"SELECT count(*) FROM {table}")
        assert (1,) == await cur2.fetchone()
        await aconn.commit()
        assert 1 == count(telemetry, "exec", "ok")
        assert 3 == count(telemetry, "query", "ok")

    async def test_executemany_and_rollback(
        self, telemetry: Harness, aconn: Any, table: str
    ) -> None:
        async with aconn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO {table} (name) VALUES (%s)", [("a",), ("b",), ("c",)]
            )
        await aconn.rollback()
        cur = await aconn.execute(f"SELECT count(*) FROM {table}")
        assert (0,) == await cur.fetchone()
        assert 1 == count(telemetry, "exec", "ok")

    async def test_errors(self, telemetry: Harness, aconn: Any, table: str) -> None:
        with pytest.raises(psycopg.errors.SyntaxError):
            await aconn.execute("SELEC 1")
        await aconn.rollback()
        with pytest.raises(psycopg.errors.UndefinedTable):
            await aconn.execute("SELECT * FROM no_such_table")
        await aconn.rollback()
        assert 1 == count(telemetry, "exec", "error")
        assert 1 == count(telemetry, "query", "error")

    async def test_dropped_connection(self, telemetry: Harness, aconn: Any) -> None:
        with pytest.raises(psycopg.OperationalError):
            await aconn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert 1 == count(telemetry, "query", "error")

    async def test_transaction_block(self, telemetry: Harness, aconn: Any, table: str) -> None:
        async def insert_twice() -> None:
            async with aconn.transaction():
                await aconn.execute(f"INSERT INTO {table} (name) VALUES ('x')")
                await aconn.execute(f"INSERT INTO {table} (name) VALUES ('x')")

        with pytest.raises(psycopg.errors.UniqueViolation):
            await insert_twice()
        cur = await aconn.execute(f"SELECT count(*) FROM {table}")
        assert (0,) == await cur.fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "exec", "error")

    async def test_cancelled_statement_is_an_error(self, telemetry: Harness, aconn: Any) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aconn.execute("SELECT pg_sleep(5)"), 0.2)
        assert 1 == count(telemetry, "query", "error")

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    async def test_spans(self, telemetry: Harness, aconn: Any, table: str) -> None:
        tracer = telemetry.telemetry.tracer("test")
        with tracer.start_as_current_span("request"):
            await aconn.execute(f"SELECT name FROM {table} WHERE id = 3")
        span = telemetry.span(name=f"SELECT {table}", parent=telemetry.span(name="request"))
        assert f"SELECT name FROM {table} WHERE id = ?" == (span.attributes or {})["db.query.text"]
