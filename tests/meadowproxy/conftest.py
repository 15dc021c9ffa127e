"""Fixtures of the meadowproxy tests: a real meadow REST server (session-scoped), emptied per test.

The server is built from npm packages by ``meadow_harness.py``; an install failure fails
the tests loudly. Backend handles come from the plugin host exactly as uvctl opens them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROUTE_NAME = "UV Test Persistence"  # a databeacon connection name; its route hash is derived


def load_module(name: str, folder: Path = HERE, file: str | None = None):
    """The test helper ``folder/<file or name>.py`` imported once as ``name`` (tests/coordinator reuses it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / f"{file or name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = load_module("meadow_harness")


@pytest.fixture(scope="session")
def node_modules():
    """The harness's node_modules (npm ci on first use; a failure fails, never skips)."""
    try:
        return harness.install()
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def meadow_server(node_modules, tmp_path_factory):
    """One meadow server for the session, tables under the route hash of ROUTE_NAME."""
    from uvctl_meadowproxy.routes import sanitize_connection_name

    db_file = tmp_path_factory.mktemp("meadow") / "meadow.sqlite"
    harness.create_tables(db_file)
    server = harness.MeadowServer(node_modules, db_file, sanitize_connection_name(ROUTE_NAME))
    try:
        server.start()
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def meadow(meadow_server):
    """The session server with empty tables (restarted first if a test stopped it)."""
    if meadow_server.proc is None or meadow_server.proc.poll() is not None:
        meadow_server.start()
    harness.truncate(meadow_server.db_file)
    return meadow_server


@pytest.fixture
def direct_backend(meadow):
    """A bootstrapped ``meadowproxy`` direct backend on the test server; closed afterwards."""
    from uvctl import host

    backend = host.open_backend(
        "meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash}
    )
    result = host.bootstrap(backend)
    assert result.state == "bootstrapped", result.reason
    yield backend
    host.close(backend)


@pytest.fixture
def db_rows(meadow):
    """``db_rows(table, where)``: rows straight from the server's SQLite file."""
    return lambda table, where="1=1": harness.rows(meadow.db_file, table, where)


stubs = load_module("coordinator_stub")


@pytest.fixture
def coordinator():
    """A protocol-faithful coordinator stub (promiscuous), closed afterwards."""
    stub = stubs.CoordinatorStub()
    yield stub
    stub.close()


def closing_factory(build):
    """A ``make(...)`` that builds stubs, and the generator that closes them all afterwards."""
    made = []

    def make(*args, **options):
        made.append(build(*args, **options))
        return made[-1]

    yield make
    for stub in reversed(made):
        stub.close()


@pytest.fixture
def make_databeacon(coordinator, meadow):
    """``make_databeacon(name="db1", **options)``: databeacon stubs polling ``coordinator``,
    connection 1 = the meadow server; all closed afterwards."""
    yield from closing_factory(
        lambda name="db1", **options: stubs.DataBeaconStub(coordinator.url, name, meadow, ROUTE_NAME, **options)
    )


@pytest.fixture
def databeacon(make_databeacon):
    """The databeacon stub ``db1`` with the databeacon's default allowlist."""
    return make_databeacon()


@pytest.fixture
def make_coordinator():
    """``make_coordinator(**options)``: more coordinator stubs (e.g. secured), closed afterwards."""
    yield from closing_factory(stubs.CoordinatorStub)


@pytest.fixture
def mesh_options(coordinator):
    return {"Transport": "mesh", "Url": coordinator.url, "Beacon": "db1", "IDBeaconConnection": "1"}
