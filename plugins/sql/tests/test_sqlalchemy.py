"""SQLAlchemy engines (sync and async) through the event system."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from limelight_sql import instrument_engine, plugin, uninstrument_engine
from limelight_sql._instruments import System
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


def count(telemetry: Harness, op: str, result: str, db_system: str) -> float:
    return telemetry.value("sql_ops_total", db_system=db_system, op=op, result=result, default=0)


class Base(DeclarativeBase):
    pass


def item_model(table: str) -> type[Any]:
    """A mapped class over a table of this test's own."""
    return type(
        f"Item_{table}",
        (Base,),
        {
            "__tablename__": table,
            "id": mapped_column(sa.Integer, primary_key=True),
            "name": mapped_column(sa.String(50), unique=True),
            "__annotations__": {"id": Mapped[int], "name": Mapped[str]},
        },
    )


@pytest.fixture
def sqlite_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    yield instrument_engine(engine)
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str, table: str) -> Iterator[tuple[sa.Engine, type[Any]]]:
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    model = item_model(table)
    model.__table__.create(engine)
    yield instrument_engine(engine), model
    uninstrument_engine(engine)
    model.__table__.drop(engine)
    Base.metadata.remove(model.__table__)
    engine.dispose()


class TestSyncEngine:
    """Core and ORM statements are counted by op and result."""

    def test_core_statements(self, telemetry: Harness, sqlite_engine: sa.Engine) -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO items (name) VALUES (:name)"), {"name": "a"})
            rows = conn.execute(sa.text("SELECT name FROM items")).all()
        assert [("a",)] == [tuple(r) for r in rows]
        assert 1 == count(telemetry, "exec", "ok", "sqlite")
        assert 1 == count(telemetry, "query", "ok", "sqlite")

    def test_executemany(self, telemetry: Harness, sqlite_engine: sa.Engine) -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO items (name) VALUES (:name)"),
                [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            )
        assert 1 == count(telemetry, "exec", "ok", "sqlite")

    def test_syntax_error_is_raised_as_sqlalchemy_raises_it(
        self, telemetry: Harness, sqlite_engine: sa.Engine
    ) -> None:
        with sqlite_engine.connect() as conn, pytest.raises(sa_exc.OperationalError):
            conn.execute(sa.text("SELEC 1"))
        assert 1 == count(telemetry, "exec", "error", "sqlite")

    def test_rollback(self, telemetry: Harness, sqlite_engine: sa.Engine) -> None:
        with sqlite_engine.connect() as conn:
            conn.execute(sa.text("INSERT INTO items (name) VALUES ('x')"))
            conn.rollback()
            assert 0 == conn.execute(sa.text("SELECT count(*) FROM items")).scalar()
        assert 1 == count(telemetry, "exec", "ok", "sqlite")
        assert 1 == count(telemetry, "query", "ok", "sqlite")

    def test_orm_session(self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any]) -> None:
        engine, model = pg_engine
        with Session(engine) as session:
            session.add_all([model(name="a"), model(name="b")])
            session.commit()
            names = session.scalars(sa.select(model.name).order_by(model.name)).all()
        assert ["a", "b"] == names
        # one INSERT ... RETURNING of both rows (insertmanyvalues), one SELECT
        assert 2 == count(telemetry, "query", "ok", "postgresql")
        assert 0 == count(telemetry, "exec", "ok", "postgresql")
        assert 0 == count(telemetry, "query", "error", "postgresql")
        assert 0 == count(telemetry, "exec", "error", "postgresql")

    def test_orm_flush_of_many_rows_is_one_statement_per_page(
        self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any]
    ) -> None:
        engine, model = pg_engine
        assert 1000 == engine.dialect.insertmanyvalues_page_size
        with Session(engine) as session:
            session.add_all([model(name=f"n{i}") for i in range(2500)])
            session.flush()
            assert 2500 == session.scalar(sa.select(sa.func.count()).select_from(model))
            session.rollback()
        # pages of 1000, 1000 and 500 rows, then the count
        assert 4 == count(telemetry, "query", "ok", "postgresql")

    def test_orm_flush_with_sqlite_is_one_statement_per_row(
        self, telemetry: Harness, sqlite_engine: sa.Engine
    ) -> None:
        model = item_model("items")
        try:
            with Session(sqlite_engine) as session:
                session.add_all([model(name=f"n{i}") for i in range(3)])
                session.commit()
        finally:
            Base.metadata.remove(model.__table__)
        # SQLAlchemy reads each new key back with INSERT ... RETURNING, one row at a time
        assert 3 == count(telemetry, "query", "ok", "sqlite")
        assert 0 == count(telemetry, "exec", "ok", "sqlite")

    def test_orm_rollback_on_error(
        self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any]
    ) -> None:
        engine, model = pg_engine
        with Session(engine) as session:
            session.add(model(name="dup"))
            session.commit()
            session.add(model(name="dup"))
            with pytest.raises(sa_exc.IntegrityError):
                session.commit()
            session.rollback()
            assert 1 == session.scalar(sa.select(sa.func.count()).select_from(model))
        errors = count(telemetry, "query", "error", "postgresql") + count(
            telemetry, "exec", "error", "postgresql"
        )
        assert 1 == errors

    def test_dropped_connection(self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any]) -> None:
        engine, _model = pg_engine
        with engine.connect() as conn, pytest.raises(sa_exc.OperationalError) as raised:
            conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert raised.value.connection_invalidated
        assert 1 == count(telemetry, "query", "error", "postgresql")
        with engine.connect() as conn:  # the pool recovers
            assert 1 == conn.execute(sa.text("SELECT 1")).scalar()
        assert 1 == count(telemetry, "query", "ok", "postgresql")

    def test_uninstrument(self, telemetry: Harness, sqlite_engine: sa.Engine) -> None:
        uninstrument_engine(sqlite_engine)
        with sqlite_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert [] == telemetry.series("sql_ops_total")

    def test_instrumenting_twice_counts_once(
        self, telemetry: Harness, sqlite_engine: sa.Engine
    ) -> None:
        instrument_engine(sqlite_engine)
        with sqlite_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert 1 == count(telemetry, "query", "ok", "sqlite")

    def test_not_an_engine(self) -> None:
        with pytest.raises(TypeError, match="SQLAlchemy Engine"):
            instrument_engine(object())

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_spans(
        self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any], pg_params: dict[str, Any]
    ) -> None:
        engine, model = pg_engine
        with engine.connect() as conn:
            conn.execute(sa.select(model).where(model.name == "secret"))
            with pytest.raises(sa_exc.ProgrammingError):
                conn.execute(sa.text("SELEC 1"))
        table = model.__tablename__
        span = telemetry.span(name=f"SELECT {table}", kind="client")
        attributes = dict(span.attributes or {})
        assert "postgresql" == attributes["db.system.name"]
        assert attributes["db.namespace"] == pg_params["dbname"]
        assert attributes["server.address"] == pg_params["host"]
        port = pg_params["port"]
        assert attributes.get("server.port") == (None if port == 5432 else port)
        assert "secret" not in str(attributes)
        assert "%(name_1)s" in str(attributes["db.query.text"])
        failed = telemetry.span(status="error")
        assert "42601" == (failed.attributes or {})["db.response.status_code"]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_broken_recording_still_ends_the_span(
        self, telemetry: Harness, sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("recording broke")

        monkeypatch.setattr(System, "ok", broken)
        monkeypatch.setattr(System, "failed", broken)
        with sqlite_engine.connect() as conn:
            assert [(1,)] == conn.execute(sa.text("SELECT 1")).all()
            with pytest.raises(sa_exc.OperationalError):
                conn.execute(sa.text("SELEC 1"))
        assert ["UNSET", "ERROR"] == [s.status.status_code.name for s in telemetry.spans()]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    def test_batch_spans(
        self, telemetry: Harness, pg_engine: tuple[sa.Engine, Any], sqlite_engine: sa.Engine
    ) -> None:
        engine, model = pg_engine
        with Session(engine) as session:
            session.add_all([model(name="a"), model(name="b"), model(name="c")])
            session.commit()
        with sqlite_engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO items (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
            )
        table = model.__tablename__
        # insertmanyvalues: one statement of three rows
        flushed = dict(telemetry.span(name=f"INSERT {table} SELECT VALUES").attributes or {})
        assert "INSERT" == flushed["db.operation.name"]
        assert "db.operation.batch.size" not in flushed
        # executemany: a batch of two statements
        batch = dict(telemetry.span(name="BATCH INSERT items").attributes or {})
        assert 2 == batch["db.operation.batch.size"]
        assert "BATCH INSERT" == batch["db.operation.name"]


@pytest_asyncio.fixture
async def async_engine(pg_url: str, table: str) -> AsyncIterator[tuple[AsyncEngine, Any]]:
    engine = create_async_engine(pg_url.replace("postgresql://", "postgresql+asyncpg://"))
    model = item_model(table)
    async with engine.begin() as conn:
        await conn.run_sync(model.__table__.create)
    yield instrument_engine(engine), model
    uninstrument_engine(engine)
    async with engine.begin() as conn:
        await conn.run_sync(model.__table__.drop)
    Base.metadata.remove(model.__table__)
    await engine.dispose()


@pytest.mark.asyncio
class TestAsyncEngine:
    """An AsyncEngine (asyncpg) is instrumented through its sync_engine."""

    async def test_statements(self, telemetry: Harness, async_engine: tuple[Any, Any]) -> None:
        engine, model = async_engine
        table = model.__tablename__
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"INSERT INTO {table} (name) VALUES (:n)"), {"n": "a"})
            # SQLAlchemy adds RETURNING to fetch the new primary key: a query
            await conn.execute(sa.insert(model).values(name="b"))
            result = await conn.execute(sa.select(model.name).order_by(model.name))
            assert ["a", "b"] == result.scalars().all()
        assert 1 == count(telemetry, "exec", "ok", "postgresql")
        assert 2 == count(telemetry, "query", "ok", "postgresql")

    async def test_error_and_rollback(
        self, telemetry: Harness, async_engine: tuple[Any, Any]
    ) -> None:
        engine, model = async_engine
        insert = sa.text(f"INSERT INTO {model.__tablename__} (name) VALUES ('x')")
        async with engine.connect() as conn:
            await conn.execute(insert)
            with pytest.raises(sa_exc.IntegrityError):
                await conn.execute(insert)
            await conn.rollback()
            assert 0 == await conn.scalar(sa.select(sa.func.count()).select_from(model))
        assert 1 == count(telemetry, "exec", "ok", "postgresql")
        assert 1 == count(telemetry, "exec", "error", "postgresql")

    async def test_dropped_connection(
        self, telemetry: Harness, async_engine: tuple[Any, Any]
    ) -> None:
        engine, _model = async_engine
        async with engine.connect() as conn:
            with pytest.raises(sa_exc.DBAPIError):
                await conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert 1 == count(telemetry, "query", "error", "postgresql")

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "true"})
    async def test_span_parent(self, telemetry: Harness, async_engine: tuple[Any, Any]) -> None:
        engine, model = async_engine
        tracer = telemetry.telemetry.tracer("test")
        with tracer.start_as_current_span("request"):
            async with engine.connect() as conn:
                await conn.execute(sa.select(model.id))
        parent = telemetry.span(name="request")
        assert telemetry.span(name=f"SELECT {model.__tablename__}", parent=parent)
