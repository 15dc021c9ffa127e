"""Ultravisor's bridges writing through to the meadowproxy backend (direct), and falling back
to the journal when the server is gone or the backend lost its readiness."""

from __future__ import annotations

import pytest

from uvctl import assignment, flush
from uvctl.bridge import QueueBridge

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)


@pytest.fixture
def assigned(meadow, data_dir):
    assignment.assign("meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash})
    handle = assignment.backend_for("Queue", bootstrap=True)
    assert handle is not None, assignment.load()["Queue"]
    return handle


def test_writes_go_through_and_reads_come_from_the_backend(assigned, db_rows):
    with QueueBridge() as bridge:
        written = bridge.upsert_work_item({"WorkItemHash": "w1", "Status": "Pending", "Settings": {"a": 1}})
        assert written["Success"] and written["Pending"] is False
        assert bridge.update_work_item("w1", {"Status": "Running", "StalledAt": "x"})["Pending"] is False
        assert bridge.append_event({"WorkItemHash": "w1", "EventType": "enqueued", "RunID": "r"})["Pending"] is False
        got = bridge.get_work_item("w1")
    assert got["Source"] == "backend" and got["WorkItem"]["Status"] == "Running"
    assert [(r["Status"], r["Settings"]) for r in db_rows("UVQueueWorkItem")] == [("Running", '{"a":1}')]
    assert len(db_rows("UVQueueWorkItemEvent")) == 1


def test_server_down_keeps_writes_pending_until_flush(assigned, meadow, db_rows):
    meadow.stop()
    with QueueBridge() as bridge:
        pending = bridge.upsert_work_item({"WorkItemHash": "w1", "Status": "Pending"})
        assert pending["Success"] and pending["Pending"] is True and "cannot reach" in pending["PendingReason"]
        # reads fall back to the journal, which has every write
        assert bridge.get_work_item("w1")["Source"] == "journal"
    meadow.start()
    report = flush.flush(bridges=("Queue",)).to_dict()
    assert report["Success"], report
    assert [r["WorkItemHash"] for r in db_rows("UVQueueWorkItem")] == ["w1"]


def test_lost_readiness_marks_the_assignment_and_the_next_flush_repairs_it(assigned, db_rows):
    assigned.state["bases"] = {t: f"/1.0/gone/{t}" for t in assigned.state["bases"]}  # routes vanished
    with QueueBridge() as bridge:
        answer = bridge.upsert_work_item({"WorkItemHash": "w1", "Status": "Pending"})
    assert answer["Pending"] is True and "needs bootstrap" in answer["PendingReason"]
    entry = assignment.load()["Queue"]
    assert entry["State"] != "bootstrapped" and "404" in entry["LastError"]
    report = flush.flush(bridges=("Queue",)).to_dict()  # bootstraps again, then sends
    assert report["Success"], report
    assert [r["WorkItemHash"] for r in db_rows("UVQueueWorkItem")] == ["w1"]
