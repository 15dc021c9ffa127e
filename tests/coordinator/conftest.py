"""Fixtures of the coordinator console tests.

A real meadow REST server (the meadowproxy tests' fixtures, their own session instance), the
Ultravisor coordinator stub of ``uv_coordinator.py`` and databeacon stubs forwarding
MeadowProxy requests to that server. The UV tables carry the extra columns Ultravisor's
bridges send (databeacon-live.md §5.2), so a healthy setup is possible; a test drops one to
see the doctor notice.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MEADOWPROXY_TESTS = HERE.parent / "meadowproxy"
EXTRA_COLUMNS = {
    "UVQueueWorkItem": ("RequireAffinityMatch", "CreatedAt"),
    "UVQueueWorkItemEvent": ("RunID",),
    "UVQueueWorkItemAttempt": ("DispatchedAt", "CompletedAt", "ErrorMessage", "DurationMs"),
}


def _load(name: str, folder: Path, file: str | None = None):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / f"{file or name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("meadow_harness", MEADOWPROXY_TESTS)
_load("coordinator_stub", MEADOWPROXY_TESTS)
uv = _load("uv_coordinator", HERE)
# The meadowproxy tests' real meadow REST server fixtures, reused (their own session instance here).
_meadowproxy = _load("meadowproxy_conftest_for_coordinator", MEADOWPROXY_TESTS, "conftest")
node_modules, meadow_server, meadow = _meadowproxy.node_modules, _meadowproxy.meadow_server, _meadowproxy.meadow
CONNECTION_NAME = _meadowproxy.ROUTE_NAME


def add_columns(db_file, columns: dict) -> None:
    """``ALTER TABLE ... ADD COLUMN`` (text) for each column a table lacks."""
    with sqlite3.connect(db_file, timeout=30) as conn:
        for table, names in columns.items():
            present = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            for name in names:
                if name not in present:
                    conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" TEXT NOT NULL DEFAULT \'\'')


@pytest.fixture
def make_uv():
    """``make_uv(**options)``: Ultravisor coordinator stubs (``secured=True, users={...}``), closed afterwards."""
    made = []

    def make(**options):
        # The live databeacon is a WebSocket beacon: pushed work is never stranded by the 500 ms
        # scheduler tick (ultravisor-mesh.md §6.2). Its HTTP-polling stand-in handles one item at a
        # time, so a slow EnsureSchema would let the tick strand the other bridge's: slow the tick.
        options.setdefault("tick_ms", 60000)
        made.append(uv.UltravisorStub(**options))
        return made[-1]

    yield make
    for stub in made:
        stub.close()


@pytest.fixture
def coordinator(make_uv, monkeypatch):
    """A promiscuous coordinator stub, also in $UVCTL_COORDINATOR."""
    stub = make_uv()
    monkeypatch.setenv("UVCTL_COORDINATOR", stub.url)
    return stub


@pytest.fixture
def make_databeacon(coordinator, meadow):
    """``make_databeacon(name="uvdb", **options)``: databeacon stubs (connection 1 = the meadow server)."""
    add_columns(meadow.db_file, EXTRA_COLUMNS)
    made = []

    def make(name="uvdb", **options):
        made.append(uv.UVDataBeacon(coordinator.url, name, meadow, CONNECTION_NAME, **options))
        return made[-1]

    yield make
    for beacon in made:
        beacon.close()


@pytest.fixture
def databeacon(make_databeacon):
    return make_databeacon()


@pytest.fixture
def uvctl(cli_runner):
    """``uvctl("coordinator", "beacons", "--json")`` → click Result (stdout and stderr apart)."""

    def run(*args, **kwargs):
        return cli_runner(list(args), **kwargs)

    return run
