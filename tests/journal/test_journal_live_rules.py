"""The journal's rules for a running coordinator's live QP_*/MS_* traffic (persistence-beacon
reference §2, §5, §6): no Status regression, replayed events recognised, manifest stubs,
outcomes without an insert, fields beyond the UV columns kept. The last test replays the
captured frames of real Ultravisor 1.3.24 runs (``tests/beacon/captures``)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from uvctl.actions import WRITE_ACTIONS
from uvctl.bridge import QueueBridge, execute
from uvctl.journal import Journal, normalize_action
from uvctl.journal.columns import table, tables
from uvctl.journal.importer import import_path

#: The frames of the live runs (reference captures/*.jsonl), shared with the beacon's tests.
CAPTURES = Path(__file__).resolve().parents[1] / "beacon" / "captures"
#: A work item's terminal Status values, as the persistence-beacon reference lists them (§6.2).
TERMINAL = ("Complete", "Error", "Canceled", "Stalled")


def upsert(hash_, **fields):
    return normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": hash_, **fields}})


def patch(hash_, **fields):
    return normalize_action("QP_UpdateWorkItem", {"WorkItemHash": hash_, "Patch": fields})


def outcome(hash_, number, **fields):
    return normalize_action("QP_UpdateAttemptOutcome", {"WorkItemHash": hash_, "AttemptNumber": number, "Patch": fields})


def manifest(hash_, **fields):
    return normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": hash_, **fields}})


def stub(hash_, status, **fields):
    """A manifest as the coordinator's replay (or restart) sends it (captures qp1b, qp1d)."""
    return manifest(hash_, Status=status, Live=False, Output={}, GlobalState={}, OperationState={}, TaskOutputs={},
                    TaskManifests={}, WaitingTasks={}, TimingSummary=None, EventLog=[], Errors=[], Log=[], **fields)


def outcomes(journal, actions):
    return [r.outcome for r in journal.apply(actions)]


def assert_log_replays_to_the_same_state(journal, tmp_path):
    """What a backend receives (Journal.read) rebuilds exactly the journal's state."""
    with Journal.open(tmp_path / "replayed.sqlite") as fresh:
        for bridge in ("Queue", "Manifest"):
            fresh.apply(journal.read(bridge, 0, 100_000))
        for name in tables():
            assert fresh.all_rows(name) == journal.all_rows(name), name


# ---------------------------------------------------------------------- 1. Status
FULL = dict(Status="Complete", AttemptNumber=1, CompletedAt="t2", Result={"Outputs": {"x": 1}}, Capability="Shell")


def test_an_upsert_of_the_same_attempt_does_not_take_a_terminal_item_back_to_live(journal, tmp_path):
    journal.record(upsert("wi-1", **FULL))
    # delivered late, serialized early: Pending, but it knows the RunHash the stored one lacks
    done = journal.apply([upsert("wi-1", Status="Pending", AttemptNumber=1, RunHash="run-1", Capability="Other")])[0]
    row = journal.get_work_item("wi-1")
    assert done.outcome == "applied"
    assert (row["Status"], row["RunHash"], row["Capability"], row["CompletedAt"]) == ("Complete", "run-1", "Shell", "t2")
    logged = journal.read("Queue", 0, 10)[-1]
    assert logged.name == "QP_UpsertWorkItem" and logged.settings["WorkItem"] == {**row}, "the effective record is logged"
    again = journal.apply([upsert("wi-1", Status="Running", AttemptNumber=0, RunHash="run-1")])[0]
    assert again.outcome == "unchanged" and not again.logged and journal.last_seq() == 2
    assert_log_replays_to_the_same_state(journal, tmp_path)


def test_a_patch_with_a_live_status_keeps_the_terminal_one_and_applies_the_rest(journal, tmp_path):
    journal.record(upsert("wi-1", Status="Error", AttemptNumber=1, LastError="boom"))
    done = journal.apply([patch("wi-1", Status="Running", LastEventAt="t9", StartedAt="t8")])[0]
    assert done.outcome == "applied" and done.action.settings["Patch"] == {"LastEventAt": "t9", "StartedAt": "t8"}
    assert journal.read("Queue", 1, 10)[0].settings["Patch"] == {"LastEventAt": "t9", "StartedAt": "t8"}
    row = journal.get_work_item("wi-1")
    assert (row["Status"], row["LastEventAt"], row["LastError"]) == ("Error", "t9", "boom")
    assert outcomes(journal, [patch("wi-1", Status="Dispatched"), patch("wi-1", Status="Running", LastEventAt="t9")]) == \
        ["unchanged", "unchanged"]
    assert journal.last_seq() == 2
    # an early patch folded into its upsert does not take it back either
    assert outcomes(journal, [patch("wi-2", Status="Running", StartedAt="t1")]) == ["not-found"]
    assert outcomes(journal, [upsert("wi-2", Status="Complete")]) == ["applied"]
    assert (journal.get_work_item("wi-2")["Status"], journal.get_work_item("wi-2")["StartedAt"]) == ("Complete", "t1")
    # another terminal Status applies, and so does a live one of a higher attempt (a retry)
    assert outcomes(journal, [patch("wi-1", Status="Canceled"), upsert("wi-1", Status="Complete", AttemptNumber=1),
                              patch("wi-1", Status="Running"), patch("wi-1", Status="Dispatched", AttemptNumber=2)]) == \
        ["applied", "applied", "unchanged", "applied"]
    assert journal.get_work_item("wi-1")["Status"] == "Dispatched"
    journal.record(patch("wi-1", Status="Error"))
    assert outcomes(journal, [upsert("wi-1", Status="Pending", AttemptNumber=3)]) == ["applied"]
    assert (journal.get_work_item("wi-1")["Status"], journal.get_work_item("wi-1")["AttemptNumber"]) == ("Pending", 3)
    assert_log_replays_to_the_same_state(journal, tmp_path)


def test_an_item_pushed_over_websocket_was_attempted_once_whatever_its_attempt_number(journal):
    # qp1/qp1b/qp1d: pushed with AttemptNumber 0, stalled, and after a coordinator restart
    # dispatched again as attempt 1 from a stale copy: that is no retry
    journal.record(upsert("wi-42", Status="Pending", AttemptNumber=0))
    journal.record(patch("wi-42", Status="Stalled", CompletedAt="t3"))
    assert outcomes(journal, [patch("wi-42", Status="Dispatched", AttemptNumber=1, AssignedBeaconID="bcn-w")]) == ["applied"]
    row = journal.get_work_item("wi-42")
    assert (row["Status"], row["AssignedBeaconID"], row["AttemptNumber"]) == ("Stalled", "bcn-w", 1)
    # an attempt the journal knows of counts too
    journal.record(normalize_action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-42", "AttemptNumber": 2}}))
    assert outcomes(journal, [patch("wi-42", Status="Running", AttemptNumber=2)]) == ["applied"]
    assert journal.get_work_item("wi-42")["Status"] == "Stalled"
    assert outcomes(journal, [patch("wi-42", Status="Running", AttemptNumber=3)]) == ["applied"]
    assert journal.get_work_item("wi-42")["Status"] == "Running"


# ---------------------------------------------------------------------- 2. replayed events
REPLAYED = {"IDBeaconWorkItemEvent": 7, "WorkItemHash": "wi-1", "RunID": "", "EventType": "Completed",
            "FromStatus": "Running", "ToStatus": "Complete", "BeaconID": "", "Payload": {"DurationMs": 4},
            "CreateDate": None}


def test_a_replayed_event_gets_the_data_dir_guid_and_seq_and_is_journaled_once(journal):
    from uvctl.journal.sources import IMPORT_NAMESPACE

    first = execute("QP_AppendEvent", {"Event": REPLAYED}, journal=journal)
    again = execute("QP_AppendEvent", {"Event": {**REPLAYED, "EventGUID": ""}}, journal=journal)  # the next connect
    assert first["Event"]["EventGUID"] == str(uuid.uuid5(IMPORT_NAMESPACE, "beacon-queue|wi-1|7|completed"))
    assert first["Event"]["Seq"] == 7
    assert again["AlreadyPresent"] is True and "JournalSeq" not in again
    assert [e["Seq"] for e in journal.get_events("wi-1")] == [7] and journal.last_seq() == 1
    # a live event (no local row id) is a new one each time, as before
    live = {k: v for k, v in REPLAYED.items() if k != "IDBeaconWorkItemEvent"}
    done = journal.apply([normalize_action("QP_AppendEvent", {"Event": live}) for _ in range(2)])
    assert [r.outcome for r in done] == ["applied", "applied"]
    assert len({r.action.settings["Event"]["EventGUID"] for r in done}) == 2


def test_events_replayed_live_are_not_imported_again_from_the_data_dir(example_datadir, journal):
    conn = sqlite3.connect(example_datadir / "data" / "beacon" / "beacon-queue.sqlite")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM BeaconWorkItemEvent ORDER BY IDBeaconWorkItemEvent")]
    conn.close()
    for row in rows:  # as the bootstrap sweep sends them: Payload an object, no EventGUID
        row.pop("EventGUID", None)
        row["Payload"] = json.loads(row["Payload"] or "{}")
        assert execute("QP_AppendEvent", {"Event": row}, journal=journal)["Success"]
    report = import_path(journal, example_datadir)
    assert report["Outcomes"].get("duplicate") == len(rows) and "QP_AppendEvent" not in {
        a.name for a in journal.read("Queue", len(rows), 100_000)}
    assert journal.stats()["State"]["Events"] == len(rows)


# ---------------------------------------------------------------------- 3. manifest stubs
CONTENT = dict(TaskManifests={"n1": {"Status": "Complete"}}, EventLog=[{"At": "t1"}], Log=["started"],
               TaskOutputs={"n1": {"ExitCode": 0}}, TimingSummary={"TotalMs": 35}, Output={}, GlobalState={},
               OperationState={}, Errors=[])


@pytest.mark.parametrize("status", ["Complete", "Error"])
def test_a_stub_never_replaces_a_finished_run(journal, status):
    journal.record(manifest("run-1", Status="Complete", StopTime="t2", ElapsedMs=35, **CONTENT))
    before = journal.get_manifest("run-1")
    done = journal.apply([stub("run-1", status, StopTime="t9", ElapsedMs=None)])[0]
    assert done.outcome == "unchanged" and not done.logged
    assert journal.get_manifest("run-1") == before and journal.last_seq() == 1
    # a manifest with content applies as before; so does one lacking a content key (no stub)
    assert outcomes(journal, [manifest("run-1", Status="Running", **CONTENT)]) == ["applied"]
    assert journal.get_manifest("run-1")["Status"] == "Running"
    assert outcomes(journal, [manifest("run-1", Status="Complete", Output={})]) == ["applied"]
    assert json.loads(journal.get_manifest("run-1")["ManifestJSON"]) == {"Hash": "run-1", "Status": "Complete", "Output": {}}
    # a stub of a run the journal does not hold is all there is of it
    journal.record(stub("run-2", "Complete"))
    assert journal.get_manifest("run-2")["Status"] == "Complete"


def test_a_stub_over_a_run_in_progress_keeps_its_content_and_brings_its_fields(journal, tmp_path):
    journal.record(manifest("run-1", Status="Waiting", StopTime="t1", ElapsedMs=5, WaitingTasks={"n1": {}}, **CONTENT))
    done = journal.apply([stub("run-1", "Error", StopTime="t9", ElapsedMs=None)])[0]  # a restart's Error mark
    row = journal.get_manifest("run-1")
    kept = json.loads(row["ManifestJSON"])
    assert done.outcome == "applied" and (row["Status"], row["StopTime"], row["ElapsedMs"]) == ("Error", "t9", 5)
    assert kept["TaskManifests"] == CONTENT["TaskManifests"] and kept["WaitingTasks"] == {"n1": {}}
    assert kept["Live"] is False and kept["Status"] == "Error"
    logged = journal.read("Manifest", 1, 10)
    assert [a.settings["Manifest"] for a in logged] == [{k: row[k] for k in table("UVManifest").columns}]
    assert_log_replays_to_the_same_state(journal, tmp_path)


# ---------------------------------------------------------------------- 4. outcomes without an insert
def test_an_outcome_for_an_unknown_attempt_is_journaled_as_the_attempt(journal, tmp_path):
    with QueueBridge(journal) as queue:
        answer = queue.update_attempt_outcome("wi-1", 1, {"CompletedAt": "t2", "Outcome": "Complete", "DurationMs": 18})
    assert answer["Success"] and "NotFound" not in answer and answer["JournalSeq"] == 1
    [logged] = journal.read("Queue", 0, 10)
    assert logged.name == "QP_InsertAttempt"
    assert logged.settings["Attempt"] == {"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "", "StartedAt": "",
                                          "EndedAt": "t2", "Outcome": "Complete", "Error": "", "Deleted": False}
    assert journal.get_attempts("wi-1")[0]["Outcome"] == "Complete"
    # the insert arriving after it only fills what is still unknown
    insert = normalize_action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "bcn-a",
                                                               "DispatchedAt": "t1", "Outcome": "Dispatched"}})
    done = journal.apply([insert, insert])
    assert [r.outcome for r in done] == ["applied", "duplicate"]
    assert done[0].action.name == "QP_UpdateAttemptOutcome"
    assert done[0].action.settings["Patch"] == {"BeaconID": "bcn-a", "StartedAt": "t1"}
    attempt = journal.get_attempts("wi-1")[0]
    assert (attempt["BeaconID"], attempt["StartedAt"], attempt["EndedAt"], attempt["Outcome"]) == ("bcn-a", "t1", "t2", "Complete")
    # a work item's patch before its upsert is still held for it
    assert outcomes(journal, [patch("wi-1", Status="Running")]) == ["not-found"]
    journal.record(upsert("wi-1", Status="Pending"))
    assert journal.get_work_item("wi-1")["Status"] == "Running"
    assert_log_replays_to_the_same_state(journal, tmp_path)


def test_a_patch_journaled_in_the_same_transaction_as_its_upsert_is_folded_into_it(journal):
    # concurrent bridge calls are grouped into one commit: the patch's log row is not written yet
    # when its upsert arrives
    assert outcomes(journal, [patch("wi-1", Status="Running", StartedAt="t1"), upsert("wi-1", Status="Pending")]) == \
        ["not-found", "applied"]
    assert (journal.get_work_item("wi-1")["Status"], journal.get_work_item("wi-1")["StartedAt"]) == ("Running", "t1")
    assert journal.read("Queue", 1, 10)[0].settings["WorkItem"]["StartedAt"] == "t1"


# ---------------------------------------------------------------------- 5. fields beyond the UV columns
def test_fields_that_are_no_uv_column_are_kept_and_returned_by_the_reads(journal):
    with QueueBridge(journal) as queue:
        queue.upsert_work_item({"WorkItemHash": "wi-1", "Status": "Pending", "RequireAffinityMatch": True,
                                "CreatedAt": "t0", "Settings": {"Command": "x", "QueueMetadata": {"RunID": ""}}})
        queue.update_work_item("wi-1", {"Status": "Stalled", "StalledAt": "t3"})
        queue.update_work_item("wi-1", {"StalledAt": "t4", "LastEventAt": "t4"})
        queue.append_event({"WorkItemHash": "wi-1", "RunID": "rn-1", "EventType": "stalled"})
        queue.update_attempt_outcome("wi-1", 1, {"Outcome": "Complete", "DurationMs": 7})
        read = queue.get_work_item("wi-1")["WorkItem"]
    item = journal.get_work_item("wi-1")
    assert (item["RequireAffinityMatch"], item["CreatedAt"], item["StalledAt"]) == (True, "t0", "t4") and item == read
    assert json.loads(item["Settings"]) == {"Command": "x"}, "QueueMetadata is stripped"
    assert journal.list_work_items()[0]["StalledAt"] == "t4"
    assert journal.get_events("wi-1")[0]["RunID"] == "rn-1"
    assert journal.get_attempts("wi-1")[0]["DurationMs"] == 7
    # what backends get and are compared with stays UV columns only
    for name in ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt"):
        assert all(set(row) == set(table(name).columns) for row in journal.all_rows(name))
    for action in journal.read("Queue", 0, 100):
        record = next(v for k, v in action.settings.items() if isinstance(v, dict))
        assert set(record) <= set(table("UVQueueWorkItem").columns) | set(table("UVQueueWorkItemEvent").columns) | \
            set(table("UVQueueWorkItemAttempt").columns)
    conn = sqlite3.connect(journal.path)
    extras = [json.loads(text) for (text,) in conn.execute("SELECT extra FROM log ORDER BY seq")]
    conn.close()
    assert extras[0] == {"WorkItem": {"RequireAffinityMatch": True, "CreatedAt": "t0"}}
    assert extras[1] == {"Patch": {"StalledAt": "t3"}} and extras[4] == {"Attempt": {"DurationMs": 7}}


def test_a_uv_column_wins_over_a_kept_field_and_a_live_patch_settings_loses_its_queue_metadata(journal):
    journal.record(upsert("wi-1", Status="Pending", DispatchedAt="t1"))
    journal.record(patch("wi-1", Settings={"Command": "x", "QueueMetadata": {"AttemptNumber": 1}}))
    assert json.loads(journal.get_work_item("wi-1")["Settings"]) == {"Command": "x"}
    attempt = normalize_action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-1", "AttemptNumber": 1, "DispatchedAt": "t1",
                                                                "StartedAt": "t0"}})
    journal.record(attempt)
    assert journal.get_attempts("wi-1")[0]["StartedAt"] == "t0" and journal.get_attempts("wi-1")[0]["DispatchedAt"] == "t1"


def _old_journal(path: Path) -> None:
    """A journal as format 2 made it: no extras columns; one work item journaled."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('format', '2'), ('created_at', 't'), ('journal_id', 'old');"
        "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, bridge TEXT NOT NULL, action TEXT NOT NULL, "
        "settings TEXT NOT NULL, recorded_at TEXT NOT NULL);"
        "CREATE INDEX IX_log_bridge_seq ON log (bridge, seq);"
        "CREATE TABLE imported (source_key TEXT PRIMARY KEY, seq INTEGER) WITHOUT ROWID;"
        "CREATE TABLE early_patch (tbl TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, patch TEXT NOT NULL, "
        "PRIMARY KEY (tbl, key, seq)) WITHOUT ROWID;")
    for spec in tables().values():
        types = {"Integer": "INTEGER NOT NULL DEFAULT 0", "Boolean": "INTEGER NOT NULL DEFAULT 0",
                 "Deleted": "INTEGER NOT NULL DEFAULT 0", "Float": "REAL NOT NULL DEFAULT 0"}
        cols = ", ".join(f'"{c}" {types.get(spec.types[c], "TEXT NOT NULL DEFAULT " + chr(39) * 2)}' for c in spec.columns)
        conn.execute(f'CREATE TABLE "{spec.name}" ({cols})')
    conn.execute('CREATE UNIQUE INDEX "UX_WorkItem_Hash" ON "UVQueueWorkItem" ("WorkItemHash")')
    conn.execute('CREATE UNIQUE INDEX "UX_Event_GUID" ON "UVQueueWorkItemEvent" ("EventGUID")')
    conn.execute('CREATE UNIQUE INDEX "UX_Attempt_HashNum" ON "UVQueueWorkItemAttempt" ("WorkItemHash", "AttemptNumber")')
    conn.execute('CREATE UNIQUE INDEX "UX_Manifest_Hash" ON "UVManifest" ("Hash")')
    item = upsert("wi-old", Status="Complete").settings
    conn.execute("INSERT INTO log (bridge, action, settings, recorded_at) VALUES ('Queue', 'QP_UpsertWorkItem', ?, 't')",
                 (json.dumps(item),))
    row = item["WorkItem"]
    conn.execute(f'INSERT INTO "UVQueueWorkItem" ({", ".join(row)}) VALUES ({", ".join("?" for _ in row)})', list(row.values()))
    conn.commit()
    conn.close()


def test_a_journal_of_the_previous_format_opens_and_keeps_working(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_journal(path)
    with Journal.open(path) as journal:
        assert journal.get_work_item("wi-old")["Status"] == "Complete"
        assert [a.name for a in journal.read("Queue")] == ["QP_UpsertWorkItem"]
        journal.record(patch("wi-old", LastEventAt="t5", StalledAt="t5"))
        journal.record(upsert("wi-new", RequireAffinityMatch=False))
        assert journal.get_work_item("wi-old")["StalledAt"] == "t5"
        assert journal.get_work_item("wi-new")["RequireAffinityMatch"] is False
        assert journal.journal_id == "old" and journal.last_seq() == 3
    with Journal.open(path) as again:  # the migrated file opens as a current one
        assert again.get_work_item("wi-old")["StalledAt"] == "t5"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()[0] == "3"
    conn.close()


# ---------------------------------------------------------------------- 7. the captured runs
def captured_frames():
    """``(Action, Settings without QueueMetadata)`` of every work item the beacons received, in
    arrival order: WebSocket frames (qp1, qp1b, qp1d), then the HTTP polls (hqp, hms)."""
    out = []
    for name in ("qp1", "qp1b", "qp1d", "hqp", "hms"):
        for line in (CAPTURES / f"{name}.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if entry["dir"] != "in":
                continue
            item = entry["poll"] if "poll" in entry else entry["frame"].get("WorkItem")
            if item:
                settings = {k: v for k, v in item["Settings"].items() if k != "QueueMetadata"}
                out.append((item["Action"], settings))
    return out


def test_the_captured_runs_replay_without_regressions_duplicates_or_lost_content(journal):
    frames = captured_frames()
    for action, settings in frames:
        answer = execute(action, settings, journal=journal)
        assert answer["Success"] or action not in WRITE_ACTIONS, answer  # a read of what is not there may miss

    # no item that reached a terminal Status ends live
    finished = {s.get("WorkItem", {}).get("WorkItemHash") or s.get("WorkItemHash")
                for a, s in frames if (s.get("WorkItem") or s.get("Patch") or {}).get("Status") in TERMINAL}
    assert len(finished) > 10
    ended = {h: journal.get_work_item(h)["Status"] for h in finished}
    assert {h: status for h, status in ended.items() if status not in TERMINAL} == {}

    # each event the coordinator had, once: a replayed one by its local row, a live one per frame
    events = [s["Event"] for a, s in frames if a == "QP_AppendEvent"]
    replayed = {(e["WorkItemHash"], e["IDBeaconWorkItemEvent"]) for e in events if "IDBeaconWorkItemEvent" in e}
    fresh = [e for e in events if "IDBeaconWorkItemEvent" not in e]
    assert len(replayed) < len(events) - len(fresh), "the captures hold replays"
    assert journal.stats()["State"]["Events"] == len(replayed) + len(fresh)

    # a run that reached Complete keeps its full content through the stubs and the restart's Error
    manifests = [s["Manifest"] for a, s in frames if a == "MS_UpsertManifest"]
    complete = {m["Hash"]: m for m in manifests if m["Status"] == "Complete" and m.get("TaskManifests")}
    assert complete and any(m["Status"] == "Error" and m["Hash"] in complete for m in manifests)
    for run_hash, sent in complete.items():
        kept = json.loads(journal.get_manifest(run_hash)["ManifestJSON"])
        assert kept["Status"] == "Complete" and kept["TaskManifests"] == sent["TaskManifests"]
        assert kept["EventLog"] == sent["EventLog"] and kept["EventLog"]
