#!/usr/bin/env python3
"""Journal append throughput: single durable calls and batched calls.

    .venv/bin/python benchmarks/bench_journal_append.py [--single 3000] [--batched 100000] [--batch 1000] [--threads 8]

Targets (issue 3): 5,000 single durable appends/s and 50,000 batched records/s.
Prints, per synchronous mode (FULL = fsync per commit, survives power loss; NORMAL = survives
a process crash / kill -9), the rate of:

- ``record``: one pre-normalized event per ``Journal.record`` call (one transaction each);
- ``bridge``: ``QueueBridge.append_event`` end to end (normalize + journal, no backend);
- ``threads``: ``--threads`` threads sharing one journal, each making single ``Journal.record``
  calls (group commit: calls waiting for a commit share the next one and its fsync);
- ``batched``: ``Journal.record_many`` of ``--batch`` records per transaction;
- ``disk floor``: the disk's own durable writes (8 KiB pwrite + fdatasync, preallocated file);
- ``fsync floor``: bare one-row commits on the same disk, the ceiling for single FULL calls.

Each line also shows the rate by the process's CPU time (what the code costs, whatever
else the machine is doing); wall-clock rates include fsync waits and other load.
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


def disk_floor(folder: Path, count: int) -> float:
    """Durable writes per second of the disk itself: one 8 KiB pwrite + fdatasync each, into a
    preallocated file (no SQLite, no size change). No single durable call can beat it."""
    path = folder / "disk-floor.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * 8192 * count)
        os.fsync(fd)
        page = b"x" * 8192
        start = time.perf_counter()
        for i in range(count):
            os.pwrite(fd, page, i * 8192)
            os.fdatasync(fd)
        return rate(count, time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


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


class Clock:
    """Wall and CPU time of a block, accumulated."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def concurrent(journal, count: int, threads: int) -> tuple:
    """``count`` single record calls spread over ``threads`` threads sharing ``journal``."""
    import threading

    per = count // threads
    actions = [normalize_action("QP_AppendEvent", {"Event": event(i)}) for i in range(per * threads)]
    errors: list = []

    def work(k: int) -> None:
        try:
            for action in actions[k * per:(k + 1) * per]:
                journal.record(action)
        except Exception as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    with Clock() as clock:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert not errors and journal.last_seq() == per * threads, errors
    return rate(per * threads, clock.wall), rate(per * threads, clock.cpu)


def run(mode: str, single: int, batched: int, batch: int, threads: int = 8) -> dict:
    from uvctl.bridge import QueueBridge

    with tempfile.TemporaryDirectory(prefix="uvctl-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        out = {"fsync floor": fsync_floor(folder, single, mode)}
        if mode == "full":
            out["disk floor"] = disk_floor(folder, single)
        with Journal.open(folder / "record.sqlite", synchronous=mode) as journal:
            actions = [normalize_action("QP_AppendEvent", {"Event": event(i)}) for i in range(single)]
            with Clock() as clock:
                for action in actions:
                    journal.record(action)
            out["record"] = (rate(single, clock.wall), rate(single, clock.cpu))
        with Journal.open(folder / "threads.sqlite", synchronous=mode) as journal:
            out["threads"] = concurrent(journal, single, threads)
        with Journal.open(folder / "bridge.sqlite", synchronous=mode) as journal, QueueBridge(journal) as bridge:
            with Clock() as clock:
                for i in range(single):
                    bridge.append_event(event(i))
            out["bridge"] = (rate(single, clock.wall), rate(single, clock.cpu))
        with Journal.open(folder / "batched.sqlite", synchronous=mode) as journal:
            clock = Clock()
            for first in range(0, batched, batch):
                chunk = [normalize_action("QP_AppendEvent", {"Event": event(i)}) for i in range(first, min(batched, first + batch))]
                with clock:
                    journal.record_many(chunk)
            out["batched"] = (rate(batched, clock.wall), rate(batched, clock.cpu))
            assert journal.last_seq() == batched
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Journal append throughput.")
    parser.add_argument("--single", type=int, default=3000, help="single calls per measurement (default 3000)")
    parser.add_argument("--batched", type=int, default=100_000, help="records for the batched measurement (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="records per record_many call (default 1000)")
    parser.add_argument("--threads", type=int, default=8, help="threads sharing one journal (default 8; group commit with FULL)")
    args = parser.parse_args(argv)
    print(f"journal append: {args.single} single calls, {args.batched} batched records in batches of {args.batch}")
    for mode in ("full", "normal"):
        figures = run(mode, args.single, args.batched, args.batch, args.threads)
        print(f"synchronous={mode.upper()}")
        if "disk floor" in figures:
            print(f"  disk floor (8 KiB pwrite+fdatasync){figures['disk floor']:>9,.0f} /s   "
                  f"ratio to the single target {figures['disk floor'] / TARGET_SINGLE:.2f}")
        print(f"  fsync floor (bare 1-row commits)  {figures['fsync floor']:>10,.0f} /s")
        for key, label, target in (("record", "record (1 event per transaction)", TARGET_SINGLE),
                                   ("threads", f"{args.threads:>2} threads, single calls      ", TARGET_SINGLE),
                                   ("bridge", "bridge append_event (normalize+)", TARGET_SINGLE),
                                   ("batched", "batched record_many             ", TARGET_BATCHED)):
            wall, cpu = figures[key]
            print(f"  {label}  {wall:>10,.0f} /s   ratio to target {wall / target:.2f}"
                  f"   (by CPU time {cpu:,.0f} /s, ratio {cpu / target:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
