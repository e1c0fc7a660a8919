"""psycopg 3 and psycopg2 against a real PostgreSQL through the DB-API wrapper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg2
import psycopg2.errors
import pytest
from limelight_sql import instrument_connection, plugin
from psycopg import sql

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


def count(telemetry: Harness, op: str, result: str) -> float:
    return telemetry.value("sql_ops_total", db_system="postgresql", op=op, result=result, default=0)


def _psycopg(dsn: str) -> Any:
    return psycopg.connect(dsn)


def _psycopg2(dsn: str) -> Any:
    return psycopg2.connect(dsn)


DRIVERS: dict[str, Callable[[str], Any]] = {"psycopg": _psycopg, "psycopg2": _psycopg2}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> str:
    """The driver under test."""
    return str(request.param)


@pytest.fixture
def conn(driver: str, pg_dsn: str, table: str) -> Iterator[Any]:
    """An instrumented connection with an empty table ``table``."""
    raw = DRIVERS[driver](pg_dsn)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text UNIQUE, n int)")
    raw.commit()
    connection = instrument_connection(raw)
    yield connection
    if not raw.closed:
        raw.rollback()
        raw.close()
    cleanup = DRIVERS[driver](pg_dsn)
    with cleanup.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    cleanup.commit()
    cleanup.close()


class TestStatements:
    """query and exec statements, with each driver, in each execution style."""

    def test_query_and_exec(self, telemetry: Harness, conn: Any, table: str) -> None:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name, n) VALUES (%s, %s)", ("a", 1))
            cur.execute(f"SELECT name, n FROM {table} WHERE name = %s", ("a",))
            assert ("a", 1) == cur.fetchone()
            cur.execute(f"SELECT name FROM {table} WHERE name = %s", ("none",))
            assert [] == cur.fetchall()
        conn.commit()
        assert 1 == count(telemetry, "exec", "ok")
        assert 2 == count(telemetry, "query", "ok")
        hist = telemetry.histogram(
            "sql_op_duration_seconds", db_system="postgresql", op="query", result="ok"
        )
        assert 2 == hist.count

    def test_returning_is_a_query(self, telemetry: Harness, conn: Any, table: str) -> None:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name) VALUES (%s) RETURNING id", ("a",))
            assert (1,) == cur.fetchone()
        assert 1 == count(telemetry, "query", "ok")

    def test_executemany(self, telemetry: Harness, conn: Any, table: str) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (name, n) VALUES (%s, %s)", [(f"n{i}", i) for i in range(5)]
            )
            cur.execute(f"SELECT count(*) FROM {table}")
            assert (5,) == cur.fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "query", "ok")

    def test_sql_prepared_statement(self, telemetry: Harness, conn: Any, table: str) -> None:
        with conn.cursor() as cur:
            cur.execute(f"PREPARE get_item (text) AS SELECT n FROM {table} WHERE name = $1")
            cur.execute(f"INSERT INTO {table} (name, n) VALUES ('a', 7)")
            cur.execute("EXECUTE get_item ('a')")
            assert (7,) == cur.fetchone()
            cur.execute("EXECUTE get_item ('b')")
            assert cur.fetchone() is None
            cur.execute("DEALLOCATE get_item")
        assert 2 == count(telemetry, "query", "ok")
        assert 3 == count(telemetry, "exec", "ok")

    def test_syntax_error(self, telemetry: Harness, conn: Any, driver: str) -> None:
        expected = (
            psycopg.errors.SyntaxError if driver == "psycopg" else psycopg2.errors.SyntaxError
        )
        with conn.cursor() as cur, pytest.raises(expected):
            cur.execute("SELEC 1")
        assert 1 == count(telemetry, "exec", "error")

    def test_failure_inside_a_transaction_then_rollback(
        self, telemetry: Harness, conn: Any, table: str, driver: str
    ) -> None:
        errors = psycopg.errors if driver == "psycopg" else psycopg2.errors
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name) VALUES ('a')")
            with pytest.raises(errors.UniqueViolation):
                cur.execute(f"INSERT INTO {table} (name) VALUES ('a')")
            with pytest.raises(errors.InFailedSqlTransaction):
                cur.execute(f"SELECT * FROM {table}")
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert (0,) == cur.fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "exec", "error")
        assert 1 == count(telemetry, "query", "error")
        assert 1 == count(telemetry, "query", "ok")

    def test_commit_keeps_and_rollback_drops(
        self, telemetry: Harness, conn: Any, table: str
    ) -> None:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name) VALUES ('kept')")
            conn.commit()
            cur.execute(f"INSERT INTO {table} (name) VALUES ('dropped')")
            conn.rollback()
            cur.execute(f"SELECT name FROM {table}")
            assert [("kept",)] == cur.fetchall()
        assert 2 == count(telemetry, "exec", "ok")

    def test_dropped_connection(self, telemetry: Harness, conn: Any, driver: str) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.commit()
        operational = psycopg.OperationalError if driver == "psycopg" else psycopg2.OperationalError
        with pytest.raises(operational), conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert 1 == count(telemetry, "query", "error")
        assert conn.closed
        with pytest.raises((psycopg.Error, psycopg2.Error)):
            conn.cursor().execute("SELECT 1")

    def test_driver_api_passes_through(self, conn: Any, driver: str) -> None:
        conn.autocommit = True
        assert conn.__wrapped__.autocommit is True
        assert conn.info.dbname.startswith("limelight_sql_")
        with conn.cursor() as cur:
            assert cur.connection is conn
            cur.execute("SELECT %s::int + 1", (1,))
            assert (2,) == cur.fetchone()
            assert 1 == cur.rowcount


class TestPsycopg:
    """psycopg 3 specifics: server-side prepared statements, transactions, Composed SQL."""

    @pytest.fixture(params=["psycopg"])
    def driver(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    def test_prepared_statements(self, telemetry: Harness, conn: Any, table: str) -> None:
        conn.execute(f"INSERT INTO {table} (name, n) VALUES (%s, %s)", ("a", 1), prepare=True)
        for _ in range(3):
            row = conn.execute(
                f"SELECT n FROM {table} WHERE name = %s", ("a",), prepare=True
            ).fetchone()
            assert (1,) == row
        assert 3 == count(telemetry, "query", "ok")
        assert 1 == count(telemetry, "exec", "ok")

    def test_transaction_block_rolls_back(self, telemetry: Harness, conn: Any, table: str) -> None:
        def insert_twice() -> None:
            with conn.transaction():
                conn.execute(f"INSERT INTO {table} (name) VALUES ('a')")
                conn.execute(f"INSERT INTO {table} (name) VALUES ('a')")

        with pytest.raises(psycopg.errors.UniqueViolation):
            insert_twice()
        assert (0,) == conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert 1 == count(telemetry, "exec", "ok")
        assert 1 == count(telemetry, "exec", "error")

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_composed_statement(self, telemetry: Harness, conn: Any, table: str) -> None:
        query = sql.SQL("SELECT {} FROM {} WHERE name = {}").format(
            sql.Identifier("n"), sql.Identifier(table), sql.Literal("secret")
        )
        assert [] == conn.execute(query).fetchall()
        span = telemetry.span(name=f'SELECT "{table}"')
        assert (
            f'SELECT "n" FROM "{table}" WHERE name = ?' == (span.attributes or {})["db.query.text"]
        )
        assert 1 == count(telemetry, "query", "ok")


class TestSpans:
    """Opted-in spans carry the server, the database and SQLSTATE codes; never values."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_statement_span(
        self, telemetry: Harness, conn: Any, table: str, pg_params: dict[str, Any]
    ) -> None:
        with conn.cursor() as cur:
            cur.execute(f"SELECT n FROM {table} WHERE name = %s AND n > 5", ("secret",))
        span = telemetry.span(name=f"SELECT {table}", kind="client")
        attributes = dict(span.attributes or {})
        port = pg_params["port"]
        assert attributes == {
            "db.system.name": "postgresql",
            "db.namespace": pg_params["dbname"],
            "server.address": pg_params["host"],
            **({} if port == 5432 else {"server.port": port}),
            "db.query.text": f"SELECT n FROM {table} WHERE name = %s AND n > ?",
            "db.query.summary": f"SELECT {table}",
            "db.operation.name": "SELECT",
        }

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_error_span(self, telemetry: Harness, conn: Any, table: str) -> None:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name) VALUES ('secret-key')")
            with pytest.raises((psycopg.errors.UniqueViolation, psycopg2.errors.UniqueViolation)):
                cur.execute(f"INSERT INTO {table} (name) VALUES ('secret-key')")
        failed = telemetry.span(name=f"INSERT {table}", status="error")
        attributes = dict(failed.attributes or {})
        assert "23505" == attributes["db.response.status_code"]
        assert "23505" == attributes["error.type"]
        everything = str(attributes) + str(failed.events) + str(failed.status.description)
        assert "secret" not in everything
