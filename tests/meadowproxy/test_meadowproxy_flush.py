"""End to end: uvctl flush through the meadowproxy backend (direct) into the real meadow server.

A 10k-record journal of realistic traffic (tests/flush's generator), flushed by the real
``uvctl flush`` command in a subprocess: killed with ``kill -9`` mid-run and resumed, or
with the meadow server stopped mid-run and restarted. Either way the server's SQLite file
ends equal to the journal, row by row and column by column.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uvctl import assignment

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)

_spec = importlib.util.spec_from_file_location(
    "uvctl_flush_traffic", Path(__file__).resolve().parent.parent / "flush" / "conftest.py"
)
traffic_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(traffic_mod)

ITEMS, MANIFESTS = 1100, 60  # 9 or so records per work item: about 10,000 records


@pytest.fixture
def journal(data_dir):
    from uvctl.journal import Journal

    with Journal.open() as j:
        traffic_mod.record(j, traffic_mod.traffic(ITEMS, manifests=MANIFESTS, seed=4))
        yield j


@pytest.fixture
def assigned(meadow, journal):
    options = {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash}
    assignment.assign("meadowproxy", options)
    handle = assignment.backend_for("Queue", bootstrap=True)
    assert handle is not None, assignment.load()["Queue"]
    return handle


def _mark(data_dir, identity) -> int:
    try:
        return json.loads((data_dir / "persistence-bridge-hwm.json").read_text())["Queue"].get(identity, 0)
    except (OSError, ValueError, KeyError):
        return 0


def _flush(data_dir, batch_size: int):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "uvctl", "flush", "--batch-size", str(batch_size)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_progress(proc, data_dir, identity) -> int:
    deadline = time.monotonic() + 120
    while _mark(data_dir, identity) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return _mark(data_dir, identity)


def _assert_equal(meadow, journal):
    assert journal.last_seq("Queue") > 9000
    traffic_mod.assert_database_equals_journal(f"sqlite:///{meadow.db_file}", journal)


@pytest.mark.slow
def test_10k_flush_killed_with_sigkill_resumes_and_ends_equal_to_the_journal(meadow, journal, assigned, data_dir):
    proc = _flush(data_dir, 100)
    _wait_for_progress(proc, data_dir, assigned.identity)
    time.sleep(0.2)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = _mark(data_dir, assigned.identity)
    assert running and 0 < stopped_at < journal.last_seq("Queue"), (running, stopped_at)

    rerun = _flush(data_dir, 500)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert _mark(data_dir, assigned.identity) == journal.last_seq("Queue")
    _assert_equal(meadow, journal)


@pytest.mark.slow
def test_server_stopped_mid_flush_then_restarted(meadow, journal, assigned, data_dir):
    proc = _flush(data_dir, 100)
    _wait_for_progress(proc, data_dir, assigned.identity)
    meadow.stop()
    out, err = proc.communicate(timeout=120)
    stopped_at = _mark(data_dir, assigned.identity)
    assert proc.returncode != 0 and "uvctl: error:" in err and "Traceback" not in err, err
    assert 0 < stopped_at < journal.last_seq("Queue")

    meadow.start()
    rerun = _flush(data_dir, 500)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    _assert_equal(meadow, journal)


def test_a_meadow_server_assigned_after_a_prune_gets_the_current_state(meadow, data_dir, tmp_path):
    from uvctl.flush import flush
    from uvctl.journal import Journal
    from uvctl.journal.retention import prune_acknowledged

    with Journal.open() as journal:
        traffic_mod.record(journal, traffic_mod.traffic(40, manifests=9, seed=8))
        assignment.assign("sql", {"Db": f"sqlite:///{tmp_path / 'first.sqlite'}"})
        assert assignment.backend_for("Queue", bootstrap=True) is not None and flush(journal=journal).ok
        prune_acknowledged(journal)
        assignment.assign("meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash})
        assert assignment.backend_for("Queue", bootstrap=True) is not None

        report = flush(journal=journal, batch_size=50)

        assert report.ok, report.error
        assert all(b.Snapshot > 0 for b in report.Bridges), report.to_dict()
        traffic_mod.assert_database_equals_journal(f"sqlite:///{meadow.db_file}", journal)
