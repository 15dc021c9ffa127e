"""End to end: coordinator stub → ``uvctl beacon run`` → journal → meadowproxy → the real meadow REST server.

The stub replays the captured frames of the real coordinator (tests/beacon/beacon_coordinator.py);
the meadow server is the real npm one of the other meadowproxy tests. The server's rows are
compared with the journal's, row for row.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from uvctl.journal import Journal

pytestmark = pytest.mark.node

BEACON_TESTS = Path(__file__).resolve().parent.parent / "beacon"


def load_module(name: str, folder: Path, file: str | None = None):
    """``folder/<file or name>.py`` imported once as ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder / f"{file or name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


stub_module = load_module("beacon_coordinator", BEACON_TESTS)
beacon_fixtures = load_module("beacon_conftest", BEACON_TESTS, "conftest")
traffic = load_module("uvctl_flush_traffic", BEACON_TESTS.parent / "flush", "conftest")


def test_captured_traffic_reaches_the_meadow_server_through_the_beacon(meadow, data_dir):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    assign = subprocess.run([sys.executable, "-m", "uvctl", "persistence", "assign", "--backend", "meadowproxy",
                             "--transport", "direct", "--url", meadow.url, "--route-hash", meadow.route_hash],
                            capture_output=True, text=True, env=env, timeout=120)
    assert assign.returncode == 0, assign.stderr
    stub = stub_module.CoordinatorStub()
    process = beacon_fixtures.BeaconProcess(data_dir, stub.url)
    try:
        stub.wait_registered()
        for n, capture in enumerate(("qp1", "qp1b", "qp1d")):
            if n:
                stub.drop_all()
                stub.wait_registered(n + 1)
            entries = stub.replay(stub_module.load_capture(capture))
            assert all(e.answer and e.answer[0] == "complete" for e in entries)
        assert process.stop() == 0  # the last delivery runs before it exits
    finally:
        if process.process.poll() is None:
            process.kill()
        stub.close()
    with Journal.open(data_dir / "journal.sqlite") as journal:
        assert journal.stats()["State"]["WorkItems"] > 10
        traffic.assert_database_equals_journal(f"sqlite:///{meadow.db_file}", journal)
