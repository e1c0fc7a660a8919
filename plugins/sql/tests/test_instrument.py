"""The instrument contract: drivers at their connect seam, SQLAlchemy engines made afterwards.

Against SQLite, aiosqlite and a real PostgreSQL (psycopg 3, psycopg2, their pools, and
SQLAlchemy on top of each): every statement counted once, whichever layers are instrumented.
"""

from __future__ import annotations

import sqlite3
import sqlite3.dbapi2
from collections.abc import Iterator
from typing import Any

import aiosqlite
import aiosqlite.core
import limelight_sql
import psycopg
import psycopg2
import psycopg2.extras
import psycopg2.pool
import psycopg_pool
import pytest
import sqlalchemy as sa
import structlog.testing
from limelight_sql import (
    instrument,
    instrument_connection,
    instrument_engine,
    is_instrumented,
    plugin,
    uninstrument,
    uninstrument_engine,
)
from limelight_testsupport.imports import run_hiding
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from limelight.export import suppressed
from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])

LIBRARIES = ("sqlite3", "aiosqlite", "psycopg", "psycopg2", "sqlalchemy")


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    """Every test starts and ends with the libraries as they were."""
    uninstrument()
    yield
    uninstrument()


def count(telemetry: Harness, db_system: str = "sqlite", op: str = "query") -> float:
    return telemetry.value("sql_ops_total", db_system=db_system, op=op, result="ok", default=0)


def total(telemetry: Harness) -> float:
    series: list[Any] = telemetry.series("sql_ops_total")
    return sum(telemetry.value("sql_ops_total", **labels) for labels in series)


def _seams() -> list[object]:
    """What the instrumentation replaces, as the modules and classes themselves hold it."""
    return [
        vars(sqlite3)["connect"],
        vars(sqlite3.dbapi2)["connect"],
        vars(aiosqlite)["connect"],
        vars(aiosqlite.core)["connect"],
        vars(psycopg)["connect"],
        vars(psycopg.Connection)["connect"],
        vars(psycopg.AsyncConnection)["connect"],
        vars(psycopg2)["connect"],
        vars(Engine)["__init__"],
    ]


class TestContract:
    """Idempotent, exactly undone, selectable by library."""

    def test_instrument_every_installed_library_once(self) -> None:
        assert not is_instrumented()
        assert LIBRARIES == instrument()
        assert () == instrument()
        assert all(is_instrumented(name) for name in LIBRARIES)
        assert LIBRARIES == uninstrument()
        assert () == uninstrument()
        assert not is_instrumented()

    def test_uninstrument_puts_back_the_very_functions(self) -> None:
        before = _seams()
        instrument()
        during = _seams()
        assert all(a is not b for a, b in zip(before, during, strict=True))
        uninstrument()
        assert all(a is b for a, b in zip(before, _seams(), strict=True))

    def test_unknown_library_is_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'pymysql'"):
            instrument("pymysql")


class TestSqlite:
    """sqlite3.connect gives measured connections that are sqlite3 connections."""

    def test_every_statement_of_a_new_connection(self, telemetry: Harness) -> None:
        instrument("sqlite3")
        conn = sqlite3.connect(":memory:")
        assert isinstance(conn, sqlite3.Connection)
        conn.row_factory = sqlite3.Row
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t (name) VALUES (?)", [("a",), ("b",)])
        cur = conn.cursor()
        cur.execute("SELECT name FROM t ORDER BY id")
        assert ["a", "b"] == [row["name"] for row in cur.fetchall()]
        conn.executescript("UPDATE t SET name = 'c'; DELETE FROM t WHERE id = 2;")
        assert 3 == count(telemetry, op="exec")
        assert 1 == count(telemetry, op="query")
        target = sqlite3.connect(":memory:")
        conn.backup(target)  # the driver's own API takes it
        assert [("c",)] == target.execute("SELECT name FROM t").fetchall()
        assert instrument_connection(conn) is conn

    def test_a_factory_of_the_application_stays(self, telemetry: Harness) -> None:
        class Mine(sqlite3.Connection):
            mine = True

        instrument("sqlite3")
        conn = sqlite3.connect(":memory:", factory=Mine)
        positional = sqlite3.connect(":memory:", 5.0, 0, "DEFERRED", True, Mine)
        assert isinstance(conn, Mine) and isinstance(positional, Mine)
        conn.execute("SELECT 1")
        positional.execute("SELECT 1")
        assert 2 == count(telemetry)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_spans_follow_the_variable(self, telemetry: Harness) -> None:
        instrument("sqlite3")
        sqlite3.connect(":memory:").execute("SELECT 1")
        [span] = telemetry.spans()
        assert "sqlite" == (span.attributes or {})["db.system.name"]
        assert "SELECT ?" == (span.attributes or {})["db.query.text"]

    def test_uninstrument_quiets_the_connections_it_made(self, telemetry: Harness) -> None:
        instrument("sqlite3")
        conn = sqlite3.connect(":memory:")
        uninstrument("sqlite3")
        conn.execute("SELECT 1")
        assert 0 == total(telemetry)
        assert instrument_connection(conn) is conn  # asked for explicitly: it records again
        conn.execute("SELECT 1")
        assert 1 == count(telemetry)

    def test_a_failing_instrumentation_leaves_the_connection_plain(
        self, telemetry: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(factory: type) -> type:
            raise RuntimeError("changed sqlite3")

        monkeypatch.setattr(limelight_sql._connect, "measured_sqlite_class", broken)
        instrument("sqlite3")
        with structlog.testing.capture_logs() as logs:
            conn = sqlite3.connect(":memory:")
            sqlite3.connect(":memory:")
        assert type(conn) is sqlite3.Connection
        assert [(1,)] == conn.execute("SELECT 1").fetchall()
        assert [("sql", "sqlite3 connect")] == [
            (e["component"], e["where"]) for e in logs if "component" in e
        ]


class TestAiosqlite:
    """aiosqlite's connections, measured once though sqlite3 is instrumented under them."""

    @pytest.mark.asyncio
    async def test_await_and_async_with(self, telemetry: Harness) -> None:
        instrument("sqlite3", "aiosqlite")
        async with aiosqlite.connect(":memory:") as db:
            await db.execute("SELECT 1")
            async with db.execute("SELECT 2") as cur:
                assert [(2,)] == list(await cur.fetchall())
        db = await aiosqlite.connect(":memory:")
        try:
            await db.execute("SELECT 3")
        finally:
            await db.close()
        assert 3 == count(telemetry)
        assert 3 == total(telemetry)


class TestPostgres:
    """psycopg 3 (sync, async, pool) and psycopg2 (plain, own factory, pool)."""

    def test_psycopg(self, telemetry: Harness, pg_dsn: str) -> None:
        instrument("psycopg")
        with psycopg.connect(pg_dsn) as a, psycopg.Connection.connect(pg_dsn) as b:
            assert isinstance(a, psycopg.Connection)
            a.execute("SELECT 1")
            b.execute("SELECT 2")
        with psycopg_pool.ConnectionPool(pg_dsn, min_size=1, open=True) as pool:
            with pool.connection() as conn:
                conn.execute("SELECT 3")
            with pool.connection() as conn:
                conn.execute("SELECT 4")
        assert 4 == count(telemetry, "postgresql")

    @pytest.mark.asyncio
    async def test_psycopg_async(self, telemetry: Harness, pg_dsn: str) -> None:
        instrument("psycopg")
        conn = await psycopg.AsyncConnection.connect(pg_dsn)
        try:
            assert isinstance(conn, psycopg.AsyncConnection)
            await conn.execute("SELECT 1")
        finally:
            await conn.close()
        assert 1 == count(telemetry, "postgresql")

    def test_psycopg2(self, telemetry: Harness, pg_dsn: str) -> None:
        instrument("psycopg2")
        plain = psycopg2.connect(pg_dsn)
        own: Any = psycopg2.connect(pg_dsn, connection_factory=psycopg2.extras.DictConnection)
        pool = psycopg2.pool.SimpleConnectionPool(1, 1, pg_dsn)
        try:
            assert isinstance(plain, limelight_sql.Psycopg2Connection)
            assert isinstance(own, psycopg2.extras.DictConnection)
            with plain.cursor() as cur:
                cur.execute("SELECT 1")
            dict_cursor: Any = own.cursor()
            with dict_cursor:
                dict_cursor.execute("SELECT 1 AS one")
                row: Any = dict_cursor.fetchone()
                assert 1 == row["one"]
            pooled = pool.getconn()
            with pooled.cursor() as cur:
                cur.execute("SELECT 1")
            pool.putconn(pooled)
        finally:
            plain.close()
            own.close()
            pool.closeall()
        assert 3 == count(telemetry, "postgresql")

    def test_a_failing_instrumentation_leaves_the_connection_working(
        self, telemetry: Harness, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(connection: Any) -> Any:
            raise RuntimeError("changed psycopg")

        monkeypatch.setattr(limelight_sql._connect, "instrument_connection", broken)
        instrument("psycopg")
        with psycopg.connect(pg_dsn) as conn:
            assert (1,) == conn.execute("SELECT 1").fetchone()
        assert 0 == total(telemetry)


class TestSqlAlchemy:
    """Engines made afterwards, counted once with the driver instrumented under them."""

    def test_an_engine_made_afterwards_is_counted_once(self, telemetry: Harness) -> None:
        before = sa.create_engine("sqlite://", poolclass=StaticPool)
        with before.connect() as conn:  # its one connection, made before too
            conn.execute(sa.text("SELECT 0"))
        instrument()
        engine = sa.create_engine("sqlite://", poolclass=StaticPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text("SELECT 2"))  # an engine of execution options: the same one
        engine.dispose()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 3"))
        with before.connect() as conn:
            conn.execute(sa.text("SELECT 4"))  # made before: left alone
        assert 3 == count(telemetry)
        assert 3 == total(telemetry)

    def test_postgres_engines_over_each_driver(self, telemetry: Harness, pg_url: str) -> None:
        instrument()
        for driver in ("psycopg", "psycopg2"):
            engine = sa.create_engine(pg_url.replace("postgresql://", f"postgresql+{driver}://"))
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            finally:
                engine.dispose()
        assert 2 == total(telemetry)  # the dialects' own first statements are not counted

    @pytest.mark.asyncio
    async def test_async_engines(self, telemetry: Harness, pg_url: str) -> None:
        instrument()
        for url in (
            "sqlite+aiosqlite://",
            pg_url.replace("postgresql://", "postgresql+psycopg://"),
        ):
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            finally:
                await engine.dispose()
        assert 1 == count(telemetry, "sqlite")
        assert 1 == count(telemetry, "postgresql")
        assert 2 == total(telemetry)

    def test_an_explicit_instrumentation_wins(self, telemetry: Harness) -> None:
        instrument("sqlalchemy")
        engine = instrument_engine(sa.create_engine("sqlite://"), db_system="ledger")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        uninstrument()  # undoes what instrument() did, not what the application asked for
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert 2 == count(telemetry, "ledger")
        assert 2 == total(telemetry)

    def test_uninstrument_takes_the_listeners_off(self, telemetry: Harness) -> None:
        instrument("sqlalchemy")
        engine = sa.create_engine("sqlite://")
        uninstrument()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert 0 == total(telemetry)

    def test_an_engine_over_instrumented_connections_counts_once(self, telemetry: Harness) -> None:
        def creator() -> Any:
            return instrument_connection(sqlite3.connect(":memory:", check_same_thread=False))

        engine = instrument_engine(sa.create_engine("sqlite://", creator=creator))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            wrapped: Any = conn.connection.driver_connection
        assert 1 == total(telemetry)
        uninstrument_engine(engine)  # the connection records on its own again
        wrapped.execute("SELECT 1")
        assert 2 == total(telemetry)


class TestImports:
    """Drivers are imported only to be instrumented, and never when they are not installed."""

    def test_a_missing_library_is_never_imported(self) -> None:
        result = run_hiding(
            ["psycopg2", "sqlalchemy"],
            """
            import limelight_sql
            names = ("aiosqlite", "psycopg", "psycopg2", "sqlalchemy")
            before = loaded(*names)
            done = limelight_sql.instrument()
            report(before=before, done=done, after=loaded(*names))
            """,
        )
        assert [] == result["before"]
        assert ["sqlite3", "aiosqlite", "psycopg"] == result["done"]
        assert ["aiosqlite", "psycopg"] == result["after"]


class TestSuppressed:
    """Statements run where instrumentation is suppressed (telemetry's own queries, such as
    the cdc slot monitor's) are neither counted nor traced, on every measuring path."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_every_path_records_nothing(self, telemetry: Harness, pg_dsn: str) -> None:
        wrapped = instrument_connection(sqlite3.connect(":memory:"))  # the DB-API wrapper
        instrument()
        native = sqlite3.connect(":memory:")  # the measuring subclass
        engine = sa.create_engine("sqlite://", poolclass=StaticPool)
        with suppressed():
            native.execute("SELECT 1")
            wrapped.execute("SELECT 2")
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 3"))
            with psycopg.connect(pg_dsn) as pg:
                pg.execute("SELECT 4")
        assert 0 == total(telemetry)
        assert [] == telemetry.spans()
        native.execute("SELECT 5")  # outside: recorded as ever
        assert 1 == total(telemetry)
        assert 1 == len(telemetry.spans())

    @pytest.mark.asyncio
    async def test_async_drivers_record_nothing(self, telemetry: Harness, pg_dsn: str) -> None:
        instrument("psycopg")
        async with await psycopg.AsyncConnection.connect(pg_dsn) as pg:
            with suppressed():
                await pg.execute("SELECT 1")
            assert 0 == total(telemetry)
            await pg.execute("SELECT 2")
        assert 1 == total(telemetry)
