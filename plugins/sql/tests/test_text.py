"""Statement text for spans: literals removed, summaries, and the op guess for failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limelight_sql import describe

PG = "postgresql"
MYSQL = "mysql"
MARIADB = "mariadb"
SQLITE = "sqlite"
ORACLE = "oracle.db"
MSSQL = "microsoft.sql_server"
SYSTEMS: list[str | None] = [PG, MYSQL, MARIADB, SQLITE, ORACLE, MSSQL, "other_sql", None]


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
            ("SELECT 0b101, 0o17, 1_000_000, 1e-3 FROM t", "SELECT ?, ?, ?, ? FROM t"),
            ("SELECT * FROM t WHERE f = TRUE OR g = false", "SELECT * FROM t WHERE f = ? OR g = ?"),
            ("SELECT 1 -- user 'bob'\nFROM t /* 'x' */", "SELECT ? FROM t"),
            ("SELECT 'unterminated", "SELECT ?"),
            ('SELECT "col 1" FROM "My Table"', 'SELECT "col 1" FROM "My Table"'),
            ("SELECT   a,\n\tb  FROM t", "SELECT a, b FROM t"),
            ("SELECT ARRAY[1, 2], a[1:2] FROM t", "SELECT ARRAY[?, ?], a[?:?] FROM t"),
        ],
    )
    def test_text(self, statement: str, text: str) -> None:
        assert text == describe(statement, PG).text

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT * FROM t WHERE id IN (1, 2, 3)",
            "SELECT * FROM t WHERE id IN ('a','b')",
            "SELECT * FROM t WHERE id IN (-1,-2)",
            "SELECT * FROM t WHERE id IN (+1, - 2)",
            "SELECT * FROM t WHERE id IN (%s,%s)",
            "SELECT * FROM t WHERE id IN (%(a)s, %(b)s)",
            "SELECT * FROM t WHERE id IN ($1, $2, $3)",
            "SELECT * FROM t WHERE id IN (:a, :b)",
            "SELECT * FROM t WHERE id IN (?, ?)",
            "SELECT * FROM t WHERE id in (?1, ?2)",
        ],
    )
    def test_in_lists_collapse(self, statement: str) -> None:
        expected = "SELECT * FROM t WHERE id IN (?)"
        assert expected.lower() == describe(statement, PG).text.lower()

    def test_in_list_of_columns_is_kept(self) -> None:
        assert (
            "SELECT * FROM t WHERE ? IN (a, b)"
            == describe("SELECT * FROM t WHERE 1 IN (a, b)").text
        )

    def test_long_statements_are_cut(self) -> None:
        statement = "SELECT " + ", ".join(f"c{i}" for i in range(3000)) + " FROM t"
        assert 4096 == len(describe(statement, PG).text)

    def test_long_statements_of_an_unknown_system_are_cut(self) -> None:
        statement = "SELECT " + ", ".join(f"c{i}" for i in range(3000)) + " FROM t"
        assert 4096 == len(describe(statement).text)

    @pytest.mark.parametrize("system", [PG, MYSQL, "sqlite", None])
    def test_a_cut_inside_a_string_hides_it(self, system: str | None) -> None:
        rows = ", ".join(f"({i}, 'secret-{i:05}')" for i in range(2000))
        described = describe(f"INSERT INTO t (id, v) VALUES {rows}", system)
        assert len(described.text) <= 4096
        assert "secret" not in described.text
        assert described.text.startswith("INSERT INTO t (id, v) VALUES (?, ?), (?, ?)")
        assert "INSERT t" == described.summary
        crossing = describe("INSERT INTO t (v) VALUES ('" + "secret " * 1000 + "')", system)
        assert "INSERT INTO t (v) VALUES (?" == crossing.text


class TestDialects:
    """Each quoting rule is read the way the database system reads it, or both ways when unsure."""

    LEAK = "SELECT * FROM t WHERE name = 'O\\'Brien' AND pw = 'hunter2'"

    @pytest.mark.parametrize("system", [PG, MYSQL, MARIADB, "other_sql", None])
    def test_backslash_before_a_quote_hides_the_rest_where_it_depends_on_settings(
        self, system: str | None
    ) -> None:
        # MySQL escapes unless NO_BACKSLASH_ESCAPES; PostgreSQL does not unless
        # standard_conforming_strings is off: either reading is possible
        assert "SELECT * FROM t WHERE name = ?" == describe(self.LEAK, system).text

    @pytest.mark.parametrize("system", [SQLITE, ORACLE, MSSQL])
    def test_backslash_is_an_ordinary_character(self, system: str) -> None:
        statement = "SELECT 'C:\\', b FROM t WHERE c = 'x'"
        assert "SELECT ?, b FROM t WHERE c = ?" == describe(statement, system).text

    @pytest.mark.parametrize("system", [PG, MYSQL, None])
    def test_backslashes_that_do_not_move_the_end_of_a_string(self, system: str | None) -> None:
        statement = "SELECT 'a\\nb', c FROM t WHERE d = 'x'"
        assert "SELECT ?, c FROM t WHERE d = ?" == describe(statement, system).text

    def test_escape_strings(self) -> None:
        statement = "SELECT E'it\\'s', b FROM t WHERE c = E'\\\\'"
        assert "SELECT ?, b FROM t WHERE c = ?" == describe(statement, PG).text

    @pytest.mark.parametrize("system", [MYSQL, MARIADB, SQLITE, MSSQL, "other_sql", None])
    def test_double_quotes_may_hold_a_string(self, system: str | None) -> None:
        statement = 'SELECT * FROM t WHERE name = "secret"'
        assert "SELECT * FROM t WHERE name = ?" == describe(statement, system).text

    @pytest.mark.parametrize("system", [PG, ORACLE])
    def test_double_quotes_hold_an_identifier(self, system: str) -> None:
        statement = 'SELECT "Name" FROM t WHERE "Id" = 1'
        assert 'SELECT "Name" FROM t WHERE "Id" = ?' == describe(statement, system).text

    def test_double_quoted_string_with_backslash_in_mysql(self) -> None:
        statement = 'SELECT * FROM t WHERE a = "x\\"" AND pw = "hunter2"'
        assert "hunter2" not in describe(statement, MYSQL).text
        assert "hunter2" not in describe(statement, MYSQL).summary

    @pytest.mark.parametrize("system", [PG, MSSQL])
    def test_nested_comments(self, system: str) -> None:
        statement = "SELECT 1 /* a /* b */ secret 'x' */ FROM t"
        assert "SELECT ? FROM t" == describe(statement, system).text

    @pytest.mark.parametrize("system", [MYSQL, SQLITE, ORACLE])
    def test_comments_that_do_not_nest(self, system: str) -> None:
        # the comment ends at the first */: what follows is SQL
        statement = "SELECT 1 /* a /* b */, c FROM t"
        assert "SELECT ? , c FROM t" == describe(statement, system).text

    @pytest.mark.parametrize("system", ["other_sql", None])
    def test_comments_that_may_nest(self, system: str | None) -> None:
        statement = "SELECT 1 /* a /* b */ secret 'x' */ FROM t"
        text = describe(statement, system).text
        assert "secret" not in text
        assert text.startswith("SELECT ?")

    @pytest.mark.parametrize("system", [MYSQL, MARIADB])
    def test_hash_comments(self, system: str) -> None:
        statement = "SELECT a # it's\nFROM t WHERE pw = 'hunter2'"
        assert "SELECT a FROM t WHERE pw = ?" == describe(statement, system).text

    def test_hash_is_an_operator_in_postgresql(self) -> None:
        assert "SELECT a # ? FROM t" == describe("SELECT a # 5 FROM t", PG).text

    def test_hash_with_quotes_in_an_unknown_system(self) -> None:
        text = describe("SELECT a # it's\nFROM t WHERE pw = 'hunter2'").text
        assert "hunter2" not in text

    def test_mysql_dashes_need_a_space(self) -> None:
        assert "SELECT ?--?, ? FROM t" == describe("SELECT 1--1, 2 -- x\nFROM t", MYSQL).text
        assert "SELECT ? FROM t" == describe("SELECT 1--1, 2 -- x\nFROM t", PG).text

    def test_carriage_return_ends_a_postgresql_comment(self) -> None:
        statement = "SELECT 1 -- note\r'\nsecret' FROM t"
        assert "SELECT ? ? FROM t" == describe(statement, PG).text

    def test_oracle_q_quotes_and_numbered_placeholders(self) -> None:
        statement = "SELECT q'[it's]', Q'{a}', nq'!x!' FROM dual WHERE a = :1 AND b = :name"
        expected = "SELECT ?, ?, ? FROM dual WHERE a = :1 AND b = :name"
        assert expected == describe(statement, ORACLE).text

    def test_sqlite_placeholders(self) -> None:
        statement = "SELECT * FROM t WHERE a = :1 AND b = ?2 AND c = :c"
        assert statement == describe(statement, SQLITE).text

    def test_number_after_a_colon_is_a_number_in_postgresql(self) -> None:
        assert "SELECT a[?:?] FROM t" == describe("SELECT a[1:2] FROM t", PG).text

    @pytest.mark.parametrize("system", ["other_sql", None])
    def test_number_after_a_colon_in_an_unknown_system(self, system: str | None) -> None:
        assert (
            "SELECT a FROM t WHERE b = :?" == describe("SELECT a FROM t WHERE b = :1", system).text
        )

    @pytest.mark.parametrize("system", [MSSQL, SQLITE])
    def test_bracketed_identifiers(self, system: str) -> None:
        statement = "SELECT [it's] FROM [My Table] WHERE pw = 'hunter2'"
        assert "SELECT [it's] FROM [My Table] WHERE pw = ?" == describe(statement, system).text

    def test_dollar_quotes(self) -> None:
        statement = "SELECT $$it's$$, $fn$ $$ 'x' $fn$ FROM t"
        assert "SELECT ?, ? FROM t" == describe(statement, PG).text

    @pytest.mark.parametrize("system", [MYSQL, PG, None])
    def test_trailing_backslash(self, system: str | None) -> None:
        assert "SELECT ?" == describe("SELECT 'abc\\", system).text

    def test_many_undecided_rules_in_an_unknown_system(self) -> None:
        statement = "SELECT a, b FROM t WHERE c = \"x\\\" # [y] -- z\r$$ 'hunter2' /* /* */"
        described = describe(statement)
        assert "SELECT a, b FROM t WHERE c = ?" == described.text
        assert "SELECT t" == described.summary


# -- property: generated secrets never reach the text or the summary -----------------------

SECRET_PIECE = st.one_of(
    st.sampled_from(["'", '"', "\\", "\\'", '\\"', "vx1"]),
    st.sampled_from([*"*/-#$[]`\n\r ;(),?:%{}<>!=.", "E", "q", "N", "--", "vx22"]),
)
SECRETS = st.lists(SECRET_PIECE, max_size=10).map(lambda parts: "vx0" + "".join(parts))
"""Values full of quotes, escapes and comment marks; every word of them holds 'vx'."""

Encode = Callable[[str], str]


def quoted(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def backslashed(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def backslashed_doubled(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


def escape_string(s: str) -> str:
    return "E'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dollar_quoted(s: str) -> str:
    return "$q$" + s.replace("$", "") + "$q$"


def double_quoted(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def double_backslashed(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def national(s: str) -> str:
    return "N" + quoted(s)


def q_quoted(s: str) -> str:
    return "q'[" + s.replace("]", "") + "]'"


def block_comment(s: str) -> str:
    return "/*" + s.replace("*", "") + "*/"


def nested_comment(s: str) -> str:
    return "/* a /* b */ " + s.replace("*", "") + " */"


def dash_comment(s: str) -> str:
    return "-- " + s.replace("\n", "").replace("\r", "") + "\n"


def hash_comment(s: str) -> str:
    return "# " + s.replace("\n", "").replace("\r", "") + "\n"


COMMON: list[Encode] = [block_comment, dash_comment]
CONFIGURATIONS: dict[str, list[list[Encode]]] = {
    # standard_conforming_strings on, off
    PG: [
        [quoted, escape_string, dollar_quoted, nested_comment, *COMMON],
        [backslashed, backslashed_doubled, escape_string, dollar_quoted, *COMMON],
    ],
    # default sql_mode, NO_BACKSLASH_ESCAPES, ANSI_QUOTES
    MYSQL: [
        [backslashed, backslashed_doubled, double_backslashed, hash_comment, *COMMON],
        [quoted, double_quoted, hash_comment, *COMMON],
        [backslashed, backslashed_doubled, hash_comment, *COMMON],
    ],
    SQLITE: [[quoted, double_quoted, *COMMON]],
    ORACLE: [[quoted, q_quoted, national, *COMMON]],
    # QUOTED_IDENTIFIER off
    MSSQL: [[quoted, national, double_quoted, nested_comment, *COMMON]],
}
CONFIGURATIONS[MARIADB] = CONFIGURATIONS[MYSQL]
ALL = [config for configs in list(CONFIGURATIONS.values()) for config in configs]

TEMPLATES = [
    "SELECT a, {0} FROM t WHERE b = {1} AND c IN ({2}, {3}) {4}ORDER BY d",
    "INSERT INTO t (a, b) VALUES ({0}, {1}) {4}RETURNING id",
    "UPDATE t SET a = {0} {4}WHERE b = {1} OR c = {2}; DELETE FROM u WHERE d = {3}",
    "{4}SELECT {0} {1},{2}\n{3}",
]


@st.composite
def statements(draw: st.DrawFn, configurations: list[list[Encode]]) -> str:
    """A statement with five secrets, written by the rules of one configuration."""
    encoders = draw(st.sampled_from(configurations))
    values = [draw(st.sampled_from(encoders))(draw(SECRETS)) for _ in range(5)]
    return draw(st.sampled_from(TEMPLATES)).format(*values)


def assert_no_secret(statement: str, system: str | None) -> None:
    described = describe(statement, system)
    assert "vx" not in described.text.lower(), (statement, described)
    assert "vx" not in described.summary.lower(), (statement, described)


class TestNeverAValue:
    """Whatever a literal or comment holds, none of it reaches db.query.text or the summary."""

    @pytest.mark.parametrize(
        ("system", "configuration"),
        [
            (system, i)
            for system in sorted(CONFIGURATIONS)
            for i in range(len(CONFIGURATIONS[system]))
        ],
    )
    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_known_system(self, system: str, configuration: int, data: st.DataObject) -> None:
        encoders = CONFIGURATIONS[system][configuration]
        assert_no_secret(data.draw(statements([encoders])), system)

    @pytest.mark.parametrize("system", ["other_sql", None])
    @settings(max_examples=500, deadline=None)
    @given(data=st.data())
    def test_unknown_system(self, system: str | None, data: st.DataObject) -> None:
        assert_no_secret(data.draw(statements(ALL)), system)

    @settings(max_examples=300, deadline=None)
    @given(text=st.text(alphabet=st.sampled_from(list("'\"\\/*-#$[]\n\r ;qE")), max_size=30))
    def test_text_never_holds_what_follows_an_opening_quote(self, text: str) -> None:
        # a literal that starts with the statement's only quote runs to its end
        statement = "SELECT a FROM t WHERE b = 'vx" + text.replace("'", "")
        for system in SYSTEMS:
            assert_no_secret(statement, system)


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
            ("UPDATE public . users SET name = %s", "UPDATE public.users"),
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
            ('SELECT * FROM "s"."My Table"', 'SELECT "s"."My Table"'),
            ("BEGIN", "BEGIN"),
            ("PRAGMA foreign_keys = ON", "PRAGMA"),
            ("SELEC broken", ""),
            ("SELEC a FROM t", ""),
            ("FOO bar JOIN baz", ""),
        ],
    )
    def test_summary(self, statement: str, summary: str) -> None:
        assert summary == describe(statement, PG).summary

    @pytest.mark.parametrize("system", [MYSQL, SQLITE, None])
    def test_double_quoted_table_where_a_string_may_be_meant(self, system: str | None) -> None:
        statement = 'SELECT * FROM "My Table" JOIN (SELECT * FROM "o") x ON 1 = 1'
        assert 'SELECT "My Table" SELECT "o"' == describe(statement, system).summary

    @pytest.mark.parametrize(
        "statement",
        [
            'SELECT EXTRACT(YEAR FROM "2024-01-01") FROM t',
            'SELECT TRIM(LEADING "x" FROM "secret") FROM t',
            'SELECT a FROM t INTO OUTFILE "secret.csv"',
        ],
    )
    def test_double_quoted_strings_are_no_targets(self, statement: str) -> None:
        assert "SELECT t" == describe(statement, MYSQL).summary

    def test_summary_stops_where_the_readings_disagree(self) -> None:
        statement = "SELECT 'a\\' FROM secret; DELETE FROM u"
        assert "SELECT" == describe(statement, PG).summary

    def test_summary_is_cut_between_words(self) -> None:
        statement = "SELECT * FROM " + ", ".join(f"table_number_{i}" for i in range(40))
        summary = describe(statement, PG).summary
        assert len(summary) <= 255
        assert summary.split()[-1].startswith("table_number_")
        assert summary.split()[-1] in statement


class TestOperation:
    """db.operation.name: the operation keyword of a single statement, as written."""

    @pytest.mark.parametrize(
        ("statement", "operation"),
        [
            ("SELECT * FROM t WHERE id = ?", "SELECT"),
            ("select * from t;", "select"),
            ("  /* why */ INSERT INTO t VALUES (1)", "INSERT"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            ("CREATE TABLE t (a int)", "CREATE"),
            ("DROP INDEX i", "DROP"),
            ("EXPLAIN SELECT 1", "EXPLAIN"),
            ("BEGIN", "BEGIN"),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "SELECT"),
            (
                "WITH RECURSIVE x (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x WHERE n < 5), "
                "y AS NOT MATERIALIZED (SELECT 2) INSERT INTO t SELECT n FROM x",
                "INSERT",
            ),
            ("with x as (select 1) delete from t where a in (select * from x)", "delete"),
        ],
    )
    def test_single_statement(self, statement: str, operation: str) -> None:
        assert operation == describe(statement, PG).operation

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT 1; SELECT 2",
            "INSERT INTO t VALUES (1); DELETE FROM t",
            "WITH x AS (SELECT 1) SEARCH DEPTH FIRST BY a SET o SELECT * FROM x",
            "WITH x AS SELECT 1",
            "(SELECT 1) UNION (SELECT 2)",
            "SELEC 1",
            "",
            ";",
            "SELECT 'a\\' FROM t; DELETE FROM u",
        ],
    )
    def test_no_operation(self, statement: str) -> None:
        assert describe(statement, PG).operation is None


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
        assert rows is describe(statement, PG).returns_rows
