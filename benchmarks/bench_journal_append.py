#!/usr/bin/env python3
"""Journal append throughput: single durable calls and batched calls.

    .venv/bin/python benchmarks/bench_journal_append.py [--single 3000] [--batched 100000] [--batch 1000]

Targets (issue 3): 5,000 single durable appends/s and 50,000 batched records/s.
Prints, per synchronous mode (FULL = fsync per commit, survives power loss; NORMAL = survives
a process crash / kill -9), the rate of:

- ``record``: one pre-normalized event per ``Journal.record`` call (one transaction each);
- ``bridge``: ``QueueBridge.append_event`` end to end (normalize + journal, no backend);
- ``batched``: ``Journal.record_many`` of ``--batch`` records per transaction;
- ``fsync floor``: bare one-row commits on the same disk, the ceiling for single FULL calls.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from uvctl.journal import Journal, normalize_action  # noqa: E402

TARGET_SINGLE, TARGET_BATCHED = 5_000, 50_000


def event(i: int) -> dict:
    """An event as the coordinator sends it (object payload, RunID, no GUID/Seq/EmittedAt)."""
    return {"WorkItemHash": f"wi-unknown-unknown-1795730400331-{i // 3}", "RunID": f"rn-vm-1-{i // 3}",
            "EventType": ("enqueued", "dispatched", "completed")[i % 3], "FromStatus": "Pending", "ToStatus": "Running",
            "BeaconID": "bcn-uvgen-echo-1795730400000", "Payload": {"QueueWaitMs": i % 97, "Path": "poll"}}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def fsync_floor(folder: Path, count: int, mode: str) -> float:
    conn = sqlite3.connect(folder / f"floor-{mode}.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {mode}")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")
    start = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (x) VALUES (?)", ("x" * 300,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return rate(count, elapsed)


def run(mode: str, single: int, batched: int, batch: int) -> dict:
    from uvctl.bridge import QueueBridge

    with tempfile.TemporaryDirectory(prefix="uvctl-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        out = {"fsync floor": fsync_floor(folder, single, mode)}
        with Journal.open(folder / "record.sqlite", synchronous=mode) as journal:
            actions = [normalize_action("QP_AppendEvent", {"Event": event(i)}) for i in range(single)]
            start = time.perf_counter()
            for action in actions:
                journal.record(action)
            out["record"] = rate(single, time.perf_counter() - start)
        with Journal.open(folder / "bridge.sqlite", synchronous=mode) as journal, QueueBridge(journal) as bridge:
            start = time.perf_counter()
            for i in range(single):
                bridge.append_event(event(i))
            out["bridge"] = rate(single, time.perf_counter() - start)
        with Journal.open(folder / "batched.sqlite", synchronous=mode) as journal:
            elapsed = 0.0
            for first in range(0, batched, batch):
                chunk = [normalize_action("QP_AppendEvent", {"Event": event(i)}) for i in range(first, min(batched, first + batch))]
                start = time.perf_counter()
                journal.record_many(chunk)
                elapsed += time.perf_counter() - start
            out["batched"] = rate(batched, elapsed)
            assert journal.last_seq() == batched
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Journal append throughput.")
    parser.add_argument("--single", type=int, default=3000, help="single calls per measurement (default 3000)")
    parser.add_argument("--batched", type=int, default=100_000, help="records for the batched measurement (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="records per record_many call (default 1000)")
    args = parser.parse_args(argv)
    print(f"journal append: {args.single} single calls, {args.batched} batched records in batches of {args.batch}")
    for mode in ("full", "normal"):
        figures = run(mode, args.single, args.batched, args.batch)
        print(f"synchronous={mode.upper()}")
        print(f"  fsync floor (bare 1-row commits)  {figures['fsync floor']:>10,.0f} /s")
        print(f"  record (1 event per transaction)  {figures['record']:>10,.0f} /s   "
              f"ratio to target {figures['record'] / TARGET_SINGLE:.2f}  to floor {figures['record'] / figures['fsync floor']:.2f}")
        print(f"  bridge append_event (normalize+)  {figures['bridge']:>10,.0f} /s   ratio to target {figures['bridge'] / TARGET_SINGLE:.2f}")
        print(f"  batched record_many               {figures['batched']:>10,.0f} /s   ratio to target {figures['batched'] / TARGET_BATCHED:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
