"""Bridge calls journaled together (uvctl.bridge.batch): the same answers as one by one, one transaction."""

from __future__ import annotations

from uvctl.bridge import ManifestBridge, QueueBridge
from uvctl.bridge.batch import execute_batch
from uvctl.journal import Journal


def _calls(n: int) -> list:
    item = {"WorkItemHash": f"wi-{n}", "Status": "Pending", "Settings": {"Command": "echo"}, "Priority": 1}
    return [
        ("QP_UpsertWorkItem", {"WorkItem": item}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": f"wi-{n}", "EventType": "enqueued", "EventGUID": f"g-{n}"}}),
        ("QP_GetWorkItemByHash", {"WorkItemHash": f"wi-{n}"}),  # sees the upsert just before it
        ("QP_UpdateWorkItem", {"WorkItemHash": f"wi-{n}", "Patch": {"Status": "Complete"}}),
        ("MS_UpsertManifest", {"Manifest": {"Hash": f"run-{n}", "Status": "Complete"}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": f"wi-{n}", "EventType": "enqueued", "EventGUID": f"g-{n}"}}),
    ]


def _bridges(journal) -> dict:
    return {"Queue": QueueBridge(journal, local_only=True), "Manifest": ManifestBridge(journal, local_only=True)}


def _comparable(envelope: dict) -> dict:
    """The envelope without the time stamped at journaling (EmittedAt of a new event)."""
    out = dict(envelope)
    if isinstance(out.get("Event"), dict):
        out["Event"] = {k: v for k, v in out["Event"].items() if k != "EmittedAt"}
    return out


def test_a_batch_answers_as_the_calls_one_by_one_and_leaves_the_same_journal(tmp_path):
    calls = [call for n in range(3) for call in _calls(n)]
    with Journal.open(tmp_path / "one.sqlite") as one, Journal.open(tmp_path / "batch.sqlite") as batch:
        bridges = _bridges(one)
        singles = [bridges["Queue" if name.startswith("QP_") else "Manifest"].execute(name, settings)
                   for name, settings in calls]
        together = execute_batch(calls, _bridges(batch))
        assert [_comparable(e) for e in together] == [_comparable(e) for e in singles]
        assert together[2]["WorkItem"]["Status"] == "Pending" and together[5].get("AlreadyPresent") is True
        for table in ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVManifest"):
            strip = lambda rows: [{k: v for k, v in r.items() if k != "EmittedAt"} for r in rows]  # noqa: E731
            assert strip(batch.all_rows(table)) == strip(one.all_rows(table))
        assert batch.last_seq() == one.last_seq() == 12  # the same log, seq for seq


def test_one_bad_call_fails_alone_and_the_others_are_journaled(tmp_path):
    calls = _calls(1)[:2] + [("QP_UpsertWorkItem", {"WorkItem": {"Status": "Pending"}}),  # no WorkItemHash
                             ("QP_Nonsense", {}), ("MS_UpsertManifest", {"Manifest": {"Hash": "run-9"}})]
    with Journal.open(tmp_path / "j.sqlite") as journal:
        out = execute_batch(calls, _bridges(journal))
        assert [e["Success"] for e in out] == [True, True, False, False, True]
        assert "WorkItemHash" in out[2]["Reason"] and "QP_Nonsense" in out[3]["Reason"]
        assert journal.get_work_item("wi-1") is not None and journal.get_manifest("run-9") is not None
