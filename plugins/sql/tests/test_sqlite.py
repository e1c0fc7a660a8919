"""sqlite3 through the DB-API wrapper: counts, results, errors, transactions, spans."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from limelight_sql import (
    AsyncConnection,
    AsyncCursor,
    Connection,
    CursorResult,
    instrument_connection,
    plugin,
)

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


def count(telemetry: Harness, op: str, result: str, db_system: str = "sqlite") -> float:
    return telemetry.value("sql_ops_total", db_system=db_system, op=op, result=result, default=0)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, price REAL)")
    connection = instrument_connection(raw)
    yield connection
    connection.close()


class TestStatements:
    """query (returns rows) and exec (everything else) are counted and timed."""

    def test_query_and_exec(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name, price) VALUES (?, ?)", ("apple", 1.5))
        cur = conn.cursor()
        cur.execute("SELECT name, price FROM items WHERE id = ?", (1,))
        assert ("apple", 1.5) == cur.fetchone()
        cur.execute("SELECT name FROM items WHERE id = ?", (42,))
        assert cur.fetchone() is None
        assert 2 == count(telemetry, "query", "ok")
        assert 1 == count(telemetry, "exec", "ok")
        assert 0 == count(telemetry, "query", "error")
        hist = telemetry.histogram(
            "sql_op_duration_seconds", db_system="sqlite", op="query", result="ok"
        )
        assert 2 == hist.count
        assert 0 < hist.sum < 1

    def test_executemany_is_one_operation(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.executemany(
            "INSERT INTO items (name, price) VALUES (?, ?)", [(f"n{i}", i) for i in range(10)]
        )
        assert (10,) == conn.execute("SELECT count(*) FROM items").fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "query", "ok")

    def test_executescript(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.executescript(
            "INSERT INTO items (name) VALUES ('a'); INSERT INTO items (name) VALUES ('b');"
        )
        assert 1 == count(telemetry, "exec", "ok")
        assert (2,) == conn.execute("SELECT count(*) FROM items").fetchone()

    def test_returning_is_a_query(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        if sqlite3.sqlite_version_info < (3, 35):
            pytest.skip("RETURNING needs SQLite 3.35")
        row = conn.execute("INSERT INTO items (name) VALUES (?) RETURNING id", ("a",)).fetchone()
        assert (1,) == row
        assert 1 == count(telemetry, "query", "ok")

    def test_syntax_error(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        bare = sqlite3.connect(":memory:")
        with pytest.raises(sqlite3.OperationalError) as expected:
            bare.execute("SELEC name FROM items")
        with pytest.raises(sqlite3.OperationalError) as actual:
            conn.execute("SELEC name FROM items")
        assert expected.value.args == actual.value.args
        assert 1 == count(telemetry, "exec", "error")

    def test_failed_select_is_a_query_error(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            conn.execute("SELECT * FROM missing_table")
        assert 1 == count(telemetry, "query", "error")
        hist = telemetry.histogram(
            "sql_op_duration_seconds", db_system="sqlite", op="query", result="error"
        )
        assert 1 == hist.count

    def test_constraint_violation(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES (?)", ("a",))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO items (name) VALUES (?)", ("a",))
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "exec", "error")

    def test_closed_connection(self, telemetry: Harness) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        cur = conn.cursor()
        conn.close()
        with pytest.raises(sqlite3.ProgrammingError):
            cur.execute("SELECT 1")
        assert 1 == count(telemetry, "query", "error")


class TestTransactions:
    """Statements inside transactions are counted; rollback undoes the data, not the counts."""

    def test_rollback(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('kept')")
        conn.commit()
        conn.execute("INSERT INTO items (name) VALUES ('dropped')")
        conn.rollback()
        assert [("kept",)] == conn.execute("SELECT name FROM items").fetchall()
        assert 2 == count(telemetry, "exec", "ok")

    def test_with_block_rolls_back_on_error(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        def insert_twice() -> None:
            with conn:
                conn.execute("INSERT INTO items (name) VALUES ('x')")
                conn.execute("INSERT INTO items (name) VALUES ('x')")

        with pytest.raises(sqlite3.IntegrityError):
            insert_twice()
        assert (0,) == conn.execute("SELECT count(*) FROM items").fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "exec", "error")

    def test_explicit_transaction_statements(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.isolation_level = None  # autocommit: the application issues BEGIN itself
        conn.execute("BEGIN")
        conn.execute("INSERT INTO items (name) VALUES ('x')")
        conn.execute("ROLLBACK")
        assert (0,) == conn.execute("SELECT count(*) FROM items").fetchone()
        assert 3 == count(telemetry, "exec", "ok")


class TestDropIn:
    """The wrapper behaves like the driver's connection and cursor."""

    def test_attributes_pass_through(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        assert conn.__wrapped__.row_factory is sqlite3.Row  # type: ignore[attr-defined]
        cur = conn.execute("INSERT INTO items (name, price) VALUES ('a', 2.0)")
        assert (1, 1) == (cur.lastrowid, cur.rowcount)
        row = conn.execute("SELECT name, price FROM items").fetchone()
        assert ("a", 2.0) == (row["name"], row["price"])
        assert conn.in_transaction
        assert 1 == conn.total_changes

    def test_cursor_iteration_and_fetch(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",), ("c",)])
        cur = conn.execute("SELECT name FROM items ORDER BY name")
        assert ["a", "b", "c"] == [r[0] for r in cur]
        cur = conn.cursor()
        assert cur.execute("SELECT name FROM items ORDER BY name") is cur
        assert [("a",), ("b",)] == cur.fetchmany(2)
        assert [("c",)] == cur.fetchall()
        assert cur.connection is conn
        assert "name" == cur.description[0][0]

    def test_wrapping_twice_returns_the_wrapper(self, conn: sqlite3.Connection) -> None:
        assert instrument_connection(conn) is conn
        wrapper: object = conn  # typed as the driver's connection, it is the wrapper
        assert isinstance(wrapper, Connection)

    def test_no_telemetry_passes_through(self) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        assert (1,) == conn.execute("SELECT 1").fetchone()

    def test_db_system_can_be_named(self, telemetry: Harness) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"), db_system="other_sql")
        conn.execute("SELECT 1")
        assert 1 == count(telemetry, "query", "ok", "other_sql")

    def test_empty_db_system_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="db_system"):
            instrument_connection(sqlite3.connect(":memory:"), db_system="")

    def test_plugin_not_loaded(self) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        with Harness() as harness:
            assert (1,) == conn.execute("SELECT 1").fetchone()
            assert "sql_ops_total" not in harness.store

    def test_feature_checks(self, conn: sqlite3.Connection) -> None:
        names = {"execute", "executemany", "executescript", "callproc"}
        raw = sqlite3.connect(":memory:")
        assert {n for n in names if hasattr(raw, n)} == {n for n in names if hasattr(conn, n)}
        raw_cursor, cursor = raw.cursor(), conn.cursor()
        assert {n for n in names if hasattr(raw_cursor, n)} == {
            n for n in names if hasattr(cursor, n)
        }
        assert not hasattr(cursor, "callproc")

    def test_wrapper_of_a_driver_without_shortcuts(self, telemetry: Harness) -> None:
        class BareConnection:
            """A DB-API connection with nothing but cursor() (as psycopg2's and pymysql's)."""

            def __init__(self) -> None:
                self.raw = sqlite3.connect(":memory:")

            def cursor(self) -> sqlite3.Cursor:
                return self.raw.cursor()

        conn = instrument_connection(BareConnection(), db_system="sqlite")
        wrapper: object = conn
        assert isinstance(wrapper, Connection)
        assert not hasattr(conn, "execute")
        assert not hasattr(conn, "executescript")
        conn.cursor().execute("SELECT 1")
        assert 1 == count(telemetry, "query", "ok")

    def test_instrumenting_again_with_spans(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        assert conn is instrument_connection(conn)
        conn.execute("SELECT 1")
        assert [] == telemetry.spans()
        assert conn is instrument_connection(conn, spans=True)
        conn.execute("SELECT 2")
        assert ["SELECT"] == [span.name for span in telemetry.spans()]


class AsyncDriverCursor:
    """The cursor of a minimal async DB-API driver: coroutine ``execute`` and ``executemany``."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor

    @property
    def description(self) -> Any:
        return self.cursor.description

    async def execute(self, sql: str, parameters: Any = ()) -> AsyncDriverCursor:
        self.cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> AsyncDriverCursor:
        self.cursor.executemany(sql, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()


class AsyncDriverConnection:
    """A minimal async DB-API connection over sqlite3 (its ``commit`` is a coroutine)."""

    def __init__(self) -> None:
        self.raw = sqlite3.connect(":memory:")

    def cursor(self) -> AsyncDriverCursor:
        return AsyncDriverCursor(self.raw.cursor())

    async def commit(self) -> None:
        self.raw.commit()


class TestAsyncWrapper:
    """An async driver's connection gets the async wrapper, whose awaited statements count."""

    @pytest.mark.asyncio
    async def test_statements(self, telemetry: Harness) -> None:
        conn = instrument_connection(AsyncDriverConnection(), db_system="sqlite", spans=True)
        wrapper: object = conn
        assert isinstance(wrapper, AsyncConnection)
        assert not hasattr(conn, "execute")
        cur = conn.cursor()
        assert isinstance(cur, AsyncCursor)
        assert cur is await cur.execute("CREATE TABLE t (a INTEGER)")
        assert cur is await cur.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        await cur.execute("SELECT a FROM t ORDER BY a")
        assert [(1,), (2,)] == await cur.fetchall()
        with pytest.raises(sqlite3.OperationalError):
            await cur.execute("SELECT missing FROM t")
        await conn.commit()
        assert 2 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "query", "ok")
        assert 1 == count(telemetry, "query", "error")
        batch = dict(telemetry.span(name="BATCH INSERT t").attributes or {})
        assert 2 == batch["db.operation.batch.size"]
        assert "SELECT t" == telemetry.span(status="error").name


class TestAiosqlite:
    """aiosqlite, whose ``cursor()`` and ``execute()`` are awaitable results that are also
    ``async with`` blocks: the wrapper keeps both uses, and every statement counts."""

    @pytest_asyncio.fixture
    async def aconn(self) -> Any:
        import aiosqlite

        raw = await aiosqlite.connect(":memory:")
        conn = instrument_connection(raw)
        yield conn
        await raw.close()

    @pytest.mark.asyncio
    async def test_awaited_cursor(self, telemetry: Harness, aconn: Any) -> None:
        assert isinstance(aconn, AsyncConnection)
        cur = await aconn.cursor()
        assert isinstance(cur, AsyncCursor)
        await cur.execute("CREATE TABLE t (a INTEGER)")
        await cur.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
        await cur.execute("SELECT a FROM t WHERE a > ? ORDER BY a", (1,))
        assert [(2,), (3,)] == list(await cur.fetchall())
        async with cur as entered:  # the driver's block, yielding the wrapper
            assert entered is cur
        with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
            await cur.execute("SELECT 1")
        await aconn.commit()
        assert 2 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "query", "ok")

    @pytest.mark.asyncio
    async def test_cursor_as_async_with(self, telemetry: Harness, aconn: Any) -> None:
        async with aconn.cursor() as cur:
            assert isinstance(cur, AsyncCursor)
            await cur.execute("SELECT 1")
            assert (1,) == tuple(await cur.fetchone())
        with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
            await cur.execute("SELECT 2")  # closed on leaving the block, as aiosqlite's
        assert 1 == count(telemetry, "query", "ok")
        assert 1 == count(telemetry, "query", "error")

    @pytest.mark.asyncio
    async def test_connection_shortcuts(self, telemetry: Harness, aconn: Any) -> None:
        await aconn.execute("CREATE TABLE t (a INTEGER)")
        result = aconn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        assert isinstance(result, CursorResult)
        assert isinstance(await result, AsyncCursor)
        async with aconn.execute("SELECT count(*) FROM t") as cur:
            assert (2,) == tuple(await cur.fetchone())
        cur = await aconn.execute("SELECT a FROM t ORDER BY a")
        assert [(1,), (2,)] == list(await cur.fetchall())
        assert 2 == count(telemetry, "exec", "ok")
        assert 2 == count(telemetry, "query", "ok")

    @pytest.mark.asyncio
    async def test_a_failed_shortcut_raises_the_driver_error(
        self, telemetry: Harness, aconn: Any
    ) -> None:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await aconn.execute("SELECT a FROM missing")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            async with aconn.execute("SELECT a FROM missing"):
                pass
        assert 2 == count(telemetry, "query", "error")

    @pytest.mark.asyncio
    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    async def test_spans(self, telemetry: Harness, aconn: Any) -> None:
        await aconn.execute("CREATE TABLE t (a INTEGER)")
        async with aconn.execute("SELECT a FROM t WHERE a = ?", (5,)):
            pass
        span = telemetry.span(name="SELECT t", kind="client")
        assert "sqlite" == (span.attributes or {})["db.system.name"]
        assert "SELECT a FROM t WHERE a = ?" == (span.attributes or {})["db.query.text"]


class TestSpans:
    """Spans are opt-in, named by the query summary, and never carry values."""

    def test_off_by_default(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM items")
        assert [] == telemetry.spans()

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_statement_span(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name, price) VALUES ('secret literal', 9.75)")
        conn.execute("SELECT name FROM items WHERE name = ? AND price > 3", ("secret param",))
        span = telemetry.span(name="SELECT items", kind="client", status="unset")
        assert {
            "db.system.name": "sqlite",
            "db.query.text": "SELECT name FROM items WHERE name = ? AND price > ?",
            "db.query.summary": "SELECT items",
            "db.operation.name": "SELECT",
        } == dict(span.attributes or {})
        insert = telemetry.span(name="INSERT items")
        assert (
            "INSERT INTO items (name, price) VALUES (?, ?)"
            == (insert.attributes or {})["db.query.text"]
        )
        for captured in telemetry.spans():
            text = captured.name + " ".join(map(str, (captured.attributes or {}).values()))
            assert "secret" not in text
            assert "9.75" not in text

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_error_span(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('dup')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO items (name) VALUES ('dup')")
        failed = telemetry.find_spans(name="INSERT items", status="error")
        assert 1 == len(failed)
        attributes = dict(failed[0].attributes or {})
        assert attributes["db.response.status_code"] == str(sqlite3.SQLITE_CONSTRAINT_UNIQUE)
        assert attributes["error.type"] == attributes["db.response.status_code"]
        assert not failed[0].status.description
        assert "dup" not in str(failed[0].events)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_batch_span(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",), ("c",)])
        span = telemetry.span(name="BATCH INSERT items")
        attributes = dict(span.attributes or {})
        assert 3 == attributes["db.operation.batch.size"]
        assert "BATCH INSERT items" == attributes["db.query.summary"]
        assert "BATCH INSERT" == attributes["db.operation.name"]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_batch_of_one_is_one_operation(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",)])
        attributes = dict(telemetry.span(name="INSERT items").attributes or {})
        assert "INSERT" == attributes["db.operation.name"]
        assert "db.operation.batch.size" not in attributes

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_script_has_no_operation_name(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.executescript(
            "INSERT INTO items (name) VALUES ('a'); DELETE FROM items WHERE name = 'a';"
        )
        attributes = dict(telemetry.span(name="INSERT items DELETE items").attributes or {})
        assert "db.operation.name" not in attributes
        assert (
            "INSERT INTO items (name) VALUES (?); DELETE FROM items WHERE name = ?;"
            == (attributes["db.query.text"])
        )

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_with_clause_names_its_main_operation(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.execute("WITH cheap AS (SELECT id FROM items WHERE price < 2) SELECT * FROM cheap")
        span = telemetry.span(name="SELECT items SELECT cheap")
        assert "SELECT" == (span.attributes or {})["db.operation.name"]

    def test_per_connection_opt_in(self, telemetry: Harness) -> None:
        traced = instrument_connection(sqlite3.connect(":memory:"), spans=True)
        quiet = instrument_connection(sqlite3.connect(":memory:"))
        traced.execute("SELECT 1")
        quiet.execute("SELECT 2")
        assert ["SELECT"] == [s.name for s in telemetry.spans()]
        assert ["SELECT ?"] == [(s.attributes or {})["db.query.text"] for s in telemetry.spans()]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_span_parent(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        tracer = telemetry.telemetry.tracer("test")
        with tracer.start_as_current_span("request"):
            conn.execute("SELECT 1")
        assert telemetry.span(name="SELECT", parent=telemetry.span(name="request"))


class TestRecordingFailures:
    """A failure inside the instrumentation never changes what the caller sees."""

    @staticmethod
    def run_statements(conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
        from limelight_sql._instruments import Bound, System

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("instrumentation bug")

        monkeypatch.setattr(System, "ok", broken)
        monkeypatch.setattr(System, "failed", broken)
        monkeypatch.setattr(Bound, "start_span", broken)
        conn.execute("INSERT INTO items (name) VALUES ('a')")
        assert [("a",)] == conn.execute("SELECT name FROM items").fetchall()
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO items (name) VALUES ('a')")

    def test_metrics_only(
        self, telemetry: Harness, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.run_statements(conn, monkeypatch)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_with_spans(
        self, telemetry: Harness, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.run_statements(conn, monkeypatch)
        assert [] == telemetry.spans()
