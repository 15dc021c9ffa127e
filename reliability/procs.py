"""Running uvctl as a separate process (as an operator would), and fresh test databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

PG_SERVER = os.environ.get("UVCTL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


def create_pg_database(server_url: str = PG_SERVER) -> str:
    """A fresh, empty PostgreSQL database on the machine's server; its URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"uvctl_r_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # name is generated above, never user text
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(target_url: str) -> None:
    """Drop a database made by :func:`create_pg_database` (its sessions are terminated first)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    target = make_url(target_url)
    name = target.database
    if not (name or "").startswith("uvctl_r_"):
        raise ValueError(f"refusing to drop {name!r}: not a reliability database")
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                                 "AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()
