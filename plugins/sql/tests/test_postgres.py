"""psycopg 3 and psycopg2 against a real PostgreSQL through the DB-API wrapper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
import psycopg2.sql
import psycopg_pool
import pytest
from limelight_sql import Psycopg2Connection, instrument_connection, plugin
from psycopg import sql
from psycopg.types.enum import EnumInfo, register_enum

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


def count(telemetry: Harness, op: str, result: str) -> float:
    return telemetry.value("sql_ops_total", db_system="postgresql", op=op, result=result, default=0)


def _psycopg(dsn: str) -> Any:
    return psycopg.connect(dsn)


def _psycopg2(dsn: str) -> Any:
    return psycopg2.connect(dsn)


def _psycopg2_factory(dsn: str) -> Any:
    return psycopg2.connect(dsn, connection_factory=Psycopg2Connection)


DRIVERS: dict[str, Callable[[str], Any]] = {
    "psycopg": _psycopg,
    "psycopg2": _psycopg2,
    "psycopg2-connection_factory": _psycopg2_factory,
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> str:
    """The driver under test (psycopg2 instrumented after connecting, or by its factory)."""
    return str(request.param)


@pytest.fixture
def conn(driver: str, pg_dsn: str, table: str) -> Iterator[Any]:
    """An instrumented connection with an empty table ``table``."""
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text UNIQUE, n int)")
    raw = DRIVERS[driver](pg_dsn)
    connection = instrument_connection(raw)
    yield connection
    if not raw.closed:
        raw.rollback()
        raw.close()
    with psycopg.connect(pg_dsn, autocommit=True) as cleanup:
        cleanup.execute(f"DROP TABLE IF EXISTS {table}")


def errors_of(driver: str) -> Any:
    """The driver's module of SQLSTATE exception classes."""
    return psycopg.errors if driver == "psycopg" else psycopg2.errors


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
        with conn.cursor() as cur, pytest.raises(errors_of(driver).SyntaxError):
            cur.execute("SELEC 1")
        assert 1 == count(telemetry, "exec", "error")

    def test_failure_inside_a_transaction_then_rollback(
        self, telemetry: Harness, conn: Any, table: str, driver: str
    ) -> None:
        errors = errors_of(driver)
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

    def test_callproc(self, telemetry: Harness, conn: Any, driver: str) -> None:
        if driver == "psycopg":
            assert not hasattr(conn.cursor(), "callproc")  # psycopg 3 has none
            return
        with conn.cursor() as cur:
            cur.callproc("upper", ("a",))
            assert ("A",) == cur.fetchone()
        assert 1 == count(telemetry, "query", "ok")

    def test_driver_api_passes_through(self, conn: Any, driver: str) -> None:
        conn.autocommit = True
        assert conn.autocommit is True
        assert conn.info.dbname.startswith("limelight_sql_")
        with conn.cursor() as cur:
            assert cur.connection is conn
            cur.execute("SELECT %s::int + 1", (1,))
            assert (2,) == cur.fetchone()
            assert 1 == cur.rowcount


class TestDropIn:
    """The instrumented connection is the driver's own: its helpers and C functions take it."""

    def test_same_object(self, pg_dsn: str) -> None:
        for raw in (psycopg.connect(pg_dsn), psycopg2.connect(pg_dsn)):
            with raw:
                assert raw is instrument_connection(raw)
        factory = psycopg2.connect(pg_dsn, connection_factory=Psycopg2Connection)
        assert isinstance(factory, psycopg2.extensions.connection)
        factory.close()

    def test_pools_instrument_the_connections_they_make(
        self, telemetry: Harness, pg_dsn: str
    ) -> None:
        def configure(conn: psycopg.Connection[Any]) -> None:
            instrument_connection(conn)

        with (
            psycopg_pool.ConnectionPool(
                pg_dsn, min_size=1, max_size=2, configure=configure, open=True
            ) as pool,
            pool.connection() as conn,
        ):
            assert (1,) == conn.execute("SELECT 1").fetchone()
        pool2 = psycopg2.pool.SimpleConnectionPool(
            1, 2, pg_dsn, connection_factory=Psycopg2Connection
        )
        conn2 = pool2.getconn()
        cur: Any = conn2.cursor(cursor_factory=psycopg2.extras.DictCursor)
        cur.execute("SELECT 2")
        cur.close()
        pool2.putconn(conn2)
        pool2.closeall()
        assert 2 == count(telemetry, "query", "ok")

    @pytest.mark.parametrize("driver", ["psycopg2", "psycopg2-connection_factory"])
    def test_psycopg2_helpers(self, telemetry: Harness, conn: Any, table: str, driver: str) -> None:
        assert isinstance(conn, psycopg2.extensions.connection)
        identifier = psycopg2.sql.Identifier("my table")
        assert '"my table"' == identifier.as_string(conn)
        assert '"my table"' == psycopg2.extensions.quote_ident("my table", conn)
        psycopg2.extras.register_default_jsonb(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT %s::jsonb", ('{"a": 1}',))
            assert ({"a": 1},) == cur.fetchone()
            query = psycopg2.sql.SQL("SELECT count(*) FROM {}")
            cur.execute(query.format(psycopg2.sql.Identifier(table)))
            assert (0,) == cur.fetchone()
        assert 2 == count(telemetry, "query", "ok")

    @pytest.mark.parametrize("driver", ["psycopg"])
    def test_psycopg_helpers(self, telemetry: Harness, conn: Any, table: str) -> None:
        assert isinstance(conn, psycopg.Connection)
        assert '"my table"' == sql.Identifier("my table").as_string(conn)
        conn.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        info = EnumInfo.fetch(conn, "mood")
        assert info is not None
        register_enum(info, conn)
        row = conn.execute("SELECT enum_range(NULL::mood)").fetchone()
        assert row is not None
        assert ["happy", "sad"] == [mood.name for mood in row[0]]
        with conn.cursor() as cur, cur.copy(f"COPY {table} (name, n) FROM STDIN") as copy:
            copy.write_row(("a", 1))
        assert [("a", 1)] == conn.execute(f"SELECT name, n FROM {table}").fetchall()
        conn.rollback()
        # EnumInfo.fetch queries through a cursor of its own (not measured), COPY neither
        assert 2 == count(telemetry, "query", "ok")
        assert 1 == count(telemetry, "exec", "ok")

    @pytest.mark.parametrize(
        ("driver", "on_connection", "on_cursor"),
        [
            ("psycopg", {"execute"}, {"execute", "executemany"}),
            ("psycopg2", set(), {"execute", "executemany", "callproc"}),
        ],
    )
    def test_feature_checks_answer_as_the_driver(
        self, conn: Any, on_connection: set[str], on_cursor: set[str]
    ) -> None:
        names = {"execute", "executemany", "executescript", "callproc"}
        assert on_connection == {name for name in names if hasattr(conn, name)}
        with conn.cursor() as cur:
            assert on_cursor == {name for name in names if hasattr(cur, name)}

    def test_cursor_factory_chosen_before_instrumenting(
        self, telemetry: Harness, pg_dsn: str
    ) -> None:
        raw = psycopg2.connect(pg_dsn, cursor_factory=psycopg2.extras.RealDictCursor)
        conn = instrument_connection(raw)
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            row: Any = cur.fetchone()
            assert {"one": 1} == row
            assert isinstance(cur, psycopg2.extras.RealDictCursor)
        conn.close()
        assert 1 == count(telemetry, "query", "ok")

    def test_extras_connection_class_keeps_its_cursors(
        self, telemetry: Harness, pg_dsn: str
    ) -> None:
        raw = psycopg2.connect(pg_dsn, connection_factory=psycopg2.extras.RealDictConnection)
        conn = instrument_connection(raw)
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert {"one": 1} == cur.fetchone()
        conn.close()
        assert 1 == count(telemetry, "query", "ok")

    @pytest.mark.parametrize("driver", ["psycopg2-connection_factory"])
    def test_connection_factory_measures_a_cursor_factory_given_to_cursor(
        self, telemetry: Harness, conn: Any
    ) -> None:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT 1 AS one")
            assert {"one": 1} == cur.fetchone()
        with conn.cursor(None, psycopg2.extras.NamedTupleCursor) as cur:
            cur.execute("SELECT 2 AS two")
            assert 2 == cur.fetchone().two
        assert 2 == count(telemetry, "query", "ok")

    @pytest.mark.parametrize(
        ("driver", "op"),
        # psycopg2 describes the rows of a named cursor only when they are fetched
        [("psycopg", "query"), ("psycopg2", "exec"), ("psycopg2-connection_factory", "exec")],
    )
    def test_server_side_cursor(self, telemetry: Harness, conn: Any, table: str, op: str) -> None:
        with conn.cursor("named") as cur:
            cur.execute(f"SELECT * FROM {table}")
            assert [] == cur.fetchall()
        assert 1 == count(telemetry, op, "ok")
        ops = ("query", "exec")
        assert 1 == sum(count(telemetry, o, r) for o in ops for r in ("ok", "error"))

    @pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
    def test_instrumenting_again(self, telemetry: Harness, conn: Any) -> None:
        assert conn is instrument_connection(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        assert 1 == count(telemetry, "query", "ok")
        assert [] == telemetry.spans()
        assert conn is instrument_connection(conn, spans=True)
        with conn.cursor() as cur:
            cur.execute("SELECT 2")
        assert ["SELECT"] == [span.name for span in telemetry.spans()]
        assert 2 == count(telemetry, "query", "ok")


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


class TestRecordingFailures:
    """A failure inside the instrumentation never changes what the driver's caller sees."""

    @staticmethod
    def run_statements(conn: Any, table: str, driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from limelight_sql._instruments import Bound, System

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("instrumentation bug")

        monkeypatch.setattr(System, "ok", broken)
        monkeypatch.setattr(System, "failed", broken)
        monkeypatch.setattr(Bound, "start_span", broken)
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (name) VALUES ('a')")
            cur.execute(f"SELECT name FROM {table}")
            assert [("a",)] == cur.fetchall()
            cur.executemany(f"INSERT INTO {table} (name) VALUES (%s)", [("b",), ("c",)])
            with pytest.raises(errors_of(driver).UniqueViolation):
                cur.execute(f"INSERT INTO {table} (name) VALUES ('a')")

    def test_metrics_only(
        self,
        telemetry: Harness,
        conn: Any,
        table: str,
        driver: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.run_statements(conn, table, driver, monkeypatch)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_with_spans(
        self,
        telemetry: Harness,
        conn: Any,
        table: str,
        driver: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.run_statements(conn, table, driver, monkeypatch)
        assert [] == telemetry.spans()
