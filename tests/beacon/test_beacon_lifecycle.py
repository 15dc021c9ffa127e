"""The beacon's life: start, stop on SIGTERM, kill -9, coordinator restarts, logins, bad input."""

from __future__ import annotations

import copy
import json
import signal

from beacon_coordinator import CoordinatorStub, captured_items, load_capture
from test_beacon_delivery import status, uvctl, wait_for

from uvctl.journal import Journal

WRITE_ACTIONS = ("QP_UpsertWorkItem", "QP_AppendEvent", "QP_UpdateWorkItem", "MS_UpsertManifest")


def burst(count: int, tag: str = "b") -> list[dict]:
    """``count`` captured write items (upserts and events of qp1), each made a work item of its own."""
    templates = [i for i in captured_items(load_capture("qp1")) if i["Action"] in ("QP_UpsertWorkItem", "QP_AppendEvent")]
    out = []
    for n in range(count):
        item = copy.deepcopy(templates[n % len(templates)])
        item["WorkItemHash"] = f"wi-unknown-unknown-{tag}-{n}"
        record = item["Settings"].get("WorkItem") or item["Settings"]["Event"]
        record["WorkItemHash"] = f"wi-{tag}-{n}"
        record.pop("IDBeaconWorkItemEvent", None)
        out.append(item)
    return out


def journaled(data_dir, entries) -> list:
    """The answered writes whose JournalSeq the journal does not hold (should be none)."""
    missing = []
    with Journal.open(data_dir / "journal.sqlite") as journal:
        for entry in entries:
            outputs = entry.answer[1] if entry.answer and entry.answer[0] == "complete" else None
            if outputs and outputs.get("JournalSeq"):
                seq, bridge = outputs["JournalSeq"], "Manifest" if entry.item["Action"].startswith("MS_") else "Queue"
                found = journal.read(bridge, seq - 1, 1)
                if not found or found[0].seq != seq:
                    missing.append(entry.item["Action"])
    return missing


def test_sigterm_answers_what_is_in_flight_deregisters_and_exits_0(stub, beacon, data_dir):
    process = beacon(stub.url, "--max-concurrent", "8")
    stub.wait_registered()
    entries = [stub.send(item) for item in burst(200)]
    process.process.send_signal(signal.SIGTERM)
    assert process.stop() == 0
    stub.wait_deregistered()
    for entry in entries:
        entry.done.wait(10)
    assert not [e for e in entries if e.timed_out], "a write pushed before the stop was left unanswered"
    assert all(e.answer[0] == "complete" for e in entries)
    assert not journaled(data_dir, entries)
    assert "stopping" in process.log and "deregistered" in process.log
    final = status(data_dir)
    assert final["Running"] is False and final["Connected"] is False and final["WritesAnswered"] == 200


def test_kill_9_mid_stream_loses_no_answered_write_and_the_next_connect_replays(beacon, data_dir, sqlite_url):
    from reliability.compare import compare_target

    assert uvctl("persistence", "assign", "--backend", "sql", "--db", sqlite_url, data_dir=data_dir).returncode == 0
    stub = CoordinatorStub(timeout_ms=2000)
    try:
        process = beacon(stub.url)
        stub.wait_registered()
        entries = [stub.send(item) for item in burst(600, "k")]
        with stub.lock:
            stub.lock.wait_for(lambda: sum(e.answer is not None for e in entries) >= 60, 30)
        process.kill()
        for entry in entries:
            entry.done.wait(10)
        answered = [e for e in entries if e.answer is not None]
        lost = [e for e in entries if e.answer is None]
        assert 60 <= len(answered) < 600 and lost  # the kill came mid-stream
        assert not journaled(data_dir, answered), "an answered write is not in the journal"
        # the coordinator falls back to its local store and replays it on the next connect
        again = beacon(stub.url)
        stub.wait_registered(2)
        replayed = stub.replay(load_capture("qp1b"))
        assert all(e.answer and e.answer[0] == "complete" for e in replayed)
        assert again.stop() == 0
    finally:
        stub.close()
    with Journal.open(data_dir / "journal.sqlite") as journal:  # backend and journal end exact
        result = compare_target(sqlite_url, journal)
    assert result.equal, result.to_dict()


def test_coordinator_down_at_start_is_retried_until_it_comes(beacon, data_dir):
    stub = CoordinatorStub()
    stub.refuse = True
    try:
        process = beacon(stub.url)
        wait_for(lambda: "retrying in" in process.log, 30, "a retry line")
        stub.refuse = False
        stub.wait_registered()
        assert process.stop() == 0
    finally:
        stub.close()


def test_an_active_meadowproxy_assignment_is_said_in_one_line(stub, beacon):
    stub.persistence["Queue"].update(State="bootstrapped", AssignedBeaconID="bcn-db1-1")
    process = beacon(stub.url)
    stub.wait_registered()
    assert process.stop() == 0
    lines = [line for line in process.log.splitlines() if "own persistence assignment" in line]
    assert len(lines) == 1 and "uvctl coordinator persistence clear" in lines[0] and "Queue bootstrapped" in lines[0]


def test_a_secured_coordinator_is_logged_into_and_the_session_rides_on_the_upgrade(beacon, data_dir):
    stub = CoordinatorStub(secured=True)
    try:
        process = beacon(stub.url, "--user", "ops", env={"UVCTL_COORDINATOR_PASSWORD": "s3cret-pw"})
        stub.wait_registered()
        entry = stub.send(burst(1, "s")[0])
        assert entry.done.wait(10) and entry.answer[0] == "complete"
        assert process.stop() == 0
        assert "s3cret-pw" not in process.log
        assert "s3cret-pw" not in (data_dir / "beacon-state.json").read_text()
    finally:
        stub.close()


def test_a_secured_coordinator_without_credentials_is_one_line_and_exit_1(beacon):
    stub = CoordinatorStub(secured=True)
    try:
        process = beacon(stub.url)
        code = process.process.wait(60)
        lines = [line for line in process.log.splitlines() if line.startswith("uvctl: error:")]
        assert code == 1 and len(lines) == 1 and "UVCTL_COORDINATOR" in lines[0]
        assert "Traceback" not in process.log
    finally:
        stub.close()


def test_bad_input_is_one_line_and_exit_2(data_dir):
    missing = uvctl("beacon", "run", data_dir=data_dir)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--coordinator" in missing.stderr
    scheme = uvctl("beacon", "run", "--coordinator", "ftp://127.0.0.1:1", data_dir=data_dir)
    assert scheme.returncode == 2 and scheme.stderr.startswith("uvctl: error:") and "Traceback" not in scheme.stderr
    assert uvctl("beacon", "run", "--max-concurrent", "0", "--coordinator", "http://x", data_dir=data_dir).returncode == 2


def test_status_before_any_beacon_says_so_and_creates_nothing(data_dir):
    out = uvctl("beacon", "status", "--json", data_dir=data_dir)
    assert out.returncode == 0 and json.loads(out.stdout)["Known"] is False
    assert not (data_dir / "journal.sqlite").exists()


def test_refused_frames_are_answered_with_a_work_error(stub, beacon):
    process = beacon(stub.url)
    stub.wait_registered()
    wrong = burst(1, "w")[0]
    wrong["Capability"] = "ManifestStore"  # a QP_ action under the other capability
    unknown = {**burst(1, "u")[0], "Action": "QP_DropEverything"}
    bad = burst(1, "x")[0]
    bad["Settings"]["WorkItem"] = "not an object"
    entries = [stub.send(item) for item in (wrong, unknown, bad)]
    for entry in entries:
        assert entry.done.wait(10)
    assert [e.answer[0] for e in entries] == ["error"] * 3
    assert "QueuePersistence" in entries[0].answer[1] and "QP_DropEverything" in entries[1].answer[1]
    assert "\n" not in "".join(e.answer[1] for e in entries)
    assert process.stop() == 0


def test_persistence_status_says_the_beacon_state_in_one_line(stub, beacon, data_dir):
    process = beacon(stub.url)
    registered = stub.wait_registered()[0]
    wait_for(lambda: status(data_dir).get("Connected"), 30, "the state file saying connected")
    running = uvctl("persistence", "status", data_dir=data_dir)
    assert running.returncode == 0
    line = [line for line in running.stdout.splitlines() if line.startswith("beacon:")]
    assert line == [line[0]] and "connected" in line[0] and registered["BeaconID"] in line[0]
    assert process.stop() == 0
    stopped = uvctl("persistence", "status", data_dir=data_dir).stdout
    assert "beacon: not running" in stopped
