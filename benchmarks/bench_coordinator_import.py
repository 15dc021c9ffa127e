"""Throughput of `journal import --coordinator`: a coordinator stub's history over HTTP into a journal.

Run: .venv/bin/python benchmarks/bench_coordinator_import.py [--items N] [--events K] [--manifests M]
Prints the wall time of the first import and of a re-import (nothing new), work items and
events per second, and HTTP requests per work item (one events request each, plus the pages).
The coordinator is the test stub of tests/coordinator (in-process, loopback HTTP).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import load_test_module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--manifests", type=int, default=100)
    args = parser.parse_args()
    load_test_module("coordinator_stub", "tests/meadowproxy/coordinator_stub.py")
    uv = load_test_module("uv_coordinator", "tests/coordinator/uv_coordinator.py")

    from uvctl.journal import Journal
    from uvctl.journal.coordinator_import import import_coordinator
    from uvctl.mesh import Coordinator

    stub = uv.UltravisorStub()
    row_id = 0
    for n in range(args.items):
        work_hash = f"wi-unknown-unknown-{1795730000000 + n}-{n}"
        stub.history.append({"IDBeaconWorkItem": n + 1, "WorkItemHash": work_hash, "Capability": "Shell",
                             "Action": "Execute", "Status": "Complete", "Settings": json.dumps({"Command": "true"}),
                             "EnqueuedAt": f"2026-11-26T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"})
        for k in range(args.events):
            row_id += 1
            stub.events.setdefault(work_hash, []).append({"IDBeaconWorkItemEvent": row_id, "WorkItemHash": work_hash,
                                                          "EventType": f"step{k}", "Payload": "{}"})
    for m in range(args.manifests):
        stub.manifests[f"run-op-{m}"] = {"Hash": f"run-op-{m}", "OperationHash": "op", "Status": "Complete",
                                         "StartTime": f"2026-11-26T22:00:{m % 60:02d}.000Z", "TaskOutputs": {"m": m}}
    try:
        with tempfile.TemporaryDirectory() as tmp, Coordinator(stub.url) as coordinator, \
                Journal.open(Path(tmp) / "journal.sqlite", synchronous="normal") as journal:
            start = time.perf_counter()
            first = import_coordinator(journal, coordinator)
            first_s = time.perf_counter() - start
            requests = len(stub.requests)
            start = time.perf_counter()
            again = import_coordinator(journal, coordinator)
            again_s = time.perf_counter() - start
    finally:
        stub.close()
    read = first["Read"]
    print(f"first import: {read['WorkItems']} work items, {read['Events']} events, {read['Manifests']} manifests "
          f"in {first_s:.2f} s ({read['WorkItems'] / first_s:.0f} work items/s, {read['Events'] / first_s:.0f} events/s); "
          f"journaled {first['Journaled']}")
    print(f"HTTP requests: {requests} ({requests / max(1, read['WorkItems']):.2f} per work item; "
          f"{first['HistoryRequests']} history pages)")
    print(f"re-import: {again_s:.2f} s, journaled {again['Journaled']}, skipped {again['Skipped']} "
          f"(ratio re-import / first: {again_s / first_s:.2f})")


if __name__ == "__main__":
    main()
