"""Statement text for spans: literals removed, a low-cardinality summary, the op guess.

One tokenizer pass over a statement gives three things, cached per distinct
statement and database system (applications run the same statement texts
over and over):

* ``text``: the statement with every literal (strings, dollar- and q-quoted
  strings, numbers, booleans) replaced by ``?`` and comments removed,
  whitespace collapsed, a list of literals or placeholders after ``IN``
  collapsed to ``IN (?)`` (``db.query.text``). Placeholders (``?``, ``?1``,
  ``%s``, ``%(name)s``, ``$1``, ``:name``, and ``:1`` where the system has
  them) are kept; parameter values are never part of the text.
* ``summary``: operations and their targets in order, ``SELECT orders`` or
  ``INSERT shipping SELECT orders`` (``db.query.summary`` and the span name).
* ``operation``: the operation keyword of a text that holds exactly one
  statement, as written (``SELECT``, ``insert``, ``CREATE``), the main
  statement's for ``WITH ... SELECT``; ``None`` for several statements, an
  unrecognised one, a ``WITH`` clause that is not a plain list of named
  subqueries, or a text the readings disagree on (``db.operation.name``).
* ``returns_rows``: whether the statement most likely returns rows, used for
  the ``op`` label only when the statement failed (on success the cursor's
  ``description`` says it).

The rule is that the text never holds a value, so the tokenizer follows the
quoting rules of the database system, and where those rules depend on the
server's settings (PostgreSQL's ``standard_conforming_strings``, MySQL's
``NO_BACKSLASH_ESCAPES`` and ``ANSI_QUOTES``, SQL Server's
``QUOTED_IDENTIFIER``) or the system is unknown, it reads the statement every
way it could be meant at once. Where those readings agree the text keeps the
statement's shape; where they disagree on what is a literal, the disputed
part becomes one ``?``, up to the point where every reading is at a token
boundary again, which may be the end of the statement. A double-quoted token
that is an identifier under one reading and a string under another becomes
``?`` in the text.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

__all__ = ["MAX_SUMMARY", "MAX_TEXT", "Described", "describe"]

MAX_TEXT = 4096
"""Characters of a statement that are read; ``db.query.text`` is at most this long."""
MAX_SUMMARY = 255
"""``db.query.summary`` is cut (between two words) to at most this many characters."""


class _Dialect(NamedTuple):
    """The lexical rules of a database system; ``None``: depends on a setting, or unknown."""

    backslash: bool | None  # a backslash escapes the next character in '...' (and "..." strings)
    double_quoted_strings: bool | None  # "..." is a string (else an identifier)
    nested_comments: bool | None  # /* /* */ */ nests
    hash_comments: bool | None  # # starts a line comment
    brackets: bool | None  # [name] is a quoted identifier
    dollar_quotes: bool | None  # $tag$...$tag$ is a string
    escape_strings: bool | None  # E'...' is a string with backslash escapes
    q_quotes: bool | None  # q'[...]' is a string
    dash_space: bool | None  # -- starts a comment only before a space or control character
    cr_ends_comment: bool | None  # a line comment ends at \r as well as \n
    numbered_colon: bool  # :1 is a placeholder (else 1 is a number after a colon)


class _Reading(NamedTuple):
    """One way to read a statement: every rule decided."""

    backslash: bool
    double_quoted_strings: bool
    nested_comments: bool
    hash_comments: bool
    brackets: bool
    dollar_quotes: bool
    escape_strings: bool
    q_quotes: bool
    dash_space: bool
    cr_ends_comment: bool
    numbered_colon: bool


_UNKNOWN = _Dialect(None, None, None, None, None, None, None, None, None, None, False)
_DIALECTS: dict[str, _Dialect] = {
    # standard_conforming_strings may be off (server setting, SET): backslash either way
    "postgresql": _Dialect(None, False, True, False, False, True, True, False, False, True, False),
    # NO_BACKSLASH_ESCAPES and ANSI_QUOTES are sql_mode settings
    "mysql": _Dialect(None, None, False, True, False, False, False, False, True, None, False),
    "mariadb": _Dialect(None, None, False, True, False, False, False, False, True, None, False),
    # "x" is an identifier, or a string when no column is called x
    "sqlite": _Dialect(False, None, False, False, True, False, False, False, False, False, True),
    "oracle.db": _Dialect(False, False, False, False, False, False, False, True, False, None, True),
    # QUOTED_IDENTIFIER OFF makes "x" a string
    "microsoft.sql_server": _Dialect(
        False, None, True, False, True, False, False, False, False, None, False
    ),
}

_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_Q_QUOTE = re.compile(r"[Qq]'")
_DASH_WORD = re.compile(r"--[^\x00-\x20]")
_COMMENT_EDGE = re.compile(r"/\*|\*/")


def _second(statement: str, needle: str) -> int:
    first = statement.find(needle)
    return statement.find(needle, first + len(needle)) if first >= 0 else -1


def _position(pattern: re.Pattern[str]) -> Callable[[str], int]:
    def find(statement: str) -> int:
        match = pattern.search(statement)
        return match.start() if match else -1

    return find


# Where each undecided rule first matters in a statement (-1: nowhere, the rule is moot).
_TRIGGERS: tuple[Callable[[str], int], ...] = (
    lambda s: s.find("\\"),
    lambda s: s.find('"'),
    lambda s: _second(s, "/*"),
    lambda s: s.find("#"),
    lambda s: s.find("["),
    _position(_DOLLAR_TAG),
    lambda s: s.find("\\"),
    _position(_Q_QUOTE),
    _position(_DASH_WORD),
    lambda s: s.find("\r"),
)
_MAX_UNDECIDED = 4
"""Beyond this many undecided rules in one statement, the text ends where the first one matters."""

# token kinds
_LITERAL = "literal"
_NAME = "name"
_MAYBE_NAME = "maybe_name"  # an identifier or a string, depending on the server
_PLACEHOLDER = "placeholder"
_OTHER = "other"
_SPACE = "space"
_COMMENT = "comment"
_HIDDEN = "hidden"  # the readings disagree here

_BOOLEANS = frozenset({"TRUE", "FALSE"})


@functools.lru_cache(maxsize=64)
def _pattern(reading: _Reading) -> re.Pattern[str]:
    r = reading
    eol = r"[^\n\r]*" if r.cr_ends_comment else r"[^\n]*"
    dashes = r"--(?=[\x00-\x20]|\Z)" if r.dash_space else "--"
    comments = [dashes + eol]
    if r.hash_comments:
        comments.append("#" + eol)
    if not r.nested_comments:
        comments.append(r"/\*.*?(?:\*/|\Z)")
    escaped = r"'(?:[^'\\]|''|\\.)*(?:'|\\?\Z)"  # backslash escapes the next character
    plain = r"'(?:[^']|'')*(?:'|\Z)"
    literals = [r"(?:[BbXxNn]|[Uu]&)?" + (escaped if r.backslash else plain)]
    if r.escape_strings:
        literals.insert(0, r"[Ee]'(?:[^'\\]|''|\\.)*(?:'|\\?\Z)")
    if r.q_quotes:
        literals.insert(
            0,
            r"[Nn]?[Qq]'(?:\[.*?(?:\]'|\Z)|\{.*?(?:\}'|\Z)|\(.*?(?:\)'|\Z)|<.*?(?:>'|\Z)"
            r"|(?P<qd>[^\s\[{(<]).*?(?:(?P=qd)'|\Z)|.*\Z)",
        )
    if r.dollar_quotes:
        literals.insert(0, r"\$(?P<tag>(?:[^\W\d]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z)")
    names = [r"`(?:[^`]|``)*(?:`|\Z)"]
    if r.double_quoted_strings:
        if r.backslash:
            literals.append(r'"(?:[^"\\]|""|\\.)*(?:"|\\?\Z)')
        else:
            literals.append(r'"(?:[^"]|"")*(?:"|\Z)')
    else:
        names.append(r'(?:[Uu]&)?"(?:[^"]|"")*(?:"|\Z)')
    if r.brackets:
        names.append(r"\[(?:[^\]]|\]\])*(?:\]|\Z)")
    placeholders = [r"\$\d+", r"%\([^)]*\)s", "%s", r"\?\d*", r"(?<!:):[^\W\d]\w*"]
    if r.numbered_colon:
        placeholders.append(r"(?<!:):\d+")
    alternatives = [
        ("comment", "|".join(comments)),
        *([("nested", r"/\*")] if r.nested_comments else []),
        (_LITERAL, "|".join(literals)),
        ("quoted", "|".join(names)),
        (_PLACEHOLDER, "|".join(placeholders)),
        # a token that starts with a digit is a number, whatever follows (0x1F, 1_000, 1e-3)
        ("number", r"(?:\d|\.\d)(?:[\w.]|(?<=[eE])[+-])*"),
        (_NAME, r"[^\W\d][\w$]*"),
        (_SPACE, r"\s+"),
        (_OTHER, "."),
    ]
    return re.compile("|".join(f"(?P<{k}>{v})" for k, v in alternatives), re.DOTALL)


def _nested_end(statement: str, start: int) -> int:
    """The end of the nested block comment that starts at *start*."""
    depth = 0
    for match in _COMMENT_EDGE.finditer(statement, start):
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return match.end()
    return len(statement)


_Token = tuple[str, int, int]


def _scan(statement: str, reading: _Reading) -> Iterator[_Token]:
    """The tokens of *statement* under one reading: (kind, start, end), end to end."""
    match = _pattern(reading).match
    position, length = 0, len(statement)
    while position < length:
        found = match(statement, position)
        assert found is not None  # the last alternative matches any character
        kind = found.lastgroup
        end = found.end()
        if kind == "nested":
            kind, end = _COMMENT, _nested_end(statement, position)
        elif kind == "comment":
            kind = _COMMENT
        elif kind == "number":
            kind = _LITERAL
        elif kind == "quoted":
            kind = _NAME
        elif kind == _NAME and found.group().upper() in _BOOLEANS:
            kind = _LITERAL
        elif kind not in (_LITERAL, _PLACEHOLDER, _SPACE, _OTHER, _NAME):
            kind = _OTHER  # a named group inside an alternative (tag, qd) cannot end a match
        yield str(kind), position, end
        position = end


def _readings(statement: str, dialect: _Dialect) -> tuple[list[_Reading], int]:
    """The readings to compare, and where the text must end (the length when nowhere)."""
    fixed = [bool(v) for v in dialect[:10]]
    undecided: list[int] = []
    cut = len(statement)
    for index, value in enumerate(dialect[:10]):
        if value is None:
            where = _TRIGGERS[index](statement)
            if where >= 0:
                undecided.append(index)
                cut = min(cut, where)
    if len(undecided) > _MAX_UNDECIDED:
        return [_Reading._make([*fixed, dialect.numbered_colon])], cut
    readings = []
    for values in itertools.product((False, True), repeat=len(undecided)):
        rules = list(fixed)
        for index, value in zip(undecided, values, strict=True):
            rules[index] = value
        readings.append(_Reading._make([*rules, dialect.numbered_colon]))
    return readings, len(statement)


def _tokens(statement: str, dialect: _Dialect) -> list[tuple[str, str]]:
    """(kind, text) of every token, agreed by every reading or marked hidden."""
    readings, cut = _readings(statement, dialect)
    if cut < len(statement):
        # too many undecided rules: keep what comes before the first place one matters
        head = [(k, statement[a:b]) for k, a, b in _scan(statement[:cut], readings[0])]
        return [*head, (_HIDDEN, statement[cut:])]
    if len(readings) == 1:
        return [(k, statement[a:b]) for k, a, b in _scan(statement, readings[0])]
    streams = [_scan(statement, reading) for reading in readings]
    tokens: list[tuple[str, str]] = []
    heads = [next(stream, None) for stream in streams]
    while heads[0] is not None:
        first: _Token = heads[0]
        start = first[1]
        if all(head == first for head in heads):
            tokens.append((first[0], statement[start : first[2]]))
        else:
            ends = [head[2] if head is not None else len(statement) for head in heads]
            target = max(ends)
            if min(ends) == target:  # the same extent, read as different things
                text = statement[start:target]
                kinds = {head[0] for head in heads if head is not None}
                same_quotes = kinds <= {_NAME, _LITERAL} and text.startswith('"')
                tokens.append((_MAYBE_NAME if same_quotes else _HIDDEN, text))
            else:  # different extents: on to where every reading is at a boundary again
                while min(ends) < target:
                    for index, stream in enumerate(streams):
                        while ends[index] < target:
                            ends[index] = next(stream)[2]
                    target = max(ends)
                tokens.append((_HIDDEN, statement[start:target]))
        heads = [next(stream, None) for stream in streams]
    return tokens


# Keywords that start a statement (only recognised there).
_STATEMENTS = frozenset(
    [
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "REPLACE",
        "VALUES",
        "WITH",
        "TABLE",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "RENAME",
        "COMMENT",
        "GRANT",
        "REVOKE",
        "CALL",
        "EXEC",
        "EXECUTE",
        "PREPARE",
        "DEALLOCATE",
        "DECLARE",
        "FETCH",
        "MOVE",
        "CLOSE",
        "BEGIN",
        "START",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "ABORT",
        "SET",
        "RESET",
        "SHOW",
        "USE",
        "EXPLAIN",
        "ANALYZE",
        "VACUUM",
        "REINDEX",
        "CLUSTER",
        "CHECKPOINT",
        "PRAGMA",
        "ATTACH",
        "DETACH",
        "COPY",
        "LOCK",
        "LISTEN",
        "UNLISTEN",
        "NOTIFY",
        "DO",
        "REFRESH",
        "DISCARD",
        "LOAD",
    ]
)
# Data operations recognised anywhere (INSERT ... SELECT, subqueries, UNION SELECT).
_DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
# ... except after these words (SELECT ... FOR UPDATE, ON DELETE CASCADE, DO UPDATE SET).
_NOT_AN_OPERATION_AFTER = frozenset({"FOR", "ON", "DO", "OF", "BEFORE", "AFTER", "INSTEAD"})
# Not an operation of their own in a summary.
_SILENT = frozenset({"WITH"})
# Object kinds of CREATE/ALTER/DROP, and words that may stand between.
_DDL = frozenset({"CREATE", "ALTER", "DROP"})
_DDL_OBJECTS = frozenset(
    [
        "TABLE",
        "INDEX",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "SEQUENCE",
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "TYPE",
        "EXTENSION",
        "ROLE",
        "USER",
        "DOMAIN",
        "AGGREGATE",
        "COLLATION",
        "POLICY",
        "RULE",
        "SERVER",
        "PUBLICATION",
        "SUBSCRIPTION",
        "STATISTICS",
        "TABLESPACE",
    ]
)
_DDL_MODIFIERS = frozenset(
    [
        "OR",
        "REPLACE",
        "TEMP",
        "TEMPORARY",
        "UNIQUE",
        "UNLOGGED",
        "MATERIALIZED",
        "GLOBAL",
        "LOCAL",
        "VIRTUAL",
        "RECURSIVE",
        "FOREIGN",
    ]
)
# After these words comes a target (table, procedure, prepared statement).
_TARGET_AFTER = frozenset(
    {"FROM", "JOIN", "INTO", "UPDATE", "TRUNCATE", "CALL", "EXEC", "EXECUTE", "PREPARE", "COPY"}
)
_TARGET_AFTER_TABLE = frozenset({"TRUNCATE", "LOCK"})
# Words after which no target follows (SELECT ... INTO OUTFILE "name").
_NOT_A_TARGET = frozenset({"OUTFILE", "DUMPFILE"})
# Words skipped while waiting for a target.
_BEFORE_TARGET = frozenset({"IF", "NOT", "EXISTS", "ONLY", "LATERAL", "CONCURRENTLY", "TABLE"})
# Words that end a target list (FROM a, b WHERE ...).
_END_OF_TARGETS = frozenset(
    [
        "WHERE",
        "JOIN",
        "INNER",
        "LEFT",
        "RIGHT",
        "FULL",
        "CROSS",
        "OUTER",
        "NATURAL",
        "STRAIGHT_JOIN",
        "ON",
        "USING",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "UNION",
        "INTERSECT",
        "EXCEPT",
        "WINDOW",
        "FOR",
        "RETURNING",
        "SET",
        "VALUES",
        "DEFAULT",
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "WITH",
        "AS",
        "FETCH",
        "TABLESAMPLE",
        "QUALIFY",
    ]
)
# Statements that return rows (when they fail, the cursor cannot say).
_ROW_STATEMENTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "FETCH"})


class Described(NamedTuple):
    """What a statement says about itself."""

    text: str
    summary: str
    returns_rows: bool
    operation: str | None = None
    """The operation keyword of a text that holds one statement, as written (``SELECT``)."""


_ITEM = r"[-+]?\s*\?\d*|%s|%\([^)]*\)s|\$\d+|:\w+"
_IN_LIST = re.compile(rf"\b(IN)\s*\(\s*(?:{_ITEM})(?:\s*,\s*(?:{_ITEM}))+\s*\)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_AS_TEXT = {_LITERAL: "?", _MAYBE_NAME: "?", _HIDDEN: "?", _SPACE: " ", _COMMENT: " "}


def _sanitize(tokens: list[tuple[str, str]]) -> str:
    text = "".join(_AS_TEXT.get(kind, token) for kind, token in tokens)
    text = _SPACES.sub(" ", text).strip()
    return _IN_LIST.sub(r"\1 (?)", text)


class _Quoted(str):
    """A double-quoted word that may be a string: a target only where a string cannot be."""

    __slots__ = ()


_HIDDEN_WORD = "\0"
"""Stands for a part the readings disagree on: the summary ends there."""
_PUNCTUATION = frozenset("(),;")
_SYMBOLS = frozenset("(),?;")


def _words(tokens: list[tuple[str, str]]) -> list[str]:
    """Names, keywords and the punctuation that matters to the summary, in order.

    ``a . b`` becomes one word ``a.b``; literals and placeholders are ``?``.
    """
    words: list[str] = []
    dot = False  # a "." after a name: the next name joins it
    for kind, token in tokens:
        if kind in (_SPACE, _COMMENT):
            continue
        if kind in (_NAME, _MAYBE_NAME):
            if dot:
                joined = f"{words[-1]}.{token}"
                quoted = kind == _MAYBE_NAME or isinstance(words[-1], _Quoted)
                words[-1] = _Quoted(joined) if quoted else joined
            else:
                words.append(_Quoted(token) if kind == _MAYBE_NAME else token)
            dot = False
            continue
        dot = (
            kind == _OTHER
            and token == "."
            and bool(words)
            and words[-1] not in _SYMBOLS
            and words[-1] != _HIDDEN_WORD
        )
        if dot:
            continue
        if kind == _OTHER:
            if token in _PUNCTUATION:
                words.append(token)
        elif kind == _HIDDEN:
            words.append(_HIDDEN_WORD)
        else:  # literal, placeholder
            words.append("?")
    return words


def _summarize(words: list[str]) -> tuple[str, bool]:
    parts: list[str] = []
    first: str | None = None
    returning = False
    start = True  # at the start of a statement
    expect = False  # the next name is a target
    in_list = False  # after a target: an alias, or a comma and another target
    statements: list[bool] = []  # per open parenthesis: it holds a subquery
    previous = ""
    i = 0
    while i < len(words):
        word = words[i]
        if word == _HIDDEN_WORD:
            break  # what follows may belong to another statement
        upper = word.upper()
        i += 1
        if word == ";":
            start, expect, in_list, previous = True, False, False, ""
            statements.clear()
            continue
        if word in _SYMBOLS:
            if word == "," and in_list:
                expect, in_list = True, False
            elif word == "(":
                expect, in_list = False, False
                start = True  # a subquery may start here
                previous = "("
                statements.append(False)
                continue
            else:
                if word == ")" and statements:
                    statements.pop()
                expect = expect and word == ","
                in_list = False
            start = False
            previous = word
            continue
        quoted = isinstance(word, _Quoted)
        if upper == "RETURNING" and not quoted:
            returning = True
        is_operation = not quoted and (
            (start and upper in _STATEMENTS)
            or (upper in _DML and previous.upper() not in _NOT_AN_OPERATION_AFTER)
        )
        if in_list and not is_operation and upper not in _END_OF_TARGETS:
            previous = word  # an alias
            continue
        in_list = False
        if is_operation:
            if first is None:
                first = upper
            if previous == "(" and statements:
                statements[-1] = True
            start = False
            expect = upper in _TARGET_AFTER
            if upper in _DDL:
                words_of_op = [word]
                while i < len(words) and words[i].upper() in _DDL_MODIFIERS:
                    i += 1
                if i < len(words) and words[i].upper() in _DDL_OBJECTS:
                    words_of_op.append(words[i])
                    i += 1
                    expect = True
                word = " ".join(words_of_op)
            elif upper in _TARGET_AFTER_TABLE:
                expect = True
            if upper not in _SILENT:
                parts.append(word)
            previous = upper
            continue
        start = False
        if expect:
            if upper in _NOT_A_TARGET:
                expect = False
                previous = word
                continue
            if upper in _BEFORE_TARGET or upper in _TARGET_AFTER:
                previous = word
                continue
            if upper not in _END_OF_TARGETS:
                # "x" may be a string (MySQL, SQLite): only where a table name must stand,
                # not in a function's arguments (EXTRACT(YEAR FROM "2024-01-01")); a
                # target before any known operation ("SELEC a FROM t") is not summarised
                if first is not None and (not quoted or all(statements)):
                    parts.append(word)
                expect, in_list = False, True
                previous = word
                continue
        expect = upper in _TARGET_AFTER and previous.upper() not in _NOT_AN_OPERATION_AFTER
        previous = word
    summary = ""
    for part in parts:
        candidate = f"{summary} {part}" if summary else part
        if len(candidate) > MAX_SUMMARY:
            break
        summary = candidate
    return summary, returning or (first in _ROW_STATEMENTS)


# What a WITH clause may lead to (its main statement).
_AFTER_WITH = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"})


def _close(words: list[str], i: int) -> int | None:
    """The index after the parenthesis that closes the one at *i*, ``None`` if none does."""
    depth = 0
    for j in range(i, len(words)):
        if words[j] == "(":
            depth += 1
        elif words[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _after_with(words: list[str]) -> str | None:
    """The main operation of ``WITH a [(cols)] AS [[NOT] MATERIALIZED] (...), ... <op>``."""
    i = 1
    if i < len(words) and words[i].upper() == "RECURSIVE":
        i += 1
    while True:
        if i >= len(words) or words[i] in _SYMBOLS:
            return None
        i += 1  # the subquery's name
        if i < len(words) and words[i] == "(":  # its column names
            after = _close(words, i)
            if after is None:
                return None
            i = after
        if i >= len(words) or words[i].upper() != "AS":
            return None
        i += 1
        if i < len(words) and words[i].upper() == "NOT":
            i += 1
        if i < len(words) and words[i].upper() == "MATERIALIZED":
            i += 1
        if i >= len(words) or words[i] != "(":
            return None
        after = _close(words, i)
        if after is None or after >= len(words):
            return None
        i = after
        if words[i] == ",":
            i += 1
            continue
        main = words[i]
        if isinstance(main, _Quoted) or main.upper() not in _AFTER_WITH:
            return None
        return main


def _operation(words: list[str]) -> str | None:
    """The operation keyword of the one statement in *words* (``None``: not exactly one)."""
    if _HIDDEN_WORD in words:
        return None
    statements: list[list[str]] = [[]]
    for word in words:
        if word == ";":
            statements.append([])
        else:
            statements[-1].append(word)
    found = [statement for statement in statements if statement]
    if len(found) != 1:
        return None
    statement = found[0]
    first = statement[0]
    if isinstance(first, _Quoted) or first.upper() not in _STATEMENTS:
        return None
    return _after_with(statement) if first.upper() == "WITH" else first


def describe(statement: str, db_system: str | None = None) -> Described:
    """Sanitized text, summary, row guess and operation of *statement* (cached).

    Only the first :data:`MAX_TEXT` characters are read: a statement longer
    than that (a page of a bulk ``INSERT``) is described by its beginning, so
    neither the time to read it nor the cache grows with its length.

    :param db_system: the ``db.system.name`` whose quoting rules apply
        (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``, ``oracle.db``,
        ``microsoft.sql_server``); any other value, or ``None``, reads the
        statement by the rules of every one of them at once.
    """
    return _describe(statement[:MAX_TEXT], db_system)


@functools.lru_cache(maxsize=2048)
def _describe(statement: str, db_system: str | None) -> Described:
    tokens = _tokens(statement, _DIALECTS.get(db_system or "", _UNKNOWN))
    words = _words(tokens)
    summary, returns_rows = _summarize(words)
    return Described(_sanitize(tokens), summary, returns_rows, _operation(words))
