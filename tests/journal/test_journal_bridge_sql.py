"""Write-through from the bridges into the built-in sql backend on SQLite, PostgreSQL and MariaDB."""

import pytest

from uvctl.bridge import ManifestBridge, QueueBridge
from uvctl.journal.columns import table


@pytest.fixture
def assigned(db_url):
    assignment = pytest.importorskip("uvctl.assignment")
    assignment.assign("sql", {"Db": db_url})
    assert assignment.backend_for("Queue", bootstrap=True) is not None
    return db_url


def test_write_through_lands_on_the_database_and_reads_match_the_journal(assigned, journal, db_url):
    with QueueBridge(journal) as queue, ManifestBridge(journal) as manifests:
        writes = [
            queue.upsert_work_item({"WorkItemHash": "wi-1", "RunID": "rn-1", "Settings": {"Command": "true"},
                                    "Status": "Pending", "CreatedAt": "t0", "RequireAffinityMatch": True,
                                    "EnqueuedAt": "2026-11-26T22:00:00.000Z", "Health": None, "Result": None}),
            queue.append_event({"WorkItemHash": "wi-1", "RunID": "rn-1", "EventType": "enqueued", "Payload": {"P": 1}}),
            queue.update_work_item("wi-1", {"Status": "Dispatched", "AssignedBeaconID": "bcn-1", "Health": 0.5}),
            queue.insert_attempt({"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "bcn-1", "DispatchedAt": "t1",
                                  "Outcome": "Dispatched"}),
            queue.append_event({"WorkItemHash": "wi-1", "EventType": "dispatched", "BeaconID": "bcn-1"}),
            queue.update_attempt_outcome("wi-1", 1, {"CompletedAt": "t2", "Outcome": "Complete", "DurationMs": 7}),
            queue.update_work_item("wi-1", {"Status": "Complete", "Result": {"Outputs": {"x": 1}}, "StalledAt": "x"}),
            manifests.upsert_manifest({"Hash": "run-1", "Status": "Waiting", "StartTime": "t1", "Output": {}}),
            manifests.upsert_manifest({"Hash": "run-1", "Status": "Complete", "StartTime": "t1", "StopTime": "t3"}),
            manifests.upsert_manifest({"Hash": "run-2", "Status": "Complete", "StartTime": "t4"}),
            manifests.remove_manifest("run-2"),
        ]
        assert all(w["Success"] and w["Pending"] is False for w in writes), writes
        item = queue.get_work_item("wi-1")
        assert item["Source"] == "backend"
        journaled = {k: journal.get_work_item("wi-1")[k] for k in table("UVQueueWorkItem").columns}  # not its extras
        assert {k: item["WorkItem"][k] for k in journaled} == journaled
        events = queue.get_events("wi-1")
        assert events["Source"] == "backend"
        assert [{k: e[k] for k in ("EventGUID", "Seq", "EventType", "Payload", "EmittedAt")} for e in events["Events"]] == \
            [{k: e[k] for k in ("EventGUID", "Seq", "EventType", "Payload", "EmittedAt")} for e in journal.get_events("wi-1")]
        got = manifests.get_manifest("run-1")
        assert got["Source"] == "backend" and got["Manifest"]["Status"] == "Complete" and got["Manifest"]["StopTime"] == "t3"
        assert [m["Hash"] for m in manifests.list_manifests()["Manifests"]] == ["run-1"]
        assert manifests.get_manifest("run-2")["Success"] is False

    from uvctl import assignment
    from uvctl.flush import HighWaterMarks

    identity = assignment.backend_for("Queue").identity
    assert HighWaterMarks().get("Queue", identity) == journal.last_seq("Queue")
    assert HighWaterMarks().get("Manifest", identity) == journal.last_seq("Manifest")
