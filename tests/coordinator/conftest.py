"""Fixtures of the coordinator console tests.

A real meadow REST server (the meadowproxy tests' fixtures, their own session instance), the
Ultravisor coordinator stub of ``uv_coordinator.py`` and databeacon stubs forwarding
MeadowProxy requests to that server. The UV tables carry the extra columns Ultravisor's
bridges send (databeacon-live.md §5.2) and the coordinator stub sends rows that fit the
schema (``fit_schema``), so a healthy setup is possible; a test drops a column, or sends
1.3.24's shapes, to see the doctor notice.
"""

from __future__ import annotations

import runpy
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).resolve().parent
MEADOWPROXY_TESTS = HERE.parent / "meadowproxy"
EXTRA_COLUMNS = {
    "UVQueueWorkItem": ("RequireAffinityMatch", "CreatedAt"),
    "UVQueueWorkItemEvent": ("RunID",),
    "UVQueueWorkItemAttempt": ("DispatchedAt", "CompletedAt", "ErrorMessage", "DurationMs"),
}

# The meadowproxy tests' conftest, run again for this folder: its module loader, its
# closing factory and its real meadow REST server fixtures (a session instance of their own
# here). Running it loads meadow_harness and coordinator_stub, which uv_coordinator imports.
_meadowproxy = SimpleNamespace(**runpy.run_path(str(MEADOWPROXY_TESTS / "conftest.py"), run_name="meadowproxy_conftest_for_coordinator"))
harness = _meadowproxy.harness
uv = _meadowproxy.load_module("uv_coordinator", HERE)
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
    def build(**options):
        # The live databeacon is a WebSocket beacon: pushed work is never stranded by the 500 ms
        # scheduler tick (ultravisor-mesh.md §6.2). Its HTTP-polling stand-in handles one item at a
        # time, so a slow EnsureSchema would let the tick strand the other bridge's: slow the tick.
        # Like the added columns: rows the UV schema takes, so writes can land (1.3.24's shapes
        # cannot: a test sets fit_schema False to see that).
        return uv.UltravisorStub(**{"tick_ms": 60000, "fit_schema": True, **options})

    yield from _meadowproxy.closing_factory(build)


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
    yield from _meadowproxy.closing_factory(
        lambda name="uvdb", **options: uv.UVDataBeacon(coordinator.url, name, meadow, CONNECTION_NAME, **options)
    )


@pytest.fixture
def databeacon(make_databeacon):
    return make_databeacon()


@pytest.fixture
def uvctl(cli_runner):
    """``uvctl("coordinator", "beacons", "--json")`` → click Result (stdout and stderr apart)."""

    def run(*args, **kwargs):
        return cli_runner(list(args), **kwargs)

    return run
