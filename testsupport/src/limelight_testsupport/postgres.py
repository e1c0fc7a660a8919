"""A private PostgreSQL server for tests, from the Debian binaries on the machine.

The shared server on 5432 keeps its settings; a suite that needs others
(``wal_level=logical`` for logical replication, say) starts its own::

    from limelight_testsupport.postgres import postgres_server

    with postgres_server() as pg:          # initdb + pg_ctl in a temporary directory
        dsn = pg.dsn()                     # "host=127.0.0.1 port=... user=postgres dbname=postgres"
        pg.psql("CREATE TABLE t (id int)")

The cluster lives in a temporary directory, listens on a free loopback port
(and a Unix socket in that directory), trusts local connections, and is
stopped and deleted afterwards. It is made with ``wal_level=logical`` and room
for replication slots and WAL senders; durability is off (``fsync``,
``synchronous_commit``, ``full_page_writes``), since the data is thrown away.
initdb refuses to run as root, so under root every server command runs as the
``postgres`` OS user (or ``nobody`` where there is none), which owns the
directory.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import ensure_debian_package_file, free_port, unavailable, wait_for_port

__all__ = [
    "DEFAULT_SETTINGS",
    "PostgresError",
    "PostgresServer",
    "ensure_output_plugin",
    "find_bindir",
    "postgres_server",
    "require_bindir",
]

DEFAULT_SETTINGS: Mapping[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "wal_sender_timeout": "60s",
    "max_connections": "50",
    "shared_buffers": "32MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}
"""The settings every private server gets (``settings=`` adds to or overrides them)."""

_BASE = Path("/usr/lib/postgresql")


class PostgresError(RuntimeError):
    """A server command failed or the server did not become ready (the log is in the message)."""


def find_bindir(major: int | None = None) -> Path | None:
    """The ``bin`` directory of the Debian PostgreSQL *major* version (the newest by default)
    that has ``initdb``, ``pg_ctl`` and ``postgres``; ``None`` when there is none."""
    candidates: list[tuple[int, Path]] = []
    if _BASE.is_dir():
        for entry in _BASE.iterdir():
            if entry.name.isdigit() and (major is None or int(entry.name) == major):
                bindir = entry / "bin"
                if all((bindir / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
                    candidates.append((int(entry.name), bindir))
    return max(candidates)[1] if candidates else None


def require_bindir(major: int | None = None) -> Path:
    """:func:`find_bindir`, or skip (fail when services are required) when it finds nothing."""
    found = find_bindir(major)
    if found is None:
        unavailable(f"no PostgreSQL server binaries under {_BASE}/<major>/bin")
        raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
    return found


def _major(bindir: Path) -> int:
    return int(bindir.parent.name)


def ensure_output_plugin(name: str, bindir: Path | None = None) -> Path | None:
    """The shared library of logical decoding output plugin *name* (``wal2json``) for the
    server in *bindir*, installing Debian's ``postgresql-<major>-<name>`` when missing.

    ``None`` when it is still missing (no root, no package mirror): callers then
    use :func:`~limelight_testsupport.unavailable`.
    """
    bindir = bindir or require_bindir()
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        pkglibdir = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    else:
        pkglibdir = str(bindir.parent / "lib")
    return ensure_debian_package_file(
        f"postgresql-{_major(bindir)}-{name}", Path(pkglibdir) / f"{name}.so"
    )


def _server_user() -> pwd.struct_passwd | None:
    """The OS user server commands run as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root and neither a postgres nor a nobody user exists")


def _quote(value: str) -> str:
    """A ``postgresql.conf`` string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _dsn_value(value: str) -> str:
    """A libpq connection-string value, quoted when it must be."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class PostgresServer:
    """One private PostgreSQL cluster: made by :meth:`start`, removed by :meth:`stop`.

    :param settings: ``postgresql.conf`` settings on top of :data:`DEFAULT_SETTINGS`.
    :param bindir: the server binaries; the newest Debian PostgreSQL by default.
    :param host: the loopback address it listens on.
    :param output_plugins: logical decoding output plugins (``wal2json``) added to
        ``output_plugin_libraries`` on servers that restrict which libraries may be
        output plugins (that setting lists ``pgoutput`` and ``test_decoding`` by
        default); a server without the setting allows any installed plugin.
    """

    user = "postgres"
    """The database superuser (trusted, no password)."""

    def __init__(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        bindir: Path | None = None,
        host: str = "127.0.0.1",
        output_plugins: Sequence[str] = (),
    ) -> None:
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.output_plugins = tuple(output_plugins)
        self.bindir = bindir or require_bindir()
        self.major = _major(self.bindir)
        self.host = host
        self.port = 0
        self.directory: Path | None = None
        self._os_user = _server_user()

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        if self.directory is None:
            raise PostgresError("the server is not started")
        return self.directory / "data"

    @property
    def logfile(self) -> Path:
        """The server log."""
        if self.directory is None:
            raise PostgresError("the server is not started")
        return self.directory / "server.log"

    def dsn(self, dbname: str = "postgres", **params: str) -> str:
        """A libpq connection string for *dbname* (extra *params* appended, ``key=value``)."""
        parts = {"host": self.host, "port": str(self.port), "user": self.user, "dbname": dbname}
        parts.update(params)
        return " ".join(f"{k}={_dsn_value(v)}" for k, v in parts.items())

    def _run(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        if self._os_user is not None:
            kwargs.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
            env["HOME"] = str(self.directory)
        result = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.directory,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"{Path(args[0]).name} exited with {result.returncode}: "
                f"{(result.stdout + result.stderr).strip()}"
            )
        return str(result.stdout)

    def start(self, timeout: float = 60) -> PostgresServer:
        """initdb, configure and start the cluster; wait until it accepts connections."""
        if self.directory is not None:
            return self
        self.directory = Path(tempfile.mkdtemp(prefix="limelight-pg-"))
        try:
            if self._os_user is not None:
                os.chown(self.directory, self._os_user.pw_uid, self._os_user.pw_gid)
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                timeout=timeout,
            )
            self.port = free_port(self.host)
            plugins = self._output_plugin_libraries()
            conf = {
                **plugins,
                **self.settings,
                "listen_addresses": self.host,
                "port": str(self.port),
                "unix_socket_directories": str(self.directory),
            }
            lines = "".join(f"{k} = {_quote(v)}\n" for k, v in conf.items())
            with (self.datadir / "postgresql.conf").open("a") as f:
                f.write("\n# limelight_testsupport.postgres\n" + lines)
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
                timeout=timeout + 10,
            )
            if not wait_for_port(self.host, self.port, timeout):
                raise PostgresError(f"not accepting connections on {self.host}:{self.port}")
        except BaseException as exc:
            log = self.log()
            self.stop()
            if isinstance(exc, PostgresError) and log:
                raise PostgresError(f"{exc}\n--- server log ---\n{log[-4000:]}") from exc
            raise
        return self

    def _output_plugin_libraries(self) -> dict[str, str]:
        """The ``output_plugin_libraries`` setting that admits :attr:`output_plugins`, if the
        server has that setting (and it is not in :attr:`settings` already)."""
        if not self.output_plugins or "output_plugin_libraries" in self.settings:
            return {}
        try:
            current = self._run(
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-C",
                "output_plugin_libraries",
            ).strip()
        except PostgresError:
            return {}  # no such setting: every installed output plugin may be used
        names = [n.strip() for n in current.split(",") if n.strip()]
        names += [n for n in self.output_plugins if n not in names]
        return {"output_plugin_libraries": ", ".join(names)}

    def log(self) -> str:
        """The server log so far ("" when there is none)."""
        try:
            return self.logfile.read_text(errors="replace")
        except (OSError, PostgresError):
            return ""

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run *sql* with ``psql`` (stops at the first error); its unaligned, tuples-only output."""
        return self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            dbname,
            input=sql,
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop the server (fast shutdown, immediate when that hangs) and delete the cluster."""
        directory = self.directory
        if directory is None:
            return
        try:
            if (self.datadir / "postmaster.pid").exists():
                try:
                    self._run(
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "stop",
                        timeout=timeout + 10,
                    )
                except (PostgresError, subprocess.TimeoutExpired):
                    self._run(
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "stop",
                    )
        finally:
            self.directory = None
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def postgres_server(
    settings: Mapping[str, str] | None = None,
    *,
    bindir: Path | None = None,
    output_plugins: Sequence[str] = (),
) -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped and deleted on exit.

    Skips the test (fails under ``LIMELIGHT_REQUIRE_SERVICES=1``) when no server
    binaries are installed; a server that fails to start raises
    :class:`PostgresError` with its log.
    """
    server = PostgresServer(settings, bindir=bindir, output_plugins=output_plugins)
    with server:
        yield server
