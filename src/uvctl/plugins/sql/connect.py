"""The sql backend's database handle: URL checks, the engine, reflected UV tables, error kinds.

Imported only from hook bodies: it pulls in SQLAlchemy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ...errors import BackendUnavailable, UsageError, mask_url
from ...schema import UV_TABLES, builtin_descriptor

#: Connection timeout (seconds) for network databases: an unreachable server answers fast.
CONNECT_TIMEOUT = 5
#: How long a statement waits for a lock another session holds on a UV table (a LOCK TABLE, an
#: ALTER) before the batch fails and stays pending, instead of blocking a flush or a bridge
#: write without end (PostgreSQL waits for ever by default, MariaDB's metadata locks a year).
LOCK_WAIT_SECONDS = 10
_MYSQL_LOCK_WAIT = "SET SESSION lock_wait_timeout = {0}, SESSION innodb_lock_wait_timeout = {0}"  # table, row locks
_LOCK_WAIT = {"postgresql": "SET lock_timeout = '{0}s'", "mysql": _MYSQL_LOCK_WAIT, "mariadb": _MYSQL_LOCK_WAIT}

_MISSING_SCHEMA_MARKERS = (
    "no such table", "no such column", "has no column named", "does not exist", "doesn't exist",
    "unknown column", "undefinedtable", "undefinedcolumn", "invalid object name", "invalid column name",
    "could not reflect",
)


def check_url(url: str):
    """Parse ``url`` and load its dialect without connecting; a UsageError saying what is wrong."""
    shown = mask_url(url)
    if not url or not str(url).strip():
        raise UsageError("empty database URL; pass --db dialect+driver://user@host/database")
    from ...schema.connection import installed_hint, parse_url

    parsed = parse_url(url)  # the checks every command gives a URL (control characters, encoding, the journal, ...)
    try:
        parsed.get_dialect().import_dbapi()  # the driver itself: a missing one is bad input, not a bootstrap error
    except sa_exc.NoSuchModuleError:
        raise UsageError(
            f"unknown database dialect {parsed.drivername!r} in {shown!r}; use one SQLAlchemy knows "
            f"(sqlite, postgresql+psycopg, mysql+pymysql, mssql+pyodbc, ...)"
        ) from None
    except ImportError as exc:
        raise UsageError(f"the driver for {parsed.drivername!r} is not installed ({exc.name or exc}); install it with "
                         f"pip{installed_hint(parsed)}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise UsageError(f"SQLite URL {shown!r} names no file; use sqlite:////absolute/path/to/file.sqlite")
        if not database.startswith("file:") and not os.path.isabs(database):
            raise UsageError(
                f"SQLite URL {shown!r} has a relative path, which would change with the working directory; "
                f"use an absolute one: sqlite:///{os.path.abspath(database)}"
            )
    return parsed


def make_engine(url: str):
    """An engine for ``url`` with a short connect timeout and pre-ping (never connects here)."""
    from ...schema.connection import bound_handshake, connect_args

    parsed = check_url(url)
    engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args(parsed, CONNECT_TIMEOUT))
    bound_handshake(engine)
    setting = _LOCK_WAIT.get(engine.dialect.name, "").format(int(LOCK_WAIT_SECONDS))
    if setting:
        @sa.event.listens_for(engine, "connect")
        def _bounded_lock_wait(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute(setting)
            dbapi_connection.commit()

    return engine


def is_missing_schema(exc: BaseException) -> bool:
    """True when an error says a UV table or column is missing: the backend needs a bootstrap."""
    text = f"{type(getattr(exc, 'orig', exc)).__name__} {exc}".lower()
    return any(marker in text for marker in _MISSING_SCHEMA_MARKERS)


def is_disconnect(exc: BaseException) -> bool:
    """True when an error means the server went away mid-conversation."""
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def reason_of(exc: BaseException) -> str:
    """One masked line describing a database error (the DBAPI message, not SQLAlchemy's SQL dump)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(orig if orig is not None else exc).__name__}: {mask_url(first)}"


@dataclass
class Database:
    """What the sql backend keeps in ``backend.state``: the engine and the reflected UV tables."""

    url: str
    engine: object
    tables: dict | None = None
    columns: dict = field(default_factory=dict)

    def connect(self):
        """An open connection, or BackendUnavailable naming the (masked) URL."""
        try:
            return self.engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            raise BackendUnavailable(f"cannot reach database {mask_url(self.url)}: {reason_of(exc)}") from None

    def uv_tables(self, conn) -> dict:
        """``{Scope: Table}`` reflected from the database once per handle (after a bootstrap)."""
        if self.tables is None:
            metadata = sa.MetaData()
            metadata.reflect(bind=conn, only=list(UV_TABLES))
            self.tables = {name: metadata.tables[name] for name in UV_TABLES}
            for table in self.tables.values():
                for column in table.columns:
                    if isinstance(column.type, sa.Float):
                        column.type.asdecimal = False  # MySQL DOUBLE reflects as Decimal with 10 digits
        return self.tables

    def forget_tables(self) -> None:
        """Reflect again next time (the schema may just have changed)."""
        self.tables = None


def database(backend, url: str) -> Database:
    """The :class:`Database` cached in ``backend.state`` for ``url``."""
    db = backend.state.get("sql")
    if db is None or db.url != url:
        if db is not None:
            db.engine.dispose()
        db = Database(url=url, engine=make_engine(url))
        backend.state["sql"] = db
    return db


def close(backend) -> None:
    """Dispose the cached engine, if any."""
    db = backend.state.pop("sql", None)
    if db is not None:
        db.engine.dispose()


_DESCRIPTOR_CACHE: dict = {}


def descriptor_tables() -> dict:
    """``{Scope: table descriptor}`` of the built-in UV descriptor (column types and defaults)."""
    if not _DESCRIPTOR_CACHE:
        for table in builtin_descriptor()["Tables"]:
            _DESCRIPTOR_CACHE[table["Scope"]] = table
    return _DESCRIPTOR_CACHE
