"""Journals for the queue / runs views, filled through the bridges as Ultravisor fills them."""

from __future__ import annotations

import json

import pytest

#: Ten work items of two runs, enqueued a minute apart (the newest last), a third of them failed.
ITEMS = 10
RUNS = ("run-OPR-0001-1795730403123", "run-OPR-0002-1795730423246")


def enqueued_at(n: int) -> str:
    return f"2026-11-26T22:{n:02d}:00.000Z"


def work_item_hash(n: int) -> str:
    return f"wi-{RUNS[n % 2]}-node{n}-{n}"


def traffic(items: int = ITEMS) -> list[tuple[str, dict]]:
    """Bridge calls for ``items`` work items (enqueue, dispatch, attempt, outcome) and the two runs."""
    calls = []
    for r, run in enumerate(RUNS):
        calls.append(("MS_UpsertManifest", {"Manifest": {
            "Hash": run, "OperationHash": f"OPR-000{r + 1}", "OperationName": f"Operation {r + 1}", "Status": "Running",
            "RunMode": "standard", "Live": True, "StartTime": f"2026-11-26T21:5{r}:00.000Z",
            "TaskManifests": {"node": {"Status": "Running"}}}}))
    for n in range(items):
        h, failed = work_item_hash(n), n % 3 == 0
        calls += [
            ("QP_UpsertWorkItem", {"WorkItem": {
                "WorkItemHash": h, "RunHash": RUNS[n % 2], "RunID": "", "NodeHash": f"node{n}",
                "OperationHash": f"OPR-000{n % 2 + 1}", "Capability": "Shell", "Action": "Execute",
                "Settings": {"Command": f"echo {n}"}, "Status": "Pending", "EnqueuedAt": enqueued_at(n), "MaxAttempts": 1}}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventType": "enqueued", "FromStatus": "", "ToStatus": "Pending",
                                          "EmittedAt": enqueued_at(n), "Payload": {"n": n}}}),
            ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Running", "AssignedBeaconID": f"bcn-{n % 3}",
                                                              "AttemptNumber": 1, "DispatchedAt": enqueued_at(n)}}),
            ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": h, "AttemptNumber": 1, "BeaconID": f"bcn-{n % 3}",
                                              "DispatchedAt": enqueued_at(n), "Outcome": "Running"}}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventType": "dispatched", "FromStatus": "Pending",
                                          "ToStatus": "Running", "BeaconID": f"bcn-{n % 3}", "Payload": {}}}),
            ("QP_UpdateAttemptOutcome", {"WorkItemHash": h, "AttemptNumber": 1, "Patch": {
                "CompletedAt": "2026-11-26T23:00:00.000Z", "Outcome": "Error" if failed else "Complete",
                "ErrorMessage": f"boom {n}" if failed else ""}}),
            ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Error" if failed else "Complete",
                                                              "LastError": f"boom {n}" if failed else "",
                                                              "CompletedAt": "2026-11-26T23:00:00.000Z"}}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventType": "failed" if failed else "completed",
                                          "FromStatus": "Running", "ToStatus": "Error" if failed else "Complete",
                                          "Payload": {"ExitCode": 1 if failed else 0}}}),
        ]
    for r, run in enumerate(RUNS):
        calls.append(("MS_UpsertManifest", {"Manifest": {
            "Hash": run, "OperationHash": f"OPR-000{r + 1}", "OperationName": f"Operation {r + 1}", "Status": "Complete",
            "RunMode": "standard", "Live": False, "StartTime": f"2026-11-26T21:5{r}:00.000Z",
            "StopTime": "2026-11-26T23:00:00.000Z", "ElapsedMs": 4250, "TaskManifests": {"node": {"Status": "Complete"}}}}))
    return calls


def fill(journal, calls) -> None:
    """Run ``calls`` through ``uvctl.bridge.execute``; every one must succeed."""
    from uvctl.bridge import execute

    for name, settings in calls:
        answer = execute(name, settings, journal=journal)
        assert answer["Success"], (name, answer)


@pytest.fixture
def filled(data_dir):
    """The data dir's journal, filled with :func:`traffic` through the bridges (then closed)."""
    from uvctl.journal import Journal

    with Journal.open() as journal:
        fill(journal, traffic())
    return data_dir


@pytest.fixture
def uv(cli_runner):
    """``uv(*args)`` → click Result; ``uv.json(*args)`` → the parsed --json output (exit 0 checked)."""

    def run(*args, **kwargs):
        return cli_runner(list(args), **kwargs)

    def as_json(*args):
        result = run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    run.json = as_json
    return run
