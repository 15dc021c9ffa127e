"""Deterministic bridge traffic for the trials: every record has a predictable natural key."""

from __future__ import annotations

import json
import random


def item_calls(prefix: str, n: int, rng: random.Random) -> list[tuple[str, dict]]:
    """The bridge calls of one work item's life (enqueue, dispatch, finish), about 8 records."""
    h = f"{prefix}-wi-{n}"
    stamp = f"2026-11-26T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    calls = [
        ("QP_UpsertWorkItem", {"WorkItem": {
            "WorkItemHash": h, "RunHash": f"{prefix}-run{n % 13}", "RunID": f"R{n % 13}", "NodeHash": f"node{n}",
            "OperationHash": f"op{n % 5}", "Capability": "Shell", "Action": "Execute",
            "Settings": {"Command": f"echo {n}", "Args": [n, "x" * rng.randrange(0, 200)]},
            "Status": "Pending", "TimeoutMs": 30000, "Priority": n % 3, "EnqueuedAt": stamp, "MaxAttempts": 2}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventGUID": f"{h}-ev1", "EventType": "enqueued",
                                      "FromStatus": "", "ToStatus": "Pending", "EmittedAt": stamp, "Payload": {"n": n}}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Dispatched", "AssignedBeaconID": f"bcn-{n % 4}",
                                                          "AttemptNumber": 1, "QueueWaitMs": n % 100}}),
        ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": h, "AttemptNumber": 1, "BeaconID": f"bcn-{n % 4}",
                                          "DispatchedAt": stamp, "Outcome": "Dispatched"}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventGUID": f"{h}-ev2", "EventType": "dispatched",
                                      "FromStatus": "Pending", "ToStatus": "Dispatched", "EmittedAt": stamp, "Payload": {}}}),
        ("QP_UpdateAttemptOutcome", {"WorkItemHash": h, "AttemptNumber": 1, "Patch": {
            "CompletedAt": stamp, "Outcome": "Complete" if n % 3 else "Error", "ErrorMessage": "" if n % 3 else f"boom {n}"}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Complete" if n % 3 else "Error",
                                                          "CompletedAt": stamp, "Result": {"ok": bool(n % 3), "n": n},
                                                          "Health": round(rng.random(), 6)}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventGUID": f"{h}-ev3", "EventType": "completed",
                                      "FromStatus": "Dispatched", "ToStatus": "Complete", "EmittedAt": stamp,
                                      "Payload": {"ExitCode": 0 if n % 3 else 1}}}),
    ]
    return calls


def manifest_calls(prefix: str, m: int) -> list[tuple[str, dict]]:
    """A run manifest: running, finished, sometimes removed and re-upserted."""
    run = f"{prefix}-run-{m}"
    calls = [
        ("MS_UpsertManifest", {"Manifest": {"Hash": run, "OperationHash": f"op{m % 5}", "OperationName": f"Op {m}",
                                            "Status": "Running", "RunMode": "Live", "Live": True,
                                            "StartTime": "2026-11-26T09:00:00.000Z", "TaskOutputs": {"t": m}}}),
        ("MS_UpsertManifest", {"Manifest": {"Hash": run, "OperationHash": f"op{m % 5}", "OperationName": f"Op {m}",
                                            "Status": "Complete", "RunMode": "Live", "Live": False, "ElapsedMs": 1000 + m,
                                            "StartTime": "2026-11-26T09:00:00.000Z", "StopTime": "2026-11-26T11:00:00.000Z"}}),
    ]
    if m % 4 == 0:
        calls.append(("MS_RemoveManifest", {"RunHash": run}))
    if m % 8 == 0:
        calls.append(("MS_UpsertManifest", {"Manifest": {"Hash": run, "Status": "Resumed", "StartTime": "2026-11-27T00:00:00.000Z"}}))
    return calls


def traffic(records: int, prefix: str = "t", seed: int = 1, manifest_share: int = 10) -> list[tuple[str, dict]]:
    """About ``records`` bridge calls, work items interleaved like a live queue, some manifests."""
    rng = random.Random(seed)
    scripts, n, m, total = [], 0, 0, 0
    while total < records:
        if manifest_share and (n + m) % manifest_share == manifest_share - 1:
            script = manifest_calls(prefix, m)
            m += 1
        else:
            script = item_calls(prefix, n, rng)
            n += 1
        scripts.append(script)
        total += len(script)
    calls = []
    while scripts:
        i = rng.randrange(min(len(scripts), 8))  # a window of live items, like a busy queue
        calls.append(scripts[i].pop(0))
        if not scripts[i]:
            scripts.pop(i)
    return calls[:records]


def record(journal, calls) -> None:
    """Journal ``calls`` in one transaction (through normalize_action, as the bridges do)."""
    from uvctl.journal import normalize_action

    journal.record_many([normalize_action(name, settings) for name, settings in calls])


def write_jsonl(path, calls) -> None:
    """``calls`` as a JSONL file of bridge actions (the input of ``uvctl journal import``)."""
    with open(path, "w", encoding="utf-8") as handle:
        for name, settings in calls:
            handle.write(json.dumps({"Action": name, "Settings": settings}) + "\n")
