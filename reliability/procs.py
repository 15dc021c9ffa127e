"""Running uvctl as a separate process (as an operator would), and fresh test databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

#: The machine's database servers the trials make fresh databases on (their database part is ignored).
SERVERS = {
    "postgres": os.environ.get("UVCTL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("UVCTL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
_PREFIX = "uvctl_r_"


def env_for(data_dir, **extra) -> dict:
    """The environment of a uvctl process working on ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("UVCTL_DB_URL", "UVCTL_LOAD_PLUGINS", "UVCTL_COORDINATOR")}
    env["UVCTL_DATA_DIR"] = str(data_dir)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def uvctl_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "uvctl", *map(str, args)]


def start(data_dir, *args, **extra) -> subprocess.Popen:
    """``uvctl ARGS`` in the background (stdout discarded, stderr kept)."""
    return subprocess.Popen(uvctl_cmd(*args), env=env_for(data_dir, **extra), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def run(data_dir, *args, timeout: float = 300, **extra) -> subprocess.CompletedProcess:
    """``uvctl ARGS`` to completion; stdout and stderr captured."""
    return subprocess.run(uvctl_cmd(*args), env=env_for(data_dir, **extra), capture_output=True, text=True,
                          timeout=timeout)


def create_database(kind: str = "postgres") -> str:
    """A fresh, empty database on the machine's PostgreSQL (``postgres``) or MariaDB/MySQL
    (``mysql``) server; its URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"{_PREFIX}{uuid.uuid4().hex[:12]}"  # generated here, never user text
    url = make_url(SERVERS[kind])
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(target_url: str) -> None:
    """Drop a database made by :func:`create_database` (on PostgreSQL its sessions are terminated first)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    target = make_url(target_url)
    name = target.database
    if not (name or "").startswith(_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a reliability database")
    postgres = target.get_backend_name() == "postgresql"
    engine = sa.create_engine(target.set(database="postgres") if postgres else target, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if postgres:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                                     "AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    finally:
        engine.dispose()
