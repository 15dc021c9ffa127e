"""Open a database URL for the schema service, turning every failure into one masked line."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import BackendUnavailable, UsageError, UvctlError, mask_secrets, mask_url
from .dialects import get_dialect

CONNECT_TIMEOUT = 10  # seconds; an unreachable server fails instead of hanging
_TIMEOUT_DRIVERS = ("psycopg", "psycopg2", "pymysql", "mysqldb", "mariadbconnector")  # drivers that take connect_timeout
SQLITE_BUSY_TIMEOUT = 30  # seconds to wait for another writer (a flush) to release the file

#: Python driver module → what to install for it.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "asyncpg": "asyncpg",
}


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (DBAPI errors are multi-line)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return mask_secrets(next(line.strip() for line in text.splitlines() if line.strip()))


def parse_url(url: str):
    """The SQLAlchemy URL object of ``url``; a malformed URL raises ``UsageError``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, str) and not url.isprintable():
        raise UsageError(f"database URL {mask_url(url)!r} contains control characters; retype it")
    if isinstance(url, str):
        _check_credentials(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise UsageError(
            f"invalid database URL {mask_url(url)!r}: expected dialect[+driver]://user:password@host/database "
            "or sqlite:///path/to/file.sqlite (URL-encode a password holding @ / ? # or spaces)"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # the old spelling many hosting services still hand out
        parsed = parsed.set(drivername="postgresql" + (f"+{driver}" if driver else ""))
    if parsed.get_backend_name() == "sqlite":
        from ..paths import NAME_TOO_LONG, name_too_long

        if parsed.database and name_too_long(parsed.database):
            raise UsageError(f"database URL {mask_url(url)!r}: {NAME_TOO_LONG}")
        _refuse_journal(parsed.database or "", url)
    return parsed


def _check_credentials(url: str) -> None:
    """A user or password holding ``@`` must be URL-encoded, or part of it is taken for the
    host (and shown where the host is named)."""
    scheme, sep, rest = url.strip().partition("://")
    if sep and rest.split("?", 1)[0].count("@") > 1:  # an '@' in the query string (application_name) is fine
        raise UsageError(
            f"the user or password in the {scheme} database URL holds '@', which must be URL-encoded as %40 (and "
            f"'/' as %2F, '?' as %3F, '#' as %23, a space as %20); for example: python3 -c \"import urllib.parse, "
            f"sys; print(urllib.parse.quote(sys.argv[1], safe=''))\" 'PASSWORD'"
        )


def _refuse_journal(database: str, url: str) -> None:
    """uvctl's own journal is no target: its tables share the UV names but not their columns."""
    from ..paths import DEFAULT_DB_FILE, JOURNAL_FILE, data_file

    if database.startswith("file:"):  # a URI filename: file:/path?mode=...
        database = database[len("file:"):].split("?", 1)[0]
    if not database or database == ":memory:":
        return
    try:
        same = Path(database).expanduser().resolve() == data_file(JOURNAL_FILE).resolve()
    except OSError:
        return
    if same:
        raise UsageError(f"{mask_url(url)} is uvctl's own journal, not a database to persist into; "
                         f"point --db at another file (the embedded default is sqlite:///{data_file(DEFAULT_DB_FILE)})")


def sqlite_file_missing(url: str) -> bool:
    """True when ``url`` names a SQLite file that does not exist yet (reads treat it as empty)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return bool(database) and database != ":memory:" and not database.startswith("file:") and not Path(database).exists()


def dialect_of(url: str):
    """The uvctl dialect of ``url``, without creating an engine."""
    return get_dialect(parse_url(url).get_backend_name())


def create_engine(url: str):
    """A SQLAlchemy engine for ``url`` and its uvctl dialect, without connecting yet."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    parsed = parse_url(url)
    masked = mask_url(url)
    dialect = get_dialect(parsed.get_backend_name())
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args(parsed, CONNECT_TIMEOUT))
    except NoSuchModuleError:
        raise UsageError(f"unknown database dialect or driver in URL {masked!r}") from None
    except ImportError as exc:
        module = (exc.name or str(exc)).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise UvctlError(
            f"the database driver {module!r} for {masked} is not installed: pip install {package!r}{installed_hint(parsed)}"
        ) from None
    except (ArgumentError, TypeError, ValueError) as exc:
        raise UsageError(f"invalid database URL {masked!r}: {first_line(exc)}") from None
    if dialect.name == "sqlite":
        _make_sqlite_ddl_transactional(engine)
    bound_handshake(engine)
    return engine, dialect


#: The driver uvctl installs (its postgres/mysql extras) per engine, for a URL that names another.
_INSTALLED_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgresql": "postgresql+psycopg"}


def installed_hint(parsed) -> str:
    """``; or use mysql+pymysql://...`` when the URL's default driver is missing but uvctl's is there."""
    name = _INSTALLED_DRIVERS.get(parsed.get_backend_name())
    if not name or parsed.drivername == name:
        return ""
    import importlib.util

    module = name.split("+")[1]
    return f", or use the installed driver: {name}://..." if importlib.util.find_spec(module) else ""


def connect_args(parsed, timeout: float) -> dict:
    """The driver arguments that keep a connection attempt from hanging: ``timeout`` seconds
    for a network server, SQLite's busy wait for a file another writer holds."""
    if parsed.get_backend_name() == "sqlite":
        return {"timeout": SQLITE_BUSY_TIMEOUT}
    driver = parsed.get_driver_name()
    if driver == "pymysql":  # its connect_timeout ends at the TCP connect: the handshake read has none
        return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    return {"connect_timeout": timeout} if driver in _TIMEOUT_DRIVERS else {}


def bound_handshake(engine) -> None:
    """PyMySQL: lift the read/write timeouts :func:`connect_args` set once the handshake is done,
    so a long statement (an index on a big table) is never cut. A server that accepts the TCP
    connection and never answers then fails within the timeout instead of hanging for ever."""
    if engine.dialect.driver != "pymysql":
        return
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _unbounded_after_handshake(dbapi_connection, _record):
        # PyMySQL re-applies these before each read and write (no public setter exists)
        dbapi_connection._read_timeout = None
        dbapi_connection._write_timeout = None


def _make_sqlite_ddl_transactional(engine) -> None:
    # Python's sqlite3 driver commits before DDL on its own; take over BEGIN so that a
    # whole ensure run is one transaction (SQLAlchemy's documented pysqlite recipe).
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")


@contextlib.contextmanager
def connected(url: str):
    """``(connection, dialect)`` for ``url``; connection failures raise one masked line."""
    import sqlalchemy as sa

    engine, dialect = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except (sa.exc.DBAPIError, sa.exc.SQLAlchemyError, OSError) as exc:
            raise BackendUnavailable(f"cannot connect to {mask_url(url)}: {first_line(exc)}") from None
        with connection:
            yield connection, dialect
    finally:
        engine.dispose()


def engine_label(connection) -> str:
    """The ``Engine`` of a report: the SQLAlchemy dialect name, ``mariadb`` on MariaDB."""
    sa_dialect = connection.dialect
    return "mariadb" if getattr(sa_dialect, "is_mariadb", False) else sa_dialect.name
