"""`uvctl journal import --coordinator URL`: a coordinator's history over its read routes."""

import json
import sqlite3
import uuid

import pytest

from uvctl.journal import Journal
from uvctl.journal.coordinator_import import IMPORT_NAMESPACE
from uvctl.mesh import persistence

REPORT_KEYS = {"Source", "Kind", "Read", "HistoryRequests", "Notes", "Journaled", "Skipped", "Outcomes", "FirstSeq",
               "LastSeq"}


def work_item(n: int, status="Complete") -> dict:
    """A row of the coordinator's local store (BeaconWorkItem), as its history route returns it."""
    settings = {"Command": f"echo {n}", "QueueMetadata": {"WorkItemHash": f"wi-unknown-unknown-17957300000{n:02d}-{n}"}}
    return {"IDBeaconWorkItem": n, "GUIDBeaconWorkItem": str(uuid.uuid4()), "CreateDate": None, "Deleted": 0,
            "WorkItemHash": f"wi-unknown-unknown-{1795730000000 + n}-{n}", "RunID": "", "RunHash": "", "NodeHash": "",
            "OperationHash": "", "Capability": "Shell", "Action": "Execute", "Settings": json.dumps(settings),
            "AffinityKey": "shell1", "Priority": 0, "Status": status, "AssignedBeaconID": "bcn-shell1-1",
            "TimeoutMs": 300000, "MaxAttempts": 1, "AttemptNumber": 1, "RetryBackoffMs": 5000,
            "EnqueuedAt": f"2026-11-26T22:{n // 60 % 60:02d}:{n % 60:02d}.000Z", "DispatchedAt": "", "CompletedAt": "",
            "CancelRequested": 0, "LastError": "", "Health": "", "Result": "{}"}


def event(row_id: int, work_hash: str, kind: str, to_status: str) -> dict:
    return {"IDBeaconWorkItemEvent": row_id, "CreateDate": None, "CreatingIDUser": 0, "WorkItemHash": work_hash,
            "RunID": "", "EventType": kind, "FromStatus": "", "ToStatus": to_status, "BeaconID": "bcn-shell1-1",
            "Payload": "{}"}


@pytest.fixture
def history(coordinator):
    items = [work_item(n) for n in (1, 2, 3)]
    coordinator.history.extend(items)
    row_id = 0
    for item in items:
        for kind, to in (("enqueued", "Pending"), ("dispatched", "Running"), ("completed", "Complete")):
            row_id += 1
            coordinator.events.setdefault(item["WorkItemHash"], []).append(event(row_id, item["WorkItemHash"], kind, to))
    coordinator.live_items.append({"WorkItemHash": "wi-live-1", "Status": "Running", "Capability": "Shell",
                                   "EnqueuedAt": "2026-11-26T23:00:00.000Z", "Settings": {"QueueMetadata": {}}})
    for n in (1, 2):
        run = f"run-op-probe-{n}"
        coordinator.manifests[run] = {"Hash": run, "OperationHash": "op-probe", "OperationName": "Probe",
                                      "Status": "Complete", "StartTime": f"2026-11-26T22:0{n}:00.000Z",
                                      "StopTime": f"2026-11-26T22:0{n}:05.000Z", "ElapsedMs": 5000,
                                      "TaskOutputs": {"n": n}, "Log": ["ok"]}
    return items


def import_json(uvctl, url, *extra):
    result = uvctl("journal", "import", "--coordinator", url, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_imports_work_items_events_and_manifests_once(coordinator, history, uvctl):
    report = import_json(uvctl, coordinator.url)
    assert set(report) == REPORT_KEYS
    assert report["Kind"] == "ultravisor-coordinator" and report["Source"] == coordinator.url
    assert report["Read"] == {"WorkItems": 4, "Events": 9, "Manifests": 2}
    assert report["Journaled"] == 15 and report["Skipped"] == 0 and report["Notes"] == []
    with Journal.open() as journal:
        item = journal.get_work_item(history[0]["WorkItemHash"])
        assert json.loads(item["Settings"]) == {"Command": "echo 1"}  # QueueMetadata stripped
        assert journal.get_work_item("wi-live-1")["Status"] == "Running"
        events = journal.get_events(history[0]["WorkItemHash"], None)
        assert [e["EventType"] for e in events] == ["enqueued", "dispatched", "completed"]
        assert [e["Seq"] for e in events] == [1, 2, 3]
        # The same EventGUID the data-directory import gives these local-store rows.
        assert events[0]["EventGUID"] == str(uuid.uuid5(IMPORT_NAMESPACE, f"beacon-queue|{history[0]['WorkItemHash']}|1|enqueued"))
        assert json.loads(journal.get_manifest("run-op-probe-2")["ManifestJSON"])["TaskOutputs"] == {"n": 2}

    again = import_json(uvctl, coordinator.url)
    assert again["Journaled"] == 0 and again["Skipped"] == 15
    text = uvctl("journal", "import", "--coordinator", coordinator.url).stdout
    assert "nothing new: all 15 records are already in the journal" in text


def test_pages_through_the_history_and_says_when_the_route_caps_it(coordinator, uvctl, monkeypatch):
    coordinator.history.extend(work_item(n) for n in range(1, 601))
    report = import_json(uvctl, coordinator.url, "--no-manifests")
    assert report["Read"]["WorkItems"] == 600 and report["HistoryRequests"] == 2
    assert [r for r in coordinator.requests if r.startswith("GET /Beacon/Queue")] == [
        "GET /Beacon/Queue?include=history&limit=500", "GET /Beacon/Queue?include=history&limit=1000"]
    assert not any(r.startswith("GET /Manifest") for r in coordinator.requests)

    monkeypatch.setattr(persistence, "HISTORY_MAX", 500)
    result = uvctl("journal", "import", "--coordinator", coordinator.url, "--no-manifests", "--json")
    assert result.exit_code == 0
    assert "at most 500 work items" in json.loads(result.stdout)["Notes"][0]
    assert "uvctl: note: the coordinator's history route returns at most 500" in result.stderr


def test_meadowproxy_mode_reads_through_the_databeacon(coordinator, databeacon, meadow, uvctl):
    assert uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1").exit_code == 0
    with sqlite3.connect(meadow.db_file) as conn:
        conn.execute("INSERT INTO UVQueueWorkItem (WorkItemHash, Status, EnqueuedAt) VALUES ('wi-remote-1', 'Complete', "
                     "'2026-11-26T22:00:00.000Z')")
        rows = conn.execute("SELECT COUNT(*) FROM UVQueueWorkItem").fetchone()[0]  # with assign's own probes
    report = import_json(uvctl, coordinator.url)
    assert report["Read"]["WorkItems"] == rows and report["Notes"] == []
    with Journal.open() as journal:
        assert journal.get_work_item("wi-remote-1")["Status"] == "Complete"

    coordinator.restart()  # the restart defect: the bridge's reads are refused; only live items come
    databeacon.reregister()
    assert uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1").exit_code == 8
    report = import_json(uvctl, coordinator.url)
    assert report["Read"]["WorkItems"] == 0 and "History: null" in report["Notes"][0]


def test_secured_coordinator_and_bad_input(make_uv, uvctl, monkeypatch):
    secured = make_uv(secured=True, users={"ops": "pw-123456"})
    secured.history.append(work_item(1))
    monkeypatch.setenv("UVCTL_COORDINATOR_USER", "ops")
    monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", "pw-123456")
    report = import_json(uvctl, secured.url, "--no-manifests")
    assert report["Journaled"] == 1 and secured.logins == 1

    both = uvctl("journal", "import", "some.jsonl", "--coordinator", secured.url)
    assert both.exit_code == 2 and "without PATH" in both.stderr
    neither = uvctl("journal", "import")
    assert neither.exit_code == 2 and "--coordinator URL" in neither.stderr
    secret = uvctl("journal", "import", "--coordinator", "http://ops:pw-123456@127.0.0.1:9")
    assert secret.exit_code == 2 and "pw-123456" not in secret.output


def test_import_says_what_a_broken_history_route_left_out(coordinator, uvctl):
    coordinator.history_defect = True
    coordinator.history.append({"WorkItemHash": "wi-done-1", "Status": "Complete", "EnqueuedAt": "2026-11-26T22:00:00Z"})
    coordinator.live_items.append({"WorkItemHash": "wi-live-1", "Status": "Running", "Capability": "Shell",
                                   "EnqueuedAt": "2026-11-26T23:00:00.000Z", "Settings": {}})
    result = uvctl("journal", "import", "--coordinator", coordinator.url, "--json")
    assert result.exit_code == 0, result.output
    (note,) = json.loads(result.stdout)["Notes"]
    assert "History: null" in note and "finished work items and their events were not imported" in note
    assert "only its 1 live work item(s) and its manifests" in note
    assert "'uvctl journal import DATA_DIR' reads the same history from the coordinator's disk" in note
    assert "doctor" not in note  # nothing is assigned: the doctor has nothing to say
    assert f"uvctl: note: {note}" in result.stderr


def test_import_says_what_an_empty_history_route_left_out(coordinator, databeacon, uvctl):
    coordinator.fit_schema = False  # 1.3.24: no work-item row lands, so the route answers []
    uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1")
    result = uvctl("journal", "import", "--coordinator", coordinator.url, "--json", "--no-manifests")
    assert result.exit_code == 0, result.output
    (note,) = json.loads(result.stdout)["Notes"]
    assert "returned no work items" in note and "only its 0 live work item(s))" in note
    assert "uvctl journal import DATA_DIR" in note and "persistence doctor" in note
