#!/usr/bin/env python3
"""The persistence beacon under the coordinator's load, over a real WebSocket, durable.

    .venv/bin/python benchmarks/bench_beacon.py [--frames 20000] [--paced 10000] [--soak 1000000] [--in-flight 8]

``uvctl beacon run`` runs as its own process with ``UVCTL_JOURNAL_SYNC=full`` (every answer
waits for an fsynced commit) against the coordinator stub of the tests
(tests/beacon/beacon_coordinator.py), which pushes frames shaped as the captured ones: per
work item an upsert, an ``enqueued`` event, a Running patch, a ``completed`` event and a
Complete patch (5 writes, as a WebSocket-pushed item costs on the real coordinator).
Measured in the same run:

- ``sustained``: answered writes/s with ``--in-flight`` frames in flight (the MaxConcurrent);
- ``journal batched``: ``Journal.record_many`` of 1,000 normalized records per transaction on
  the same disk (FULL), the journal's own batched append rate; the ratio is the goal's
  (≥ 0.5×, and ≥ 2,000 answered writes/s);
- the machine's own limits on the same disk: ``fsync floor`` (bare one-row FULL commits/s,
  one after another) and ``journal, N threads`` (N threads each making single durable
  ``Journal.record`` calls on one journal: group commit, no network). With N frames in
  flight every answer waits for its commit, so at most N writes share one fsync: the
  beacon's ceiling is that N-thread rate, whatever the batched rate is;
- ``transport alone``: a client that answers every frame at once, journaling nothing, on the
  same stub and socket: what the WebSocket round trip and the stub cost by themselves (no
  beacon can answer faster than that);
- ``latency at 1,000/s``: frames paced at 1,000/s: the beacon's own frame-in to answer-out
  time (p50, p99, from its state file) and the stub's round trip (goal p50 ≤ 2 ms, p99 ≤ 50 ms);
- ``soak`` (``--soak N``): N frames at full speed with the sql backend (SQLite) assigned, so
  delivery and retention run too: the beacon's RSS every 10 % (goal < 150 MB, flat), and the
  journal's size and log rows at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, load_test_module

sys.path.insert(0, str(ROOT / "src"))

from uvctl.journal import Journal, normalize_action  # noqa: E402

stub_module = load_test_module("beacon_coordinator", "tests/beacon/beacon_coordinator.py")
append_bench = load_test_module("bench_journal_append", "benchmarks/bench_journal_append.py")
TARGET_RATE, TARGET_RATIO, TARGET_P50, TARGET_P99, TARGET_RSS = 2000, 0.5, 2.0, 50.0, 150


def item_frames(n: int) -> list[tuple[str, str, str]]:
    """``(capability, action, settings)`` of the n-th work item's 5 writes, as the coordinator sends them."""
    work_hash = f"wi-run-OPR-0001-1796688952238-brc-dispatch-{1796688952252 + n}-{n}"
    at = "2026-12-08T00:15:52.252Z"
    item = {"WorkItemHash": work_hash, "RunHash": "run-OPR-0001-1796688952238", "RunID": "", "NodeHash": "brc-dispatch",
            "OperationHash": "OPR-0001", "Capability": "Shell", "Action": "Execute",
            "Settings": {"Command": f"echo {n}", "Parameters": "", "InputData": ""}, "AffinityKey": "",
            "RequireAffinityMatch": False, "AssignedBeaconID": None, "Status": "Pending", "TimeoutMs": 20000,
            "CreatedAt": at, "EnqueuedAt": at, "AssignedAt": None, "DispatchedAt": None, "StartedAt": None,
            "ClaimedAt": None, "CompletedAt": None, "CanceledAt": None, "CancelRequested": False, "CancelReason": "",
            "LastEventAt": at, "QueueWaitMs": 0, "Priority": 0, "Health": None, "HealthLabel": "Unknown",
            "HealthReason": "", "HealthComputedAt": None, "Result": None, "AttemptNumber": 0, "MaxAttempts": 1,
            "RetryBackoffMs": 5000, "RetryAfter": None, "LastError": None}
    return [
        ("QP_UpsertWorkItem", {"WorkItem": item}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": work_hash, "RunID": "", "EventType": "enqueued", "FromStatus": "",
                                      "ToStatus": "Pending", "Payload": {"Capability": "Shell", "Action": "Execute",
                                                                         "Priority": 0, "AffinityKey": ""}}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": work_hash, "Patch": {"Status": "Running", "StartedAt": at,
                                                                    "LastEventAt": at, "AttemptNumber": 1}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": work_hash, "EventType": "completed", "FromStatus": "Running",
                                      "ToStatus": "Complete", "BeaconID": "bcn-worker1-1796688938759",
                                      "Payload": {"DurationMs": 15}}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": work_hash, "Patch": {"Status": "Complete", "CompletedAt": at,
                                                                    "LastEventAt": at,
                                                                    "Result": {"Outputs": {"ExitCode": 0}, "Log": []}}}),
    ]


class Frames:
    """The stream of persistence work items: each the real frame shape, QueueMetadata included."""

    def __init__(self, start: int = 0):
        self.n = start

    def next_batch(self):
        """One work item's 5 frames as ``(item, encoded frame)``."""
        out = []
        for k, (action, settings) in enumerate(item_frames(self.n)):
            wi = f"wi-unknown-unknown-{1796688970367 + self.n}-{self.n * 5 + k}"
            meta = {"RunID": "", "WorkItemHash": wi, "EnqueuedAt": "2026-12-08T00:16:10.367Z",
                    "DispatchedAt": "2026-12-08T00:16:10.368Z", "QueueWaitMs": 1, "AttemptNumber": 1, "HubInstanceID": ""}
            item = {"WorkItemHash": wi, "RunID": "", "Capability": "QueuePersistence", "Action": action,
                    "Settings": {**settings, "QueueMetadata": meta}, "OperationHash": "", "TimeoutMs": 5000,
                    "AttemptNumber": 1, "QueueMetadata": meta}
            out.append((item, json.dumps({"EventType": "WorkItem", "WorkItem": item})))
        self.n += 1
        return out


def drive(stub, frames: Frames, count: int, in_flight: int, pace: float | None = None, every=None) -> dict:
    """Push ``count`` frames keeping ``in_flight`` unanswered (optionally ``pace`` per second)."""
    window = threading.Semaphore(in_flight)
    done = threading.Event()
    stats = {"answered": 0, "failed": 0, "timed_out": 0, "rtt": []}
    lock = threading.Lock()

    def finished(entry):
        with lock:
            if entry.timed_out:
                stats["timed_out"] += 1
            elif entry.answer[0] != "complete":
                stats["failed"] += 1
            else:
                stats["answered"] += 1
            if len(stats["rtt"]) < 200_000 and entry.answered_at:
                stats["rtt"].append(entry.answered_at - entry.sent_at)
            if stats["answered"] + stats["failed"] + stats["timed_out"] >= count:
                done.set()
        window.release()

    stub.on_done = finished
    start = time.perf_counter()
    sent, queue = 0, []
    while sent < count:
        if not queue:
            queue = frames.next_batch()
        item, text = queue.pop(0)
        window.acquire()
        if pace:
            delay = start + sent / pace - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        stub.send(item, text)
        sent += 1
        if every and sent % every == 0:
            every_hook(sent)
    done.wait(120)
    stats["seconds"] = time.perf_counter() - start
    stub.on_done = None
    return stats


every_hook = None


def journal_batched(folder: Path, count: int = 50_000, batch: int = 1000) -> float:
    """The journal's batched append rate (FULL) on the same disk: records/s."""
    frames = Frames(10_000_000)
    actions = []
    while len(actions) < count:
        for item, _ in frames.next_batch():
            settings = {k: v for k, v in item["Settings"].items() if k != "QueueMetadata"}
            actions.append(normalize_action(item["Action"], settings))
    with Journal.open(folder / "batched.sqlite", synchronous="full") as journal:
        start = time.perf_counter()
        for i in range(0, len(actions), batch):
            journal.record_many(actions[i:i + batch])
        return len(actions) / (time.perf_counter() - start)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of ``pid`` in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def percentile(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


ECHO = """
import json, sys
from websockets.sync.client import connect
ws = connect(sys.argv[1], compression=None, max_size=None).__enter__()
ws.send(json.dumps({"Action": "BeaconRegister", "Name": "echo", "Capabilities": ["QueuePersistence", "ManifestStore"],
                    "MaxConcurrent": int(sys.argv[2]), "Tags": {}}))
ws.recv()
for text in ws:
    frame = json.loads(text)
    if frame.get("EventType") == "WorkItem":
        ws.send(json.dumps({"Action": "WorkComplete", "WorkItemHash": frame["WorkItem"]["WorkItemHash"],
                            "Outputs": {"Success": True}, "Log": []}))
"""


def transport_alone(stub, frames, count: int, in_flight: int) -> float:
    """Answered frames/s of a client that journals nothing (the transport's own ceiling)."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO, f"ws://127.0.0.1:{stub.port}/", str(in_flight)])
    stub.wait_registered(len(stub.registrations) + 1, 60)
    drive(stub, frames, 1000, in_flight)
    result = drive(stub, frames, count, in_flight)
    proc.terminate()
    proc.wait(30)
    return result["answered"] / result["seconds"]


def start_beacon(stub, data_dir: Path, in_flight: int, extra_env=None):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir), "UVCTL_JOURNAL_SYNC": "full", **(extra_env or {})}
    log = open(data_dir.parent / "beacon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "uvctl", "beacon", "run", "--coordinator", stub.url,
                             "--max-concurrent", str(in_flight), "--quiet"], env=env, stderr=log,
                            stdout=subprocess.DEVNULL)
    stub.wait_registered(len(stub.registrations) + 1, 60)
    return proc, log


def stop_beacon(proc, log) -> int:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(120)
    log.close()
    return code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The persistence beacon's speed and memory.")
    parser.add_argument("--frames", type=int, default=20_000, help="frames of the sustained run")
    parser.add_argument("--paced", type=int, default=10_000, help="frames of the 1,000/s latency run")
    parser.add_argument("--soak", type=int, default=0, help="frames of the memory soak (0: skip)")
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args(argv)
    global every_hook
    with tempfile.TemporaryDirectory(prefix="uvctl-bench-beacon-") as tmp:
        folder = Path(tmp)
        batched = journal_batched(folder)
        floor = append_bench.fsync_floor(folder, 2000, "full")
        with Journal.open(folder / "threads.sqlite", synchronous="full") as journal:
            threaded, _ = append_bench.concurrent(journal, 16_000, args.in_flight)
        stub = stub_module.CoordinatorStub(keep_answers=False)
        data_dir = folder / "data"
        proc, log = start_beacon(stub, data_dir, args.in_flight)
        frames = Frames()
        drive(stub, frames, 2000, args.in_flight)  # warm-up
        sustained = drive(stub, frames, args.frames, args.in_flight)
        rate = sustained["answered"] / sustained["seconds"]
        print(f"beacon, {args.in_flight} frames in flight, UVCTL_JOURNAL_SYNC=full, {args.frames} frames")
        print(f"  sustained answered writes   {rate:>9,.0f} /s   (failed {sustained['failed']}, "
              f"timed out {sustained['timed_out']}); goal >= {TARGET_RATE:,}/s: {'met' if rate >= TARGET_RATE else 'NOT met'}")
        print(f"  journal batched append      {batched:>9,.0f} /s   (record_many, 1,000 per transaction, same disk)")
        print(f"  ratio beacon / batched      {rate / batched:>9.2f}      goal >= {TARGET_RATIO}: "
              f"{'met' if rate / batched >= TARGET_RATIO else 'NOT met'}")
        print(f"  fsync floor (1-row commits) {floor:>9,.0f} /s   the disk's durable commits one after another")
        print(f"  journal, {args.in_flight} threads          {threaded:>9,.0f} /s   single durable records, group "
              f"commit: the ceiling with {args.in_flight} in flight")
        print(f"  ratio beacon / that ceiling {rate / threaded:>9.2f}")
        echo = transport_alone(stub, frames, args.frames, args.in_flight)
        print(f"  transport alone             {echo:>9,.0f} /s   a client answering at once, journaling nothing "
              f"(the WebSocket and the stub): {echo / batched:.2f} of the batched rate")
        assert stop_beacon(proc, log) == 0
        # latency at 1,000 writes/s, read from a fresh beacon's own state file
        paced_dir = folder / "paced"
        proc, log = start_beacon(stub, paced_dir, args.in_flight)
        paced = drive(stub, frames, args.paced, args.in_flight, pace=1000.0)
        state = json.loads((paced_dir / "beacon-state.json").read_text())
        assert stop_beacon(proc, log) == 0
        state = json.loads((paced_dir / "beacon-state.json").read_text())
        beacon_ms = state["LatencyMs"]
        p50, p99 = beacon_ms["p50"], beacon_ms["p99"]
        print(f"  at 1,000 writes/s ({args.paced} frames): beacon frame-in to answer-out p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, max {beacon_ms['max']:.1f} ms; goal p50 <= {TARGET_P50}, p99 <= {TARGET_P99}: "
              f"{'met' if p50 <= TARGET_P50 and p99 <= TARGET_P99 else 'NOT met'}")
        print(f"     stub round trip (WebSocket both ways) p50 {percentile(paced['rtt'], 0.5):.2f} ms, "
              f"p99 {percentile(paced['rtt'], 0.99):.2f} ms; timed out {paced['timed_out']}")
        if args.soak:
            soak_dir = folder / "soak"
            soak_dir.mkdir()
            env = {**os.environ, "UVCTL_DATA_DIR": str(soak_dir)}
            subprocess.run([sys.executable, "-m", "uvctl", "persistence", "assign", "--backend", "sql", "--db",
                            f"sqlite:///{folder / 'soak-target.sqlite'}"], env=env, check=True, capture_output=True)
            proc, log = start_beacon(stub, soak_dir, args.in_flight)
            samples = []
            every_hook = lambda sent: samples.append((sent, *rss_mb(proc.pid)))  # noqa: E731
            soak = drive(stub, frames, args.soak, args.in_flight, every=max(1, args.soak // 10))
            samples.append((args.soak, *rss_mb(proc.pid)))
            assert stop_beacon(proc, log) == 0
            with Journal.open(soak_dir / "journal.sqlite") as journal:
                stats = journal.stats()
            peak = max(s[2] for s in samples)
            print(f"  soak {args.soak:,} frames in {soak['seconds']:.0f} s ({soak['answered'] / soak['seconds']:,.0f}/s, "
                  f"timed out {soak['timed_out']}), sql backend on SQLite assigned:")
            print("     RSS MB at " + ", ".join(f"{s[0] // 1000}k: {s[1]:.0f}" for s in samples))
            print(f"     peak RSS {peak:.0f} MB; goal < {TARGET_RSS} MB: {'met' if peak < TARGET_RSS else 'NOT met'}")
            log_rows = sum(v["Records"] for v in stats["Log"].values())
            print(f"     journal after the soak: {stats['SizeBytes'] / 1e6:.0f} MB, {log_rows:,} log rows left of "
                  f"{stats['LastSeq']:,} journaled, state {stats['State']['WorkItems']:,} work items and "
                  f"{stats['State']['Events']:,} events")
        stub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
