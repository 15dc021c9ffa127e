"""Build and run the real meadow-endpoints REST server of tests/meadowproxy/meadow_server.

``node_modules`` is installed once per package-lock into
``${XDG_CACHE_HOME:-~/.cache}/uvctl-tests/meadow-<hash>`` (``npm ci``, under a file lock),
so CI and reruns stay fast; a failed install raises :class:`HarnessError` (never a skip).
:class:`MeadowServer` starts ``server.js`` on a loopback port over a SQLite file whose UV
tables come from uvctl's schema service, and can stop, kill -9 and restart it.
Used by tests/meadowproxy/conftest.py and benchmarks/bench_meadowproxy_flush.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER_DIR = HERE / "meadow_server"
UV_TABLES = ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest")


class HarnessError(RuntimeError):
    """The Node harness could not be installed or started."""


def cache_dir() -> Path:
    """Where this package-lock's node_modules live (outside the repository)."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SERVER_DIR / name).read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "uvctl-tests" / f"meadow-{digest.hexdigest()[:16]}"


def install() -> Path:
    """``node_modules`` for the harness, installed with ``npm ci`` on first use."""
    from filelock import FileLock

    target = cache_dir()
    marker = target / ".installed"
    if marker.exists():
        return target / "node_modules"
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.exists():
            return target / "node_modules"
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(SERVER_DIR / name, target / name)
        if shutil.which("npm") is None:
            raise HarnessError("npm is not installed; the meadowproxy tests need node 20 and npm")
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target, capture_output=True, text=True, timeout=900,
        )
        if proc.returncode != 0:
            raise HarnessError(f"npm ci failed in {target} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        check = subprocess.run(
            ["node", "-e", "new (require('better-sqlite3'))(':memory:')"],
            cwd=target, capture_output=True, text=True,
        )
        if check.returncode != 0:
            raise HarnessError(f"better-sqlite3 does not load after npm ci: {check.stderr}")
        marker.write_text("ok\n")
    return target / "node_modules"


def create_tables(db_file: Path) -> str:
    """Create the UV tables in ``db_file`` with uvctl's own ``ensure_schema``; how it was done."""
    try:
        from uvctl.schema import ensure_schema
    except ImportError:
        ensure_schema = None
    if ensure_schema is not None:
        ensure_schema(f"sqlite:///{db_file}")
        return "uvctl.schema.ensure_schema"
    # Temporary until the schema service lands: the descriptor's tables, SQLite types.
    from uvctl.schema import builtin_descriptor

    types = {"AutoIdentity": "INTEGER PRIMARY KEY AUTOINCREMENT", "String": "TEXT NOT NULL DEFAULT ''",
             "Integer": "INTEGER NOT NULL DEFAULT 0", "Float": "REAL", "Boolean": "INTEGER NOT NULL DEFAULT 0",
             "Deleted": "INTEGER NOT NULL DEFAULT 0", "CreateDate": "TEXT", "UpdateDate": "TEXT"}
    with sqlite3.connect(db_file) as conn:
        for table in builtin_descriptor()["Tables"]:
            cols = ", ".join(f'"{c["Column"]}" {types[c["Type"]]}' for c in table["Schema"])
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{table["Scope"]}" ({cols})')
            for index in table.get("Indexes", []):
                unique = "UNIQUE " if index.get("Unique") else ""
                columns = ", ".join(f'"{c}"' for c in index["Columns"])
                conn.execute(f'CREATE {unique}INDEX IF NOT EXISTS "{index["Name"]}" ON "{table["Scope"]}" ({columns})')
    return "descriptor DDL (fallback)"


def truncate(db_file: Path) -> None:
    """Empty the UV tables and restart their IDs."""
    with sqlite3.connect(db_file, timeout=30) as conn:
        for table in UV_TABLES:
            conn.execute(f'DELETE FROM "{table}"')
        conn.execute("DELETE FROM sqlite_sequence")


def rows(db_file: Path, table: str, where: str = "1=1") -> list[dict]:
    """The rows of ``table`` read straight from the SQLite file (soft-deleted ones too)."""
    with sqlite3.connect(db_file, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f'SELECT * FROM "{table}" WHERE {where} ORDER BY 1')]


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test process dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MeadowServer:
    """One ``node server.js`` process over ``db_file``, routes under ``/1.0/<route_hash>/``."""

    def __init__(self, node_modules: Path, db_file: Path, route_hash: str = "", port: int | None = None):
        self.node_modules = node_modules
        self.db_file = Path(db_file)
        self.route_hash = route_hash
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self._stderr: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "MeadowServer":
        """Start the server and wait until it listens; HarnessError with its stderr otherwise."""
        env = {**os.environ, "NODE_PATH": str(self.node_modules), "NODE_NO_WARNINGS": "1"}
        self.proc = subprocess.Popen(
            ["node", str(SERVER_DIR / "server.js"), "--db", str(self.db_file), "--port", str(self.port),
             "--route-hash", self.route_hash],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_die_with_parent,
        )
        self._stderr = []
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        ready = threading.Event()

        def watch(stream):
            for line in stream:
                if line.startswith("LISTENING"):
                    ready.set()

        threading.Thread(target=watch, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"meadow server did not start: {''.join(self._stderr)[-2000:]}")
        return self

    def _drain(self, stream):
        for line in stream:
            self._stderr.append(line)
            del self._stderr[:-200]

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 5 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> "MeadowServer":
        self.stop()
        return self.start()
