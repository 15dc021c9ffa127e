"""Sample UV rows for tests, already projected to the UV schema columns.

Each builder returns a fresh dict; keyword arguments override or add columns. ``n`` makes
timestamps and GUIDs distinct and ordered, so results are deterministic.
"""

from __future__ import annotations

import json


def timestamp(n: int) -> str:
    """An ISO-8601 UTC timestamp ``n`` seconds after a fixed origin, in JavaScript's format."""
    minutes, seconds = divmod(int(n), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"2026-01-{1 + days:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.000Z"


def work_item(work_item_hash: str, n: int = 0, **columns) -> dict:
    """A ``UVQueueWorkItem`` row enqueued at ``timestamp(n)``."""
    row = {
        "WorkItemHash": work_item_hash,
        "RunID": "run-1",
        "RunHash": "rh-1",
        "NodeHash": "node-1",
        "OperationHash": "op-1",
        "Capability": "Shell",
        "Action": "Execute",
        "Settings": json.dumps({"Command": "true", "n": n}),
        "AffinityKey": "",
        "AssignedBeaconID": "",
        "Status": "Pending",
        "Priority": 0,
        "EnqueuedAt": timestamp(n),
        "QueueWaitMs": 0,
        "TimeoutMs": 300000,
        "AttemptNumber": 0,
        "MaxAttempts": 1,
        "LastError": "",
        "Result": "",
    }
    row.update(columns)
    return row


def event_guid(n: int) -> str:
    """A deterministic 36-character GUID (the width of ``EventGUID``)."""
    return f"00000000-0000-4000-8000-{int(n):012d}"


def event(work_item_hash: str, n: int, **columns) -> dict:
    """A ``UVQueueWorkItemEvent`` row with GUID ``event_guid(n)`` and ``Seq`` n."""
    row = {
        "EventGUID": event_guid(n),
        "WorkItemHash": work_item_hash,
        "EventType": "enqueued",
        "Payload": json.dumps({"n": n}),
        "EmittedAt": timestamp(n),
        "Seq": n,
        "FromStatus": "",
        "ToStatus": "Pending",
        "BeaconID": "",
    }
    row.update(columns)
    return row


def attempt(work_item_hash: str, attempt_number: int, **columns) -> dict:
    """A ``UVQueueWorkItemAttempt`` row, just dispatched."""
    row = {
        "WorkItemHash": work_item_hash,
        "AttemptNumber": attempt_number,
        "BeaconID": "bcn-worker-1",
        "StartedAt": timestamp(attempt_number),
        "EndedAt": "",
        "Outcome": "Dispatched",
        "Error": "",
    }
    row.update(columns)
    return row


def manifest(run_hash: str, n: int = 0, **columns) -> dict:
    """A ``UVManifest`` row started at ``timestamp(n)``."""
    row = {
        "Hash": run_hash,
        "OperationHash": "op-1",
        "OperationName": "Nightly build",
        "Status": "Running",
        "RunMode": "Standard",
        "Live": False,
        "StartTime": timestamp(n),
        "StopTime": "",
        "ElapsedMs": 0,
        "ManifestJSON": json.dumps({"Hash": run_hash, "TaskOutputs": {}}),
        "StagingPath": f"/staging/{run_hash}",
    }
    row.update(columns)
    return row
