"""Shared fixtures: an isolated data dir per test and a fresh real database per test.

PostgreSQL and MariaDB are the machine's real servers. Each test that asks for
``pg_url`` / ``mysql_url`` gets its own freshly created database, dropped afterwards,
so tests (and developers running suites side by side) never see each other's tables.
Override the servers with UVCTL_TEST_PG_URL / UVCTL_TEST_MYSQL_URL (server URLs
whose database part is ignored).
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_SERVER = os.environ.get("UVCTL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_SERVER = os.environ.get("UVCTL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Every test gets its own UVCTL_DATA_DIR and no inherited uvctl settings."""
    path = tmp_path / "uvctl-data"
    monkeypatch.setenv("UVCTL_DATA_DIR", str(path))
    for name in ("UVCTL_DB_URL", "UVCTL_LOAD_PLUGINS", "UVCTL_COORDINATOR"):
        monkeypatch.delenv(name, raising=False)
    return path


def _fresh_database(server_url: str, kind: str):
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"uvctl_t_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # the server is part of the machine: its absence is a failure
        admin.dispose()
        pytest.fail(f"{kind} server at {url.render_as_string(hide_password=True)} is not usable: {exc}")
    target = url.set(database=name).render_as_string(hide_password=False)
    try:
        yield target
    finally:
        with admin.connect() as conn:
            if kind == "postgres":
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def pg_url():
    """A SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    yield from _fresh_database(PG_SERVER, "postgres")


@pytest.fixture
def mysql_url():
    """A SQLAlchemy URL of a fresh, empty MariaDB/MySQL database."""
    yield from _fresh_database(MYSQL_SERVER, "mysql")


@pytest.fixture
def sqlite_url(tmp_path):
    """A SQLAlchemy URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'target.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def db_url(request):
    """Each real engine in turn: SQLite, PostgreSQL, MariaDB."""
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[request.param])


@pytest.fixture
def cli_runner():
    """Run ``uvctl`` in-process: ``cli_runner(["schema", "plan"])`` → click Result."""
    from click.testing import CliRunner

    from uvctl.cli import cli

    runner = CliRunner()

    def run(args, **kwargs):
        return runner.invoke(cli, args, catch_exceptions=False, **kwargs)

    return run
