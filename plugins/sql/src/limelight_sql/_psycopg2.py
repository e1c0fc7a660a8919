"""A psycopg2 connection class whose cursors are measured: ``connection_factory=``."""

from __future__ import annotations

from typing import Any

import psycopg2.extensions

from ._instruments import binding_for, server_attributes
from ._native import measured_cursor_class, register

__all__ = ["Psycopg2Connection"]


class Psycopg2Connection(psycopg2.extensions.connection):
    """A psycopg2 connection whose cursors measure every statement.

    Pass it as ``connection_factory`` (to ``psycopg2.connect``, or to a
    ``psycopg2.pool`` pool)::

        conn = psycopg2.connect(dsn, connection_factory=Psycopg2Connection)

    It is a psycopg2 connection in every way; spans follow
    ``LIMELIGHT_SQL_SPANS`` unless ``instrument_connection(conn, spans=...)``
    says otherwise. Unlike a connection instrumented after it was made, it
    also measures cursors of a ``cursor_factory`` given to ``cursor()``
    (``conn.cursor(cursor_factory=RealDictCursor)``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        register(self, binding_for("postgresql", None, server_attributes(self, "postgresql")))

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``cursor(...)``, of a measuring subclass of the factory it would use."""
        default: Any = self.cursor_factory
        if len(args) >= 2:  # cursor(name, cursor_factory, ...)
            factory = args[1] or default or psycopg2.extensions.cursor
            args = (args[0], measured_cursor_class(factory), *args[2:])
        else:
            factory = kwargs.get("cursor_factory") or default or psycopg2.extensions.cursor
            kwargs["cursor_factory"] = measured_cursor_class(factory)
        return super().cursor(*args, **kwargs)
