"""sqlite3 through the DB-API wrapper: counts, results, errors, transactions, spans."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from limelight_sql import Connection, instrument_connection, plugin

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
        assert cur.fetchone() == ("apple", 1.5)
        cur.execute("SELECT name FROM items WHERE id = ?", (42,))
        assert cur.fetchone() is None
        assert count(telemetry, "query", "ok") == 2
        assert count(telemetry, "exec", "ok") == 1
        assert count(telemetry, "query", "error") == 0
        hist = telemetry.histogram(
            "sql_op_duration_seconds", db_system="sqlite", op="query", result="ok"
        )
        assert hist.count == 2
        assert 0 < hist.sum < 1

    def test_executemany_is_one_operation(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.executemany(
            "INSERT INTO items (name, price) VALUES (?, ?)", [(f"n{i}", i) for i in range(10)]
        )
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (10,)
        assert count(telemetry, "exec", "ok") == 1
        assert count(telemetry, "query", "ok") == 1

    def test_executescript(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.executescript(
            "INSERT INTO items (name) VALUES ('a'); INSERT INTO items (name) VALUES ('b');"
        )
        assert count(telemetry, "exec", "ok") == 1
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)

    def test_returning_is_a_query(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        if sqlite3.sqlite_version_info < (3, 35):
            pytest.skip("RETURNING needs SQLite 3.35")
        row = conn.execute("INSERT INTO items (name) VALUES (?) RETURNING id", ("a",)).fetchone()
        assert row == (1,)
        assert count(telemetry, "query", "ok") == 1

    def test_syntax_error(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        bare = sqlite3.connect(":memory:")
        with pytest.raises(sqlite3.OperationalError) as expected:
            bare.execute("SELEC name FROM items")
        with pytest.raises(sqlite3.OperationalError) as actual:
            conn.execute("SELEC name FROM items")
        assert expected.value.args == actual.value.args
        assert count(telemetry, "exec", "error") == 1

    def test_failed_select_is_a_query_error(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            conn.execute("SELECT * FROM missing_table")
        assert count(telemetry, "query", "error") == 1
        hist = telemetry.histogram(
            "sql_op_duration_seconds", db_system="sqlite", op="query", result="error"
        )
        assert hist.count == 1

    def test_constraint_violation(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES (?)", ("a",))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO items (name) VALUES (?)", ("a",))
        assert count(telemetry, "exec", "ok") == 1
        assert count(telemetry, "exec", "error") == 1

    def test_closed_connection(self, telemetry: Harness) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        cur = conn.cursor()
        conn.close()
        with pytest.raises(sqlite3.ProgrammingError):
            cur.execute("SELECT 1")
        assert count(telemetry, "query", "error") == 1


class TestTransactions:
    """Statements inside transactions are counted; rollback undoes the data, not the counts."""

    def test_rollback(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('kept')")
        conn.commit()
        conn.execute("INSERT INTO items (name) VALUES ('dropped')")
        conn.rollback()
        assert conn.execute("SELECT name FROM items").fetchall() == [("kept",)]
        assert count(telemetry, "exec", "ok") == 2

    def test_with_block_rolls_back_on_error(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        def insert_twice() -> None:
            with conn:
                conn.execute("INSERT INTO items (name) VALUES ('x')")
                conn.execute("INSERT INTO items (name) VALUES ('x')")

        with pytest.raises(sqlite3.IntegrityError):
            insert_twice()
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)
        assert count(telemetry, "exec", "ok") == 1
        assert count(telemetry, "exec", "error") == 1

    def test_explicit_transaction_statements(
        self, telemetry: Harness, conn: sqlite3.Connection
    ) -> None:
        conn.isolation_level = None  # autocommit: the application issues BEGIN itself
        conn.execute("BEGIN")
        conn.execute("INSERT INTO items (name) VALUES ('x')")
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)
        assert count(telemetry, "exec", "ok") == 3


class TestDropIn:
    """The wrapper behaves like the driver's connection and cursor."""

    def test_attributes_pass_through(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        assert conn.__wrapped__.row_factory is sqlite3.Row  # type: ignore[attr-defined]
        cur = conn.execute("INSERT INTO items (name, price) VALUES ('a', 2.0)")
        assert (cur.lastrowid, cur.rowcount) == (1, 1)
        row = conn.execute("SELECT name, price FROM items").fetchone()
        assert (row["name"], row["price"]) == ("a", 2.0)
        assert conn.in_transaction
        assert conn.total_changes == 1

    def test_cursor_iteration_and_fetch(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",), ("c",)])
        cur = conn.execute("SELECT name FROM items ORDER BY name")
        assert [r[0] for r in cur] == ["a", "b", "c"]
        cur = conn.cursor()
        assert cur.execute("SELECT name FROM items ORDER BY name") is cur
        assert cur.fetchmany(2) == [("a",), ("b",)]
        assert cur.fetchall() == [("c",)]
        assert cur.connection is conn
        assert cur.description[0][0] == "name"

    def test_wrapping_twice_returns_the_wrapper(self, conn: sqlite3.Connection) -> None:
        assert instrument_connection(conn) is conn
        assert isinstance(conn, Connection)

    def test_no_telemetry_passes_through(self) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        assert conn.execute("SELECT 1").fetchone() == (1,)

    def test_db_system_can_be_named(self, telemetry: Harness) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"), db_system="other_sql")
        conn.execute("SELECT 1")
        assert count(telemetry, "query", "ok", "other_sql") == 1

    def test_empty_db_system_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="db_system"):
            instrument_connection(sqlite3.connect(":memory:"), db_system="")

    def test_plugin_not_loaded(self) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        with Harness() as harness:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert "sql_ops_total" not in harness.store


class TestSpans:
    """Spans are opt-in, named by the query summary, and never carry values."""

    def test_off_by_default(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM items")
        assert telemetry.spans() == []

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_statement_span(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name, price) VALUES ('secret literal', 9.75)")
        conn.execute("SELECT name FROM items WHERE name = ? AND price > 3", ("secret param",))
        span = telemetry.span(name="SELECT items", kind="client", status="unset")
        assert dict(span.attributes or {}) == {
            "db.system.name": "sqlite",
            "db.query.text": "SELECT name FROM items WHERE name = ? AND price > ?",
            "db.query.summary": "SELECT items",
        }
        insert = telemetry.span(name="INSERT items")
        assert (insert.attributes or {})["db.query.text"] == (
            "INSERT INTO items (name, price) VALUES (?, ?)"
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
        assert len(failed) == 1
        attributes = dict(failed[0].attributes or {})
        assert attributes["db.response.status_code"] == str(sqlite3.SQLITE_CONSTRAINT_UNIQUE)
        assert attributes["error.type"] == attributes["db.response.status_code"]
        assert not failed[0].status.description
        assert "dup" not in str(failed[0].events)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_batch_span(self, telemetry: Harness, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",), ("c",)])
        span = telemetry.span(name="BATCH INSERT items")
        assert (span.attributes or {})["db.operation.batch.size"] == 3

    def test_per_connection_opt_in(self, telemetry: Harness) -> None:
        traced = instrument_connection(sqlite3.connect(":memory:"), spans=True)
        quiet = instrument_connection(sqlite3.connect(":memory:"))
        traced.execute("SELECT 1")
        quiet.execute("SELECT 2")
        assert [s.name for s in telemetry.spans()] == ["SELECT"]
        assert [(s.attributes or {})["db.query.text"] for s in telemetry.spans()] == ["SELECT ?"]

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
        assert conn.execute("SELECT name FROM items").fetchall() == [("a",)]
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
        assert telemetry.spans() == []
