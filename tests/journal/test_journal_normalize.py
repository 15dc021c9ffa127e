"""normalize_action on the payloads Ultravisor really sends (bridge reference §2.5)."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from uvctl.errors import UsageError
from uvctl.journal import normalize_action
from uvctl.journal.columns import table
from uvctl.journal.normalize import new_event_guid

ENQUEUE = {  # coordinator enqueue: objects, nulls and two non-columns
    "WorkItemHash": "wi-unknown-unknown-1795730400331-1",
    "RunHash": "", "RunID": "rn-vm-1795730400331-1", "NodeHash": "", "OperationHash": "",
    "Capability": "Shell", "Action": "Execute",
    "Settings": {"Command": "echo hi", "TimeoutMs": 30000},
    "AffinityKey": "", "RequireAffinityMatch": True,
    "AssignedBeaconID": None, "Status": "Pending", "TimeoutMs": 300000,
    "CreatedAt": "2026-11-26T22:00:00.331Z", "EnqueuedAt": "2026-11-26T22:00:00.331Z",
    "AssignedAt": None, "DispatchedAt": None, "StartedAt": None, "ClaimedAt": None, "CompletedAt": None,
    "CanceledAt": None, "CancelRequested": False, "CancelReason": "", "LastEventAt": "2026-11-26T22:00:00.331Z",
    "QueueWaitMs": 0, "Priority": 2, "Health": None, "HealthLabel": "Unknown", "HealthReason": "",
    "HealthComputedAt": None, "Result": None, "AttemptNumber": 0, "MaxAttempts": 3, "RetryBackoffMs": 5000,
    "RetryAfter": None, "LastError": None,
}


def test_enqueued_work_item_becomes_a_whole_uv_row():
    row = normalize_action("QP_UpsertWorkItem", {"WorkItem": ENQUEUE}).settings["WorkItem"]
    assert list(row) == list(table("UVQueueWorkItem").columns)
    assert json.loads(row["Settings"]) == {"Command": "echo hi", "TimeoutMs": 30000}
    assert row["AssignedBeaconID"] == "" and row["Result"] == "" and row["LastError"] == ""
    assert row["Health"] == 0.0 and row["CancelRequested"] is False and row["Priority"] == 2
    assert "RequireAffinityMatch" not in row and "CreatedAt" not in row


def test_created_at_fills_enqueued_at_only_when_missing():
    item = {k: v for k, v in ENQUEUE.items() if k != "EnqueuedAt"}
    row = normalize_action("QP_UpsertWorkItem", {"WorkItem": item}).settings["WorkItem"]
    assert row["EnqueuedAt"] == "2026-11-26T22:00:00.331Z"
    row = normalize_action("QP_UpsertWorkItem", {"WorkItem": {**ENQUEUE, "CreatedAt": "other"}}).settings["WorkItem"]
    assert row["EnqueuedAt"] == "2026-11-26T22:00:00.331Z"


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"Status": "Dispatched", "AssignedBeaconID": "bcn-a-1", "AssignedAt": "t1", "DispatchedAt": "t1",
          "QueueWaitMs": 78, "AttemptNumber": 1, "LastEventAt": "t1", "Settings": {"Command": "x"}},
         {"Status": "Dispatched", "AssignedBeaconID": "bcn-a-1", "AssignedAt": "t1", "DispatchedAt": "t1",
          "QueueWaitMs": 78, "AttemptNumber": 1, "LastEventAt": "t1", "Settings": '{"Command":"x"}'}),
        ({"Status": "Complete", "CompletedAt": "t2", "LastEventAt": "t2", "Result": {"Outputs": {"a": 1}}},
         {"Status": "Complete", "CompletedAt": "t2", "LastEventAt": "t2", "Result": '{"Outputs":{"a":1}}'}),
        ({"Status": "Error", "CompletedAt": "t2", "LastEventAt": "t2", "LastError": "boom", "Result": None},
         {"Status": "Error", "CompletedAt": "t2", "LastEventAt": "t2", "LastError": "boom", "Result": ""}),
        ({"Status": "Stalled", "StalledAt": "t3"}, {"Status": "Stalled"}),
        ({"Health": 0.3333, "HealthLabel": "Uncertain", "HealthReason": "retry_burn", "HealthComputedAt": "t4"},
         {"Health": 0.3333, "HealthLabel": "Uncertain", "HealthReason": "retry_burn", "HealthComputedAt": "t4"}),
        ({"Priority": "5"}, {"Priority": 5}),
        ({"WorkItemHash": "wi-other", "Status": "Running"}, {"Status": "Running"}),
    ],
)
def test_work_item_patches_stay_sparse(patch, expected):
    action = normalize_action("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": patch})
    assert action.settings == {"WorkItemHash": "wi-1", "Patch": expected}


def test_event_without_guid_seq_or_time_gets_guid_and_time_and_drops_run_id():
    event = {"WorkItemHash": "wi-1", "RunID": "rn-1", "EventType": "enqueued", "FromStatus": "",
             "ToStatus": "Pending", "Payload": {"Capability": "Shell", "Priority": 0}}
    first = normalize_action("QP_AppendEvent", {"Event": event}).settings["Event"]
    second = normalize_action("QP_AppendEvent", {"Event": event}).settings["Event"]
    assert uuid.UUID(first["EventGUID"]).version == 7 and first["EventGUID"] < second["EventGUID"]
    assert first["EmittedAt"].endswith("Z") and len(first["EmittedAt"]) == 24
    assert "Seq" not in first, "the journal assigns the per-item Seq"
    assert "RunID" not in first and first["BeaconID"] == ""
    assert json.loads(first["Payload"]) == {"Capability": "Shell", "Priority": 0}


def test_event_keeps_a_given_guid_seq_and_time():
    event = {"WorkItemHash": "wi-1", "EventGUID": "g-1", "Seq": 7, "EmittedAt": "t", "EventType": "x"}
    out = normalize_action("QP_AppendEvent", {"Event": event}).settings["Event"]
    assert (out["EventGUID"], out["Seq"], out["EmittedAt"]) == ("g-1", 7, "t")


def test_attempt_fields_map_to_attempt_columns():
    attempt = normalize_action("QP_InsertAttempt", {"Attempt": {
        "WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "bcn-a", "DispatchedAt": "t1", "Outcome": "Dispatched",
    }}).settings["Attempt"]
    assert attempt == {"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "bcn-a", "StartedAt": "t1",
                       "EndedAt": "", "Outcome": "Dispatched", "Error": "", "Deleted": False}
    fail = normalize_action("QP_UpdateAttemptOutcome", {
        "WorkItemHash": "wi-1", "AttemptNumber": 1,
        "Patch": {"CompletedAt": "t2", "Outcome": "Error", "ErrorMessage": "exit 1", "DurationMs": 1917},
    })
    assert fail.settings["Patch"] == {"EndedAt": "t2", "Outcome": "Error", "Error": "exit 1"}


def test_manifest_keeps_the_whole_run_in_manifest_json():
    manifest = {"Hash": "run-OPR-0001-1", "OperationHash": "OPR-0001", "OperationName": "Echo", "Status": "Complete",
                "RunMode": "standard", "StartTime": "t1", "StopTime": "t2", "ElapsedMs": 4250.0,
                "TaskOutputs": {"n": {"ExitCode": 0}}, "WaitingTasks": {}, "StagingPath": "/s/run"}
    row = normalize_action("MS_UpsertManifest", {"Manifest": manifest}).settings["Manifest"]
    assert json.loads(row["ManifestJSON"]) == manifest
    assert row["ElapsedMs"] == 4250 and row["Live"] is False and row["StagingPath"] == "/s/run"
    assert "TaskOutputs" not in row


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("QP_Nope", {}, "unknown bridge action 'QP_Nope'"),
        ("QP_UpsertWorkItem", {"WorkItem": {"Status": "Pending"}}, "WorkItemHash is required"),
        ("QP_UpsertWorkItem", {}, "Settings.WorkItem must be a JSON object, got nothing"),
        ("QP_UpsertWorkItem", [], "Settings must be a JSON object"),
        ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi", "Priority": "high"}}, "Priority must be a number"),
        ("QP_AppendEvent", {"Event": {"EventType": "enqueued"}}, "WorkItemHash is required"),
        ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-1"}}, "AttemptNumber is required"),
        ("QP_UpdateWorkItem", {"WorkItemHash": "wi-1"}, "Settings.Patch must be a JSON object"),
        ("QP_UpdateAttemptOutcome", {"WorkItemHash": "wi-1", "Patch": {}}, "AttemptNumber is required"),
        ("MS_UpsertManifest", {"Manifest": {"Status": "Running"}}, "Hash is required"),
        ("MS_RemoveManifest", {}, "RunHash is required"),
        ("QP_ListWorkItems", {"Filter": {"Sttus": "x"}}, "unknown filter key(s) Sttus"),
        ("QP_ListWorkItems", {"Filter": {"OrderBy": 'Status";DROP'}}, "cannot order by 'Status\";DROP'"),
        ("QP_ListWorkItems", {"Filter": {"OrderBy": "EnqueuedAt; DROP TABLE x"}}, "must be 'Column [ASC|DESC]'"),
        ("QP_ListWorkItems", {"Filter": {"Limit": "lots"}}, "Limit must be a whole number"),
        ("QP_ListWorkItems", {"Filter": {"OrderBy": "Priority SIDEWAYS"}}, "direction must be ASC or DESC"),
    ],
)
def test_bad_actions_are_usage_errors(name, settings, message):
    with pytest.raises(UsageError) as caught:
        normalize_action(name, settings)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_filters_are_completed_and_canonical():
    flt = normalize_action("QP_ListWorkItems", {"Filter": {"Status": "Pending", "OrderBy": "-enqueuedat", "Limit": 99999}})
    assert flt.settings["Filter"] == {"Status": ["Pending"], "Limit": 5000, "OrderBy": "EnqueuedAt DESC"}
    flt = normalize_action("QP_ListWorkItems", {"Filter": {"Limit": 0, "OrderBy": "Priority descending, EnqueuedAt"}})
    assert flt.settings["Filter"] == {"Limit": 500, "OrderBy": "Priority DESC, EnqueuedAt ASC"}
    assert normalize_action("QP_GetEvents", {"WorkItemHash": "wi", "Limit": -3}).settings["Limit"] == 1
    assert normalize_action("MS_ListManifests", {}).settings["Filter"] == {"Limit": 100, "OrderBy": "StartTime DESC"}


def test_generated_event_guids_are_valid_unique_and_time_ordered():
    guids = [new_event_guid() for _ in range(20_000)]  # far more than 4096 per ms: the counter overflows
    assert len(set(guids)) == len(guids)
    assert guids == sorted(guids), "each GUID sorts after the one before, so the index appends"
    for guid in guids[:: 997]:
        parsed = uuid.UUID(guid)
        assert str(parsed) == guid and len(guid) == 36
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    before_ms = time.time_ns() // 1_000_000
    stamp_ms = int(new_event_guid().replace("-", "")[:12], 16)
    assert stamp_ms >= before_ms, "the first 48 bits are the creation time in ms (or just ahead of it)"


def test_generated_event_guids_stay_unique_across_threads():
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [new_event_guid() for _ in range(5_000)], range(4)))
    everything = [g for batch in batches for g in batch]
    assert len(set(everything)) == len(everything)
    assert all(batch == sorted(batch) for batch in batches)
