"""The slot monitor: every replication slot's retained WAL, whoever consumes it."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from limelight import Telemetry
from limelight.export import suppressed
from limelight.metrics import Metric
from limelight.plugins import get_logger
from limelight.surface import TelemetryBinding

from ._instruments import count_error, report_failure
from ._plugin import (
    CDC_RETAINED_WAL,
    CDC_SLOT_ACTIVE,
    CDC_SLOT_SAFE_WAL_SIZE,
    CDC_SLOT_WAL_STATUS,
    CDC_UNCONFIRMED_WAL,
    WAL_STATUSES,
)

__all__ = ["DRIVERS", "SlotMonitor"]

_log = get_logger("limelight.cdc")

DRIVERS: tuple[str, ...] = ("psycopg", "psycopg2")
"""The drivers the monitor connects with (the first one installed, unless one is named)."""

_CURRENT_LSN = (
    "CASE WHEN pg_is_in_recovery() "
    "THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
    "ELSE pg_current_wal_lsn() END"
)
_QUERY = (
    "SELECT s.slot_name::text, s.active, "
    "coalesce(pg_wal_lsn_diff(c.lsn, s.restart_lsn), 0)::float8, "
    "pg_wal_lsn_diff(c.lsn, s.confirmed_flush_lsn)::float8, "
    "{wal_status}, {safe_wal_size} "
    f"FROM pg_replication_slots s, (SELECT {_CURRENT_LSN} AS lsn) c"
)
_QUERY_13 = _QUERY.format(wal_status="s.wal_status::text", safe_wal_size="s.safe_wal_size::float8")
"""PostgreSQL 13 and later: wal_status and safe_wal_size exist."""
_QUERY_10 = _QUERY.format(wal_status="NULL::text", safe_wal_size="NULL::float8")
"""PostgreSQL 10 to 12."""

_APPLICATION_NAME = "limelight-cdc-slot-monitor"
_SAFE_KEYS = ("host", "hostaddr", "port", "dbname", "user", "service")


class _Gauges:
    """The monitor's metric handles for one telemetry start (``None`` when not recording)."""

    __slots__ = ("active", "retained", "safe", "status", "unconfirmed")

    def __init__(self, telemetry: Telemetry) -> None:
        store = telemetry.store
        self.retained: Metric[Any] | None = None
        self.unconfirmed: Metric[Any] | None = None
        self.active: Metric[Any] | None = None
        self.status: Metric[Any] | None = None
        self.safe: Metric[Any] | None = None
        if not telemetry.enabled or CDC_RETAINED_WAL.name not in store:
            return
        self.retained = store.get(CDC_RETAINED_WAL.name)
        self.unconfirmed = store.get(CDC_UNCONFIRMED_WAL.name)
        self.active = store.get(CDC_SLOT_ACTIVE.name)
        self.status = store.get(CDC_SLOT_WAL_STATUS.name)
        self.safe = store.get(CDC_SLOT_SAFE_WAL_SIZE.name)


_GAUGES = TelemetryBinding(_Gauges)


def _driver_module(driver: str | None) -> tuple[str, Any]:
    import importlib
    import importlib.util

    names = (driver,) if driver is not None else DRIVERS
    for name in names:
        if name not in DRIVERS:
            raise ValueError(f"unknown driver {name!r} (known: {', '.join(DRIVERS)})")
        if driver is not None or importlib.util.find_spec(name) is not None:
            return name, importlib.import_module(name)
    raise ImportError(
        "the slot monitor needs psycopg or psycopg2: install limelight-cdc[psycopg] "
        "or limelight-cdc[psycopg2]"
    )


class SlotMonitor:
    """Polls ``pg_replication_slots`` on its own thread and sets, per slot:

    - ``cdc_retained_wal_bytes``: the current WAL position minus ``restart_lsn``
      (the WAL the server keeps for the slot, 0 while it holds none);
    - ``cdc_unconfirmed_wal_bytes``: minus ``confirmed_flush_lsn`` (logical slots);
    - ``cdc_slot_active``: 1 while a consumer is connected;
    - ``cdc_slot_wal_status`` and ``cdc_slot_safe_wal_size_bytes`` where the
      server has them (PostgreSQL 13 and later; ``safe_wal_size`` only with
      ``max_slot_wal_keep_size`` set).

    A slot that disappears takes its series with it. A failed connection or
    query counts in ``cdc_errors_total{slot="",kind="monitor"}``, is logged
    (warning once, then at debug level until the monitor recovers) without the
    password, and is retried with exponential backoff; the slots keep their
    last values meanwhile. Nothing the monitor does raises into the application.

    Any consumer's slots are watched, Debezium's included: the monitor reads a
    view any role may read, on a connection of its own::

        monitor = SlotMonitor("host=db dbname=app user=monitor", interval=15).start()
        ...
        monitor.stop()

    :param dsn: a libpq connection string or URI (``postgresql://...``); the
        libpq environment variables (``PGPASSWORD``, ``PGPASSFILE``, ...) apply.
    :param interval: seconds between polls.
    :param slots: watch only these slots (all by default).
    :param driver: ``psycopg`` or ``psycopg2``; the first one installed by default.
    :param connect_timeout: seconds to connect (at least 2, as libpq requires).
    :param max_backoff: the longest wait between retries after failures, in seconds.
    """

    def __init__(
        self,
        dsn: str = "",
        *,
        interval: float = 10.0,
        slots: Iterable[str] | None = None,
        driver: str | None = None,
        connect_timeout: float = 5.0,
        max_backoff: float = 60.0,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if driver is not None and driver not in DRIVERS:
            raise ValueError(f"unknown driver {driver!r} (known: {', '.join(DRIVERS)})")
        self._dsn = dsn
        self.interval = float(interval)
        self.slots = frozenset(slots) if slots is not None else None
        self.driver = driver
        self.connect_timeout = max(2, round(connect_timeout))
        self.max_backoff = max(float(max_backoff), self.interval)
        self.failures = 0
        """Consecutive failed polls (0 after a success)."""
        self.last_error: str | None = None
        """The last failure, as logged (no password), or ``None``."""
        self._conn: Any = None
        self._query = _QUERY_13
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gauges: _Gauges | None = None
        self._known: set[str] = set()
        self._described: str | None = None
        self._secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SlotMonitor({self.target}, interval={self.interval:g})"

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> SlotMonitor:
        """Start polling on a daemon thread (the first poll at once); idempotent."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="limelight-cdc-slot-monitor", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling, close the connection; the slots' series stay as last set."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        with self._lock:
            self._close()

    def __enter__(self) -> SlotMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self.poll()
            if ok:
                delay = self.interval
            else:
                base = min(self.interval, 1.0) * 2 ** min(self.failures - 1, 30)
                delay = min(self.max_backoff, base) * random.uniform(0.9, 1.1)
            if self._stop.wait(delay):
                break

    # -- one poll -----------------------------------------------------------------------

    def poll(self) -> bool:
        """Poll once now (connecting first when needed); true when it worked. Never raises."""
        with self._lock:
            try:
                with suppressed():  # its own queries are not the application's SQL
                    rows = self._fetch()
            except Exception as exc:
                self._failed(exc)
                return False
            try:
                self._record(rows)
            except Exception as exc:
                report_failure("slot monitor", exc)
            if self.failures:
                _log.info("slot monitor polling again", target=self.target)
            self.failures = 0
            self.last_error = None
            return True

    def _fetch(self) -> Sequence[Sequence[Any]]:
        if self._conn is None:
            self._connect()
        try:
            cursor = self._conn.cursor()
            try:
                cursor.execute(self._query)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except Exception:
            self._close()  # a broken connection is not reused
            raise

    def _connect(self) -> None:
        name, module = _driver_module(self.driver)
        params = self._params(name, module)
        extra: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if "application_name" not in params:
            extra["application_name"] = _APPLICATION_NAME
        if name == "psycopg":
            conn = module.connect(self._dsn, autocommit=True, **extra)
        else:
            conn = module.connect(self._dsn, **extra)
            conn.autocommit = True
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("SET statement_timeout = 10000")
                cursor.execute("SELECT current_setting('server_version_num')::int")
                row = cursor.fetchone()
                version = int(row[0]) if row else 0
            finally:
                cursor.close()
        except Exception:
            conn.close()
            raise
        self._query = _QUERY_13 if version >= 130000 else _QUERY_10
        self._conn = conn

    def _params(self, name: str, module: Any) -> dict[str, str]:
        """The DSN's parameters as libpq reads them (for the log line and the secrets)."""
        try:
            if name == "psycopg":
                from psycopg.conninfo import conninfo_to_dict

                parsed = dict(conninfo_to_dict(self._dsn))
            else:
                parsed = dict(module.extensions.parse_dsn(self._dsn))
        except Exception:
            parsed = {}
        params = {str(k): str(v) for k, v in parsed.items() if v is not None}
        password = params.get("password")
        self._secrets = (password,) if password else ()
        self._described = " ".join(f"{k}={params[k]}" for k in _SAFE_KEYS if k in params)
        return params

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @property
    def target(self) -> str:
        """The server watched, as logged: host, port, database and user, never the password."""
        if self._described is None:
            try:
                self._params(*_driver_module(self.driver))
            except Exception:
                self._described = ""
        return self._described or "the server of the configured connection string"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if self._dsn and "password" in self._dsn.lower():
            text = text.replace(self._dsn, "***")
        return text

    def _failed(self, exc: BaseException) -> None:
        count_error("", "monitor")
        self.failures += 1
        message = " ".join(str(exc).split())
        self.last_error = self._scrub(f"{type(exc).__name__}: {message}")
        log = _log.warning if self.failures == 1 else _log.debug
        log(
            "slot monitor cannot poll pg_replication_slots, retrying with backoff",
            target=self.target,
            failures=self.failures,
            error=self.last_error,
        )

    # -- recording ----------------------------------------------------------------------

    def _record(self, rows: Sequence[Sequence[Any]]) -> None:
        gauges = _GAUGES.get()
        if gauges is not self._gauges:  # a new telemetry start: a new store
            self._gauges = gauges
            self._known = set()
        retained, unconfirmed, active = gauges.retained, gauges.unconfirmed, gauges.active
        status, safe = gauges.status, gauges.safe
        if retained is None or unconfirmed is None or active is None:
            return
        if status is None or safe is None:
            return
        wanted = self.slots
        seen: set[str] = set()
        for slot, is_active, retained_bytes, unconfirmed_bytes, wal_status, safe_size in rows:
            if slot is None or (wanted is not None and slot not in wanted):
                continue
            seen.add(slot)
            retained.labels(slot).set(float(retained_bytes or 0))
            if unconfirmed_bytes is None:
                unconfirmed.remove(slot)
            else:
                unconfirmed.labels(slot).set(float(unconfirmed_bytes))
            active.labels(slot).set(1.0 if is_active else 0.0)
            if wal_status is None:
                for name in WAL_STATUSES:
                    status.remove(slot, name)
            else:
                for name in WAL_STATUSES:
                    status.labels(slot, name).set(1.0 if name == wal_status else 0.0)
            if safe_size is None:
                safe.remove(slot)
            else:
                safe.labels(slot).set(float(safe_size))
        for slot in self._known - seen:
            retained.remove(slot)
            unconfirmed.remove(slot)
            active.remove(slot)
            safe.remove(slot)
            for name in WAL_STATUSES:
                status.remove(slot, name)
        self._known = seen
