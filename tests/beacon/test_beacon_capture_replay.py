"""Every captured frame of the real coordinator replayed into ``uvctl beacon run``.

The stub pushes the captures' work items in their captured order (coordinator_stub.py); each
answer is checked against what the coordinator reads from it (reference §3, §4), and the
journal's end state against the rules of reference §6: no Status going back from a terminal
value, events counted once across the reconnect and the restart, manifests keeping their
terminal content.
"""

from __future__ import annotations

import json
import threading

import pytest

from beacon_coordinator import captured_items, load_capture

from uvctl.journal import Journal

TERMINAL = {"Complete", "Error", "Canceled", "Stalled"}
READ_KEYS = {"QP_ListWorkItems": "WorkItems", "QP_GetWorkItemByHash": "WorkItem", "QP_GetEvents": "Events",
             "MS_ListManifests": "Manifests", "MS_GetManifest": "Manifest"}


def _settings(item: dict) -> dict:
    return {k: v for k, v in (item.get("Settings") or {}).items() if k != "QueueMetadata"}


def expected_facts(items: list[dict]) -> dict:
    """What the coordinator's frames say must end up in the journal."""
    events, terminal, manifests = set(), {}, {}
    for item in items:
        s, action = _settings(item), item["Action"]
        if action == "QP_AppendEvent":
            event = s["Event"]
            if event.get("IDBeaconWorkItemEvent") is not None:  # a replay of the local store: one event
                events.add((event["WorkItemHash"], "local", event["IDBeaconWorkItemEvent"]))
            else:  # a live event is sent once
                events.add((event["WorkItemHash"], "live", item["WorkItemHash"]))
        elif action in ("QP_UpsertWorkItem", "QP_UpdateWorkItem"):
            record = s["WorkItem"] if action == "QP_UpsertWorkItem" else s["Patch"]
            key = s["WorkItem"]["WorkItemHash"] if action == "QP_UpsertWorkItem" else s["WorkItemHash"]
            if record.get("Status") in TERMINAL:
                terminal[key] = record["Status"]
        elif action == "MS_UpsertManifest":
            manifest = s["Manifest"]
            if manifest.get("Status") in ("Complete", "Failed") and (manifest.get("TaskManifests") or manifest.get("EventLog")):
                manifests[manifest["Hash"]] = manifest
    return {"events": events, "terminal": terminal, "manifests": manifests}


def check_answers(entries) -> None:
    """Every item answered in time with what the coordinator reads."""
    late = [e.item["Action"] for e in entries if e.timed_out or e.answer is None]
    assert not late, f"{len(late)} items were not answered within their TimeoutMs: {late[:5]}"
    for entry in entries:
        kind, outputs = entry.answer
        action = entry.item["Action"]
        assert kind == "complete", f"{action} answered {entry.answer}"
        assert outputs.get("Available") is not False  # it would override the bridge's own flag
        if action in READ_KEYS:
            assert READ_KEYS[action] in outputs, f"{action} answer lacks {READ_KEYS[action]}: {outputs}"
            if action.startswith("QP_") and action != "QP_GetWorkItemByHash" or action == "MS_ListManifests":
                assert isinstance(outputs[READ_KEYS[action]], list)
        else:
            assert outputs["Success"] is True, f"{action}: {outputs}"  # anything else stops the sweep


def test_websocket_beacon_takes_every_capture_across_a_reconnect_and_a_restart(stub, beacon, data_dir):
    process = beacon(stub.url, "--name", "qp1")
    first = stub.wait_registered(1)[0]
    assert first["Capabilities"] == ["QueuePersistence", "ManifestStore"] and first["Transport"] == "websocket"
    all_items = []
    for capture, fault in (("qp1", None), ("qp1b", "drop"), ("qp1d", "restart")):
        if fault == "drop":
            stub.drop_all()  # the socket drops: the beacon reconnects and gets a new BeaconID
        elif fault == "restart":
            stub.restart()
        if fault:
            stub.wait_registered(len(stub.registrations) + 1)
        lines = load_capture(capture)
        entries = stub.replay(lines)
        check_answers(entries)
        all_items += captured_items(lines)
    ids = [r["BeaconID"] for r in stub.registrations]
    assert len(set(ids)) == 3, ids

    assert process.stop() == 0
    stub.wait_deregistered()
    facts = expected_facts(all_items)
    with Journal.open(data_dir / "journal.sqlite") as journal:
        # every work item that reached a terminal Status keeps one
        for work_hash, status in facts["terminal"].items():
            row = journal.get_work_item(work_hash)
            assert row is not None, f"work item {work_hash} is missing"
            assert row["Status"] in TERMINAL, f"{work_hash} went back to {row['Status']} after {status}"
        # each event once: the replays of the reconnect and of the restart add nothing
        events = journal.all_rows("UVQueueWorkItemEvent")
        assert len(events) == len(facts["events"]), (len(events), len(facts["events"]))
        # a finished run keeps its content over the reconnect stubs and the restart's Error stub
        for run_hash, sent in facts["manifests"].items():
            row = journal.get_manifest(run_hash)
            kept = json.loads(row["ManifestJSON"])
            assert row["Status"] == sent["Status"]
            assert kept.get("TaskManifests") == sent.get("TaskManifests") and kept.get("EventLog") == sent.get("EventLog")
    log = process.log
    assert "registered with" in log and "disconnected" in log and "deregistered" in log


def test_http_beacons_are_the_two_name_routed_ones_and_take_their_captures(stub, beacon):
    process = beacon(stub.url, "--transport", "http")
    stub.wait_online()
    names = sorted((r["Name"], tuple(r["Capabilities"])) for r in stub.registrations)
    assert names == [("manifest-store", ("ManifestStore",)), ("queue-persistence", ("QueuePersistence",))]
    results = {}

    def run(capture):
        results[capture] = stub.replay(load_capture(capture))

    threads = [threading.Thread(target=run, args=(c,)) for c in ("hqp", "hms")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    check_answers(results["hqp"] + results["hms"])
    assert len(results["hqp"]) == 40 and len(results["hms"]) == 12
    assert process.stop() == 0
    stub.wait_deregistered(2)  # an HTTP beacon left registered would time out every write sent to it
    assert not stub.beacons


@pytest.mark.parametrize("capture", ["qp1"])
def test_reads_answer_the_current_state_with_objects_as_sent(stub, beacon, capture):
    process = beacon(stub.url)
    stub.wait_registered()
    entries = stub.replay(load_capture(capture))
    by_action = {}
    for entry in entries:
        by_action.setdefault(entry.item["Action"], []).append(entry)
    found = [e for e in by_action["QP_GetWorkItemByHash"] if e.answer[1]["WorkItem"]]
    missed = [e for e in by_action["QP_GetWorkItemByHash"] if not e.answer[1]["WorkItem"]]
    assert found and missed
    for entry in found:
        item = entry.answer[1]["WorkItem"]
        assert entry.answer[1]["Success"] is True and item["WorkItemHash"] == _settings(entry.item)["WorkItemHash"]
        assert isinstance(item["Settings"], dict)  # sent as an object, read back as one
    for entry in missed:  # the coordinator answers 404 on Success false with WorkItem null
        assert entry.answer[1]["Success"] is False and entry.answer[1]["WorkItem"] is None
    events = by_action["QP_GetEvents"][0].answer[1]["Events"]
    assert events and all(isinstance(e["Payload"], dict) for e in events)
    listed = by_action["QP_ListWorkItems"][-1].answer[1]["WorkItems"]
    assert listed and len(listed) <= _settings(by_action["QP_ListWorkItems"][-1].item)["Filter"]["Limit"]
    assert [w["EnqueuedAt"] for w in listed] == sorted((w["EnqueuedAt"] for w in listed), reverse=True)
    assert process.stop() == 0


def test_http_beacons_register_again_after_a_coordinator_restart(stub, beacon):
    process = beacon(stub.url, "--transport", "http")
    stub.wait_online()
    stub.restart()  # the coordinator forgets both beacons; Poll cannot tell (it answers null)
    stub.wait_registered(4)
    stub.wait_online()
    entries = stub.replay(load_capture("hms"))
    check_answers(entries)
    assert process.stop() == 0
    assert "no longer knows beacon" in process.log
