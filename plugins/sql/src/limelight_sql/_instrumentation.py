"""The instrument contract: the drivers' connect seams and SQLAlchemy's engines.

One :class:`limelight.surface.Instrumentor` per library: ``sqlite3``,
``aiosqlite``, ``psycopg`` (sync and async) and ``psycopg2`` at their
``connect`` (see ``_connect``), and ``sqlalchemy`` at ``Engine.__init__``
(see ``_sqlalchemy``), each patched through :class:`~limelight.surface.Patches`
so ``uninstrument()`` puts the very functions back. A library is imported only
when it is instrumented, and only if it is installed.
"""

from __future__ import annotations

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["instrument", "instrumentation", "is_instrumented", "uninstrument"]


def _install_sqlite3(patches: Patches) -> None:
    from ._connect import install_sqlite3

    install_sqlite3(patches)


def _remove_sqlite3() -> None:
    from ._connect import stand_down_made

    stand_down_made("sqlite3")


def _install_aiosqlite(patches: Patches) -> None:
    from ._connect import install_aiosqlite

    install_aiosqlite(patches)


def _remove_aiosqlite() -> None:
    from ._connect import stand_down_made

    stand_down_made("aiosqlite")


def _install_psycopg(patches: Patches) -> None:
    from ._connect import install_psycopg

    install_psycopg(patches)


def _remove_psycopg() -> None:
    from ._connect import stand_down_made

    stand_down_made("psycopg")


def _install_psycopg2(patches: Patches) -> None:
    from ._connect import install_psycopg2

    install_psycopg2(patches)


def _remove_psycopg2() -> None:
    from ._connect import stand_down_made

    stand_down_made("psycopg2")


def _install_sqlalchemy(patches: Patches) -> None:
    from ._sqlalchemy import install

    install(patches)


def _remove_sqlalchemy() -> None:
    from ._sqlalchemy import remove

    remove()


instrumentation = Instrumentation(
    "sql",
    [
        Instrumentor("sqlite3", _install_sqlite3, remove=_remove_sqlite3),
        Instrumentor("aiosqlite", _install_aiosqlite, remove=_remove_aiosqlite),
        Instrumentor("psycopg", _install_psycopg, remove=_remove_psycopg),
        Instrumentor("psycopg2", _install_psycopg2, remove=_remove_psycopg2),
        Instrumentor("sqlalchemy", _install_sqlalchemy, remove=_remove_sqlalchemy),
    ],
)
"""The plugin's instrumentors, one per driver and one for SQLAlchemy."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Measure every connection of *libraries* made from now on, and every SQLAlchemy
    engine made from now on.

    The libraries are ``"sqlite3"``, ``"aiosqlite"``, ``"psycopg"``,
    ``"psycopg2"`` and ``"sqlalchemy"``; with no name, every one installed. A
    library named but not installed raises :class:`ImportError`. Idempotent.
    Returns the libraries this call instrumented.

    A driver's connections are measured as :func:`~limelight_sql.instrument_connection`
    would (sqlite3 ones stay ``sqlite3.Connection`` objects); an engine as
    :func:`~limelight_sql.instrument_engine` would. A statement an
    instrumented engine runs is counted once, by the engine. Connections and
    engines made before the call are not instrumented.
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced (every library, with none given);
    return the libraries that were instrumented.

    Engines it instrumented lose their listeners, and connections it
    instrumented record nothing from then on (they stay the objects they
    are); those instrumented explicitly keep recording.
    """
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (any of them, with none given) is instrumented."""
    return instrumentation.is_instrumented(library)
