"""Statement text for spans: literals removed, a low-cardinality summary, the op guess.

One tokenizer pass over a statement gives three things, cached per distinct
statement (applications run the same statement texts over and over):

* ``text``: the statement with every literal (strings, dollar-quoted strings,
  numbers, booleans) replaced by ``?`` and comments removed, whitespace
  collapsed, ``IN (?, ?, ?)`` collapsed to ``IN (?)`` (``db.query.text``).
  Placeholders (``?``, ``%s``, ``%(name)s``, ``$1``, ``:name``) are kept;
  parameter values are never part of the text.
* ``summary``: operations and their targets in order, ``SELECT orders`` or
  ``INSERT shipping SELECT orders`` (``db.query.summary`` and the span name).
* ``returns_rows``: whether the statement most likely returns rows, used for
  the ``op`` label only when the statement failed (on success the cursor's
  ``description`` says it).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

__all__ = ["MAX_SUMMARY", "MAX_TEXT", "Described", "describe"]

MAX_TEXT = 4096
"""``db.query.text`` is cut to this many characters."""
MAX_SUMMARY = 255
"""``db.query.summary`` is cut (between two words) to at most this many characters."""

_NAME = r'(?:"(?:[^"]|"")*"|`[^`]*`|[A-Za-z_][\w$]*)'
_TOKEN = re.compile(
    rf"""
    (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<dollar>\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z))
    |(?P<string>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\Z)|(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|\Z))
    |(?P<placeholder>\$\d+|%\([^)]*\)s|%s|\?|(?<!:):[A-Za-z_]\w*)
    |(?P<number>(?<![\w$.])(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
    |(?P<name>{_NAME}(?:\s*\.\s*{_NAME})*)
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_IN_LIST = re.compile(r"\b(IN)\s*\(\s*\?(?:\s*,\s*\?)+\s*\)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_DOT = re.compile(r"\s*\.\s*(?=[A-Za-z_\"`])")

_BOOLEANS = frozenset({"TRUE", "FALSE"})

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


def _sanitize(statement: str) -> str:
    out: list[str] = []
    for match in _TOKEN.finditer(statement):
        kind = match.lastgroup
        if kind in ("string", "dollar", "number"):
            out.append("?")
        elif kind in {"comment", "space"}:
            out.append(" ")
        elif kind == "name" and match.group().upper() in _BOOLEANS:
            out.append("?")
        else:
            out.append(match.group())
    text = _SPACE.sub(" ", "".join(out)).strip()
    text = _IN_LIST.sub(r"\1 (?)", text)
    return text[:MAX_TEXT]


def _words(statement: str) -> list[str]:
    """Names, keywords and the punctuation that matters to the summary, in order."""
    words = []
    for match in _TOKEN.finditer(statement):
        kind = match.lastgroup
        if kind == "name":
            words.append(_DOT.sub(".", match.group()))
        elif kind == "other" and match.group() in "(),;":
            words.append(match.group())
        elif kind in ("string", "dollar", "number", "placeholder"):
            words.append("?")
    return words


def _summarize(words: list[str]) -> tuple[str, bool]:
    parts: list[str] = []
    first: str | None = None
    returning = False
    start = True  # at the start of a statement
    expect = False  # the next name is a target
    in_list = False  # after a target: an alias, or a comma and another target
    previous = ""
    i = 0
    while i < len(words):
        word = words[i]
        upper = word.upper()
        i += 1
        if word == ";":
            start, expect, in_list, previous = True, False, False, ""
            continue
        if word in "(),?":
            if word == "," and in_list:
                expect, in_list = True, False
            elif word == "(":
                expect, in_list = False, False
                start = True  # a subquery may start here
                previous = "("
                continue
            else:
                expect = expect and word == ","
                in_list = False
            start = False
            previous = word
            continue
        if upper == "RETURNING":
            returning = True
        is_operation = (start and upper in _STATEMENTS) or (
            upper in _DML and previous.upper() not in _NOT_AN_OPERATION_AFTER
        )
        if in_list and not is_operation and upper not in _END_OF_TARGETS:
            previous = word  # an alias
            continue
        in_list = False
        if is_operation:
            if first is None:
                first = upper
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
            if upper in _BEFORE_TARGET or upper in _TARGET_AFTER:
                previous = word
                continue
            if upper not in _END_OF_TARGETS:
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


@functools.lru_cache(maxsize=2048)
def describe(statement: str) -> Described:
    """Sanitized text, summary and row guess of *statement* (cached)."""
    summary, returns_rows = _summarize(_words(statement))
    return Described(_sanitize(statement), summary, returns_rows)
