"""Statement text for spans: literals removed, summaries, and the op guess for failures."""

from __future__ import annotations

import pytest
from limelight_sql import describe


class TestSanitize:
    """db.query.text keeps the statement's shape and never a literal value."""

    @pytest.mark.parametrize(
        ("statement", "text"),
        [
            ("SELECT * FROM t WHERE id = ?", "SELECT * FROM t WHERE id = ?"),
            (
                "SELECT * FROM t WHERE a = %s AND b = %(b)s",
                "SELECT * FROM t WHERE a = %s AND b = %(b)s",
            ),
            ("DELETE FROM t WHERE id = $1", "DELETE FROM t WHERE id = $1"),
            ("SELECT * FROM t WHERE x = :name", "SELECT * FROM t WHERE x = :name"),
            ("SELECT a::int FROM t", "SELECT a::int FROM t"),
            ("select * from t where name = 'O''Brien'", "select * from t where name = ?"),
            ("SELECT E'it\\'s', x'AB', B'101', N'x'", "SELECT ?, ?, ?, ?"),
            ("SELECT $$body$$, $fn$ a $ b $fn$", "SELECT ?, ?"),
            ("SELECT 42, -1.5e3, .5, 0xFF, t1.c2 FROM t1", "SELECT ?, -?, ?, ?, t1.c2 FROM t1"),
            ("SELECT * FROM t WHERE f = TRUE OR g = false", "SELECT * FROM t WHERE f = ? OR g = ?"),
            ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
            ("SELECT 1 -- user 'bob'\nFROM t /* 'x' */", "SELECT ? FROM t"),
            ("SELECT 'unterminated", "SELECT ?"),
            ('SELECT "col 1" FROM "My Table"', 'SELECT "col 1" FROM "My Table"'),
            ("SELECT   a,\n\tb  FROM t", "SELECT a, b FROM t"),
        ],
    )
    def test_text(self, statement: str, text: str) -> None:
        assert text == describe(statement).text

    def test_long_statements_are_cut(self) -> None:
        statement = "SELECT " + ", ".join(f"c{i}" for i in range(3000)) + " FROM t"
        assert 4096 == len(describe(statement).text)


class TestSummary:
    """db.query.summary lists operations and targets, as the conventions describe."""

    @pytest.mark.parametrize(
        ("statement", "summary"),
        [
            ("SELECT * FROM wuser_table WHERE username = ?", "SELECT wuser_table"),
            (
                "INSERT INTO shipping_details (order_id, address) "
                "SELECT order_id, address FROM orders WHERE order_id = ?",
                "INSERT shipping_details SELECT orders",
            ),
            (
                "SELECT * FROM songs, artists WHERE songs.artist_id = artists.id",
                "SELECT songs artists",
            ),
            (
                "SELECT order_date FROM (SELECT * FROM orders o JOIN customers c "
                "ON o.customer_id = c.customer_id)",
                "SELECT SELECT orders customers",
            ),
            ("select v from t where x = 1", "select t"),
            ("UPDATE public.users SET name = %s WHERE id = %s", "UPDATE public.users"),
            ("DELETE FROM t WHERE id = $1", "DELETE t"),
            ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", "INSERT t"),
            ("SELECT * FROM t FOR UPDATE", "SELECT t"),
            ("CREATE TABLE IF NOT EXISTS t (id int)", "CREATE TABLE t"),
            ("CREATE UNIQUE INDEX idx ON t (a)", "CREATE INDEX idx"),
            ("DROP TABLE t", "DROP TABLE t"),
            ("TRUNCATE t1, t2", "TRUNCATE t1 t2"),
            ("PREPARE q AS SELECT * FROM t WHERE id = $1", "PREPARE q SELECT t"),
            ("EXECUTE q (1)", "EXECUTE q"),
            ("CALL refresh(1)", "CALL refresh"),
            ("WITH x AS (SELECT * FROM orders) SELECT * FROM x", "SELECT orders SELECT x"),
            ('SELECT * FROM "My Table" AS m', 'SELECT "My Table"'),
            ("BEGIN", "BEGIN"),
            ("PRAGMA foreign_keys = ON", "PRAGMA"),
            ("SELEC broken", ""),
        ],
    )
    def test_summary(self, statement: str, summary: str) -> None:
        assert summary == describe(statement).summary

    def test_summary_is_cut_between_words(self) -> None:
        statement = "SELECT * FROM " + ", ".join(f"table_number_{i}" for i in range(40))
        summary = describe(statement).summary
        assert len(summary) <= 255
        assert summary.split()[-1].startswith("table_number_")
        assert summary.split()[-1] in statement


class TestReturnsRows:
    """The query/exec guess used when a statement fails before the driver could tell."""

    @pytest.mark.parametrize(
        ("statement", "rows"),
        [
            ("SELECT 1", True),
            ("  select * from t", True),
            ("WITH x AS (SELECT 1) SELECT * FROM x", True),
            ("VALUES (1)", True),
            ("SHOW search_path", True),
            ("EXPLAIN SELECT 1", True),
            ("INSERT INTO t VALUES (1) RETURNING id", True),
            ("INSERT INTO t VALUES (1)", False),
            ("UPDATE t SET a = 1", False),
            ("CREATE TABLE t (a int)", False),
            ("SELEC 1", False),
            ("/* note */ SELECT 1", True),
        ],
    )
    def test_returns_rows(self, statement: str, rows: bool) -> None:
        assert rows is describe(statement).returns_rows
