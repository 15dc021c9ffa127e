"""Coordinator stub → ``uvctl beacon run`` → journal → the sql backend on real engines.

Delivery runs in the background, never holding up an answer; a backend that is down only
grows the pending count and is caught up when it comes back; the backend's rows end equal
to the journal's (compared row for row with reliability.compare).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from beacon_coordinator import load_capture
from reliability.compare import compare_target
from reliability.faultproxy import FaultProxy

from uvctl.journal import Journal

CAPTURES = ("qp1", "qp1b", "qp1d")


def uvctl(*args, data_dir) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "uvctl", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "UVCTL_DATA_DIR": str(data_dir)})


def wait_for(condition, timeout: float, what: str):
    """Check ``condition`` until it holds (a bounded wait on an observable state, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def status(data_dir) -> dict:
    return json.loads(uvctl("beacon", "status", "--json", data_dir=data_dir).stdout)


def replay_all(stub):
    """The three WebSocket captures: the first attach, a reconnect after a dropped socket, and
    the replay after a coordinator restart."""
    for n, capture in enumerate(CAPTURES):
        if n == 1:
            stub.drop_all()
        elif n == 2:
            stub.restart()
        if n:
            stub.wait_registered(n + 1)
        entries = stub.replay(load_capture(capture))
        assert all(e.answer and e.answer[0] == "complete" for e in entries), [e.answer for e in entries if not e.answer]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_writes_reach_the_backend_in_the_background_and_end_equal(stub, beacon, data_dir, engine, request):
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgres": "pg_url"}[engine])
    assigned = uvctl("persistence", "assign", "--backend", "sql", "--db", url, data_dir=data_dir)
    assert assigned.returncode == 0, assigned.stderr
    process = beacon(stub.url)
    stub.wait_registered()
    replay_all(stub)
    # while it runs: the background delivery catches up with every answered write
    wait_for(lambda: status(data_dir)["Pending"] == {"Queue": 0, "Manifest": 0}, 60, "delivery of every write")
    running = status(data_dir)
    assert running["Running"] and running["Connected"]
    assert set(running["BeaconIDs"].values()) == {stub.registrations[-1]["BeaconID"]}
    assert process.stop() == 0
    stopped = status(data_dir)
    writes = sum(1 for e in stub.answers if not e.item["Action"].startswith(("QP_Get", "QP_List", "MS_Get", "MS_List")))
    assert not stopped["Running"] and stopped["WritesAnswered"] == writes and stopped["AnswersFailed"] == 0
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(url, journal)
        assert journal.stats()["State"]["WorkItems"] > 0
    assert result.equal, result.to_dict()


def test_a_backend_down_for_the_whole_stream_is_caught_up_when_it_returns(stub, beacon, data_dir, pg_url):
    from sqlalchemy.engine import make_url

    target = make_url(pg_url)
    with FaultProxy(target.port, mode="tcp", rate=1.0, kinds=("refuse",), lifetime=300) as proxy:
        through_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
        assigned = uvctl("persistence", "assign", "--backend", "sql", "--db", through_proxy, data_dir=data_dir)
        assert "waiting-for-beacon" in assigned.stdout  # cannot bootstrap now: writes will stay pending
        process = beacon(stub.url)
        stub.wait_registered()
        started = time.monotonic()
        replay_all(stub)
        answered_in = time.monotonic() - started
        down = status(data_dir)
        assert down["Pending"]["Queue"] > 100 and down["AnswersFailed"] == 0
        assert answered_in < 30  # never held up by the backend (each answer is checked in time by the stub)
        proxy.set_rate(0.0)  # the backend is back
        wait_for(lambda: status(data_dir)["Pending"] == {"Queue": 0, "Manifest": 0}, 90, "catching up")
        assert process.stop() == 0
    assert "delivery:" in process.log and "reachable again" in process.log
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(pg_url, journal)
    assert result.equal, result.to_dict()


def test_without_a_backend_writes_stay_in_the_journal_and_a_flush_sends_them_later(stub, beacon, data_dir, sqlite_url):
    process = beacon(stub.url)
    stub.wait_registered()
    replay_all(stub)
    assert process.stop() == 0
    assert "no backend is assigned" in process.log
    pending = status(data_dir)["Pending"]
    assert pending["Queue"] > 100 and pending["Manifest"] > 0
    assert uvctl("persistence", "assign", "--backend", "sql", "--db", sqlite_url, data_dir=data_dir).returncode == 0
    flushed = uvctl("flush", data_dir=data_dir)
    assert flushed.returncode == 0, flushed.stderr
    with Journal.open(data_dir / "journal.sqlite") as journal:
        assert compare_target(sqlite_url, journal).equal


def test_acknowledged_log_rows_are_pruned_and_the_state_stays(stub, beacon, data_dir, sqlite_url, tmp_path):
    assert uvctl("persistence", "assign", "--backend", "sql", "--db", sqlite_url, data_dir=data_dir).returncode == 0
    process = beacon(stub.url, "--keep-log", "5")
    stub.wait_registered()
    replay_all(stub)
    assert process.stop() == 0  # the last delivery, then retention
    with Journal.open(data_dir / "journal.sqlite") as journal:
        stats = journal.stats()
        assert stats["Log"]["Queue"]["LastSeq"] > 100
        assert stats["Log"]["Queue"]["Records"] <= 5 and stats["Log"]["Manifest"]["Records"] <= 5
        assert compare_target(sqlite_url, journal).equal  # pruning took nothing the backend lacks
    assert "retention: pruned" in process.log
    # a backend assigned after the prune is filled from the current state
    later = f"sqlite:///{tmp_path / 'later.sqlite'}"
    assert uvctl("persistence", "assign", "--backend", "sql", "--db", later, data_dir=data_dir).returncode == 0
    flushed = uvctl("flush", data_dir=data_dir)
    assert flushed.returncode == 0, flushed.stderr
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(later, journal)
    assert result.equal, result.to_dict()


def test_without_a_backend_the_log_is_bounded_and_a_later_backend_still_gets_everything(stub, beacon, data_dir,
                                                                                        sqlite_url):
    process = beacon(stub.url, "--keep-log", "10")
    stub.wait_registered()
    replay_all(stub)
    assert process.stop() == 0
    with Journal.open(data_dir / "journal.sqlite") as journal:
        log = journal.stats()["Log"]
    assert log["Queue"]["Records"] == 10 and log["Queue"]["LastSeq"] > 100
    assert uvctl("persistence", "assign", "--backend", "sql", "--db", sqlite_url, data_dir=data_dir).returncode == 0
    assert uvctl("flush", data_dir=data_dir).returncode == 0
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(sqlite_url, journal)
    assert result.equal, result.to_dict()


def test_a_uvctl_flush_run_by_hand_meanwhile_is_safe(stub, beacon, data_dir, sqlite_url):
    import threading

    assert uvctl("persistence", "assign", "--backend", "sql", "--db", sqlite_url, data_dir=data_dir).returncode == 0
    process = beacon(stub.url)
    stub.wait_registered()
    flushes, done = [], threading.Event()

    def flush_by_hand():
        while not done.is_set():
            flushes.append(uvctl("flush", data_dir=data_dir))

    hand = threading.Thread(target=flush_by_hand)
    hand.start()
    try:
        replay_all(stub)
    finally:
        done.set()
        hand.join(120)
    assert process.stop() == 0
    assert flushes and all(f.returncode in (0, 1) and "Traceback" not in f.stderr for f in flushes)
    # a flush that met the beacon's delivery says so in one line (exit 1); none sent a record twice or out of order
    assert all("another flush" in f.stderr for f in flushes if f.returncode == 1)
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(sqlite_url, journal)
    assert result.equal, result.to_dict()
