#!/usr/bin/env python3
"""Write a small Ultravisor data directory, laid out exactly as a real coordinator writes it.

    python scripts/make_example_datadir.py [--out examples/ultravisor-datadir] [--items 24] [--seed 7]

The result (see /work/shared/reference/ultravisor-datadir.md for the real thing):

    <out>/data/beacon/beacon-queue.sqlite   meadow DDL (41-column BeaconWorkItem, 10-column
                                            BeaconWorkItemEvent, 14-column BeaconWorkItemAttempt,
                                            BeaconRun, TimelineRecord, ...), WAL mode
    <out>/staging/<OpHash>-<YYYY-MM-DD-HH-MM-SS-mmm>_<NN>/Manifest_<OpHash>.json   (tab-indented)

Values follow what Ultravisor writes: NULL CreateDate, meadow ``UpdateDate`` without ``T``/``Z``,
ISO app timestamps with ms and ``Z``, Health as a float string or ``''``, Settings/Result/Payload
as JSON text, no EventGUID/Seq/EmittedAt on events, attempt ``StartedAt`` always NULL. The same
arguments always produce the same content.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

BASE = datetime(2026, 11, 26, 22, 0, 0, tzinfo=timezone.utc)

# (column, meadow type); "PK" = AutoIdentity. Order is the real column order.
_AUDIT = [("CreateDate", "DateTime"), ("CreatingIDUser", "Integer"), ("UpdateDate", "DateTime"),
          ("UpdatingIDUser", "Integer"), ("Deleted", "Boolean"), ("DeleteDate", "DateTime"),
          ("DeletingIDUser", "Integer")]
TABLES = {
    "BeaconWorkItem": [("IDBeaconWorkItem", "PK"), ("GUIDBeaconWorkItem", "String"), *_AUDIT,
        ("WorkItemHash", "String"), ("RunID", "String"), ("RunHash", "String"), ("NodeHash", "String"),
        ("OperationHash", "String"), ("Capability", "String"), ("Action", "String"), ("Settings", "Text"),
        ("AffinityKey", "String"), ("Priority", "Integer"), ("Status", "String"), ("AssignedBeaconID", "String"),
        ("TimeoutMs", "Integer"), ("MaxAttempts", "Integer"), ("AttemptNumber", "Integer"),
        ("RetryBackoffMs", "Integer"), ("EnqueuedAt", "DateTime"), ("AssignedAt", "DateTime"),
        ("DispatchedAt", "DateTime"), ("StartedAt", "DateTime"), ("CompletedAt", "DateTime"),
        ("CanceledAt", "DateTime"), ("CancelRequested", "Boolean"), ("CancelReason", "String"),
        ("LastError", "Text"), ("LastEventAt", "DateTime"), ("QueueWaitMs", "Integer"), ("Health", "String"),
        ("HealthLabel", "String"), ("HealthReason", "String"), ("HealthComputedAt", "DateTime"), ("Result", "Text")],
    "BeaconWorkItemEvent": [("IDBeaconWorkItemEvent", "PK"), ("CreateDate", "DateTime"), ("CreatingIDUser", "Integer"),
        ("WorkItemHash", "String"), ("RunID", "String"), ("EventType", "String"), ("FromStatus", "String"),
        ("ToStatus", "String"), ("BeaconID", "String"), ("Payload", "Text")],
    "BeaconWorkItemAttempt": [("IDBeaconWorkItemAttempt", "PK"), ("CreateDate", "DateTime"),
        ("CreatingIDUser", "Integer"), ("UpdateDate", "DateTime"), ("UpdatingIDUser", "Integer"),
        ("WorkItemHash", "String"), ("AttemptNumber", "Integer"), ("BeaconID", "String"), ("DispatchedAt", "DateTime"),
        ("StartedAt", "DateTime"), ("CompletedAt", "DateTime"), ("Outcome", "String"), ("ErrorMessage", "Text"),
        ("DurationMs", "Integer")],
    "BeaconRun": [("IDBeaconRun", "PK"), ("GUIDBeaconRun", "String"), *_AUDIT, ("RunID", "String"),
        ("IdempotencyKey", "String"), ("SubmitterTag", "String"), ("State", "String"), ("StartedAt", "DateTime"),
        ("EndedAt", "DateTime"), ("CanceledAt", "DateTime"), ("CancelReason", "String"), ("Metadata", "Text")],
    "TimelineRecord": [("IDTimelineRecord", "PK"), ("GUIDTimelineRecord", "String"), *_AUDIT,
        ("EventGUID", "String"), ("At", "DateTime"), ("EndAt", "DateTime"), ("EventType", "String"),
        ("RunHash", "String"), ("OperationHash", "String"), ("WorkItemHash", "String"), ("Capability", "String"),
        ("Action", "String"), ("BeaconID", "String"), ("Status", "String"), ("DurationMs", "Integer"),
        ("RawRefHash", "String"), ("InsertedAt", "DateTime")],
    "BeaconAffinityBinding": [("IDBeaconAffinityBinding", "PK"), ("CreateDate", "DateTime"),
        ("CreatingIDUser", "Integer"), ("UpdateDate", "DateTime"), ("UpdatingIDUser", "Integer"),
        ("AffinityKey", "String"), ("BeaconID", "String"), ("ExpiresAt", "DateTime"), ("ClearedAt", "DateTime")],
}
INDEXED = {
    "BeaconWorkItem": ("WorkItemHash", "RunID", "Capability", "Priority", "Status", "AssignedBeaconID"),
    "BeaconWorkItemEvent": ("WorkItemHash",),
    "BeaconWorkItemAttempt": ("WorkItemHash",),
    "BeaconRun": ("RunID", "IdempotencyKey"),
    "TimelineRecord": ("At", "EndAt", "EventGUID", "RunHash", "WorkItemHash", "Capability"),
}
_DDL = {"PK": "INTEGER PRIMARY KEY AUTOINCREMENT", "String": "TEXT NOT NULL DEFAULT ''", "Text": "TEXT",
        "Integer": "INTEGER NOT NULL DEFAULT 0", "Boolean": "INTEGER NOT NULL DEFAULT 0", "DateTime": "TEXT"}

# Work-item stories: (final Status, event chain, attempt outcome or None).
STORIES = [
    ("Complete", ["enqueued", "dispatched", "completed"], "Complete"),
    ("Complete", ["enqueued", "dispatched", "completed"], "Complete"),
    ("Complete", ["enqueued", "dispatched", "completed"], "Complete"),
    ("Error", ["enqueued", "dispatched", "failed"], "Error"),
    ("Canceled", ["enqueued", "canceled"], None),
    ("Stalled", ["enqueued", "dispatched", "stalled"], "Dispatched"),
    ("Stalled", ["enqueued", "dispatched", "cancel_requested", "stalled"], "Dispatched"),
    ("Running", ["enqueued", "dispatched"], "Dispatched"),
    ("Assigned", ["enqueued"], None),
    ("Pending", ["enqueued"], None),
]


def iso(moment: datetime) -> str:
    """``2026-11-26T22:01:23.365Z``, as JavaScript's toISOString writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def meadow_stamp(moment: datetime) -> str:
    """Meadow's UpdateDate: seconds, no ``T``, no zone."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def js(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def create_tables(conn: sqlite3.Connection) -> None:
    for name, cols in TABLES.items():
        conn.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {_DDL[t]}' for c, t in cols)})")
        for col in INDEXED.get(name, ()):
            conn.execute(f"CREATE INDEX IX_M_T_{name}_C_{col} ON {name} ({col})")


def insert(conn: sqlite3.Connection, name: str, row: dict) -> int:
    cols = [c for c, t in TABLES[name] if t != "PK" and c in row]
    cur = conn.execute(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                       [row[c] for c in cols])
    return cur.lastrowid


class Example:
    """Builds the example: the queue database rows and the manifests of a few operation runs."""

    def __init__(self, items: int, seed: int):
        self.rng = random.Random(seed)
        self.items = items
        self.counter = 0
        self.timeline = []  # (At, row) appended in time order
        self.runs = []

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def build(self, conn: sqlite3.Connection, staging: Path) -> None:
        create_tables(conn)
        runs = [self.run_manifest(i) for i in range(3)]
        for i in range(self.items):
            story = STORIES[i % len(STORIES)]
            run = runs[i % len(runs)] if i % 4 == 0 else None
            self.work_item(conn, i, story, run)
        for at, row in sorted(self.timeline, key=lambda pair: pair[0]):
            insert(conn, "TimelineRecord", row)
        for run in runs:
            self.write_manifest(staging, run)

    def work_item(self, conn, i: int, story, run) -> None:
        status, chain, outcome = story
        self.counter += 1
        enqueued = BASE + timedelta(seconds=5 * i, milliseconds=self.rng.randrange(1000))
        ms = int(enqueued.timestamp() * 1000)
        run_hash, node, op = (run["Hash"], "brc-dispatch", run["OperationHash"]) if run else ("", "", "")
        run_id = "" if run else f"rn-vm-{ms}-{self.counter}"
        work_hash = f"wi-{run_hash or 'unknown'}-{node or 'unknown'}-{ms}-{self.counter}"
        beacon = f"bcn-uvgen-{['echo', 'fail', 'hang'][i % 3]}-{int(BASE.timestamp() * 1000)}"
        capability = "Shell"
        settings = {"Command": f"echo item {i}", "TimeoutMs": 30000}
        if i % 7 == 3:
            settings["QueueMetadata"] = {"EnqueuedAt": iso(enqueued), "Attempt": 1}  # scheduler-tick injection
        dispatched = enqueued + timedelta(milliseconds=40 + self.rng.randrange(200))
        ended = dispatched + timedelta(milliseconds=300 + self.rng.randrange(3000))
        is_dispatched = "dispatched" in chain
        row = {
            "GUIDBeaconWorkItem": "", "CreateDate": None, "CreatingIDUser": 0,
            "UpdateDate": meadow_stamp(ended if is_dispatched else enqueued), "UpdatingIDUser": 0, "Deleted": 0,
            "DeleteDate": None, "DeletingIDUser": 0, "WorkItemHash": work_hash, "RunID": run_id, "RunHash": run_hash,
            "NodeHash": node, "OperationHash": op, "Capability": capability, "Action": "Execute",
            "Settings": js(settings), "AffinityKey": "", "Priority": i % 3, "Status": status,
            "AssignedBeaconID": beacon if is_dispatched or status == "Assigned" else "",
            "TimeoutMs": [5000, 30000, 300000][i % 3], "MaxAttempts": 3 if status == "Running" else 1,
            "AttemptNumber": 1 if is_dispatched else 0, "RetryBackoffMs": 5000, "EnqueuedAt": iso(enqueued),
            "AssignedAt": iso(dispatched) if is_dispatched and i % 2 else None,
            "DispatchedAt": iso(dispatched) if is_dispatched else None, "StartedAt": iso(dispatched) if is_dispatched else None,
            "CompletedAt": iso(ended) if status in ("Complete", "Error", "Stalled") else None,
            "CanceledAt": iso(dispatched) if status == "Canceled" else None,
            "CancelRequested": 1 if "cancel_requested" in chain else 0,
            "CancelReason": "operator request" if status == "Canceled" or "cancel_requested" in chain else "",
            "LastError": "exit code 1" if status == "Error" else "", "LastEventAt": iso(ended if is_dispatched else enqueued),
            "QueueWaitMs": int((dispatched - enqueued).total_seconds() * 1000) if is_dispatched else 0,
            "Health": ["", "0", "0.3333"][i % 3], "HealthLabel": ["Unknown", "Unknown", "Uncertain"][i % 3],
            "HealthReason": ["", "insufficient_signal", "retry_burn"][i % 3],
            "HealthComputedAt": iso(dispatched) if i % 3 else None,
            "Result": self.result(status, i),
        }
        insert(conn, "BeaconWorkItem", row)
        times = {"enqueued": enqueued, "dispatched": dispatched, "completed": ended, "failed": ended,
                 "stalled": ended, "canceled": dispatched, "cancel_requested": dispatched + timedelta(milliseconds=90)}
        previous = ""
        for event in chain:
            to_status = {"enqueued": "Assigned" if i % 2 else "Pending", "dispatched": "Running", "completed": "Complete",
                         "failed": "Error", "stalled": "Stalled", "canceled": "Canceled"}.get(event, previous)
            payload = {
                "enqueued": {"Capability": capability, "Action": "Execute", "Priority": i % 3, "AffinityKey": ""},
                "dispatched": {"QueueWaitMs": row["QueueWaitMs"], "Path": "poll"},
                "completed": {"DurationMs": int((ended - dispatched).total_seconds() * 1000)},
                "failed": {"Error": "exit code 1", "DurationMs": int((ended - dispatched).total_seconds() * 1000)},
                "stalled": {"LastEventAt": iso(dispatched), "StalledSinceMs": 120177},
            }.get(event, {"Reason": "operator request"})
            insert(conn, "BeaconWorkItemEvent", {
                "CreateDate": None, "CreatingIDUser": 0, "WorkItemHash": work_hash, "RunID": run_id, "EventType": event,
                "FromStatus": previous, "ToStatus": to_status,
                "BeaconID": "" if event in ("enqueued", "canceled", "cancel_requested") else beacon, "Payload": js(payload),
            })
            if event != "dispatched":  # poll claims leave no timeline row
                self.timeline_row(times[event], event, work_hash, run_hash, op, beacon, to_status)
            previous = to_status
        if outcome:
            insert(conn, "BeaconWorkItemAttempt", {
                "CreateDate": None, "CreatingIDUser": 0, "UpdateDate": meadow_stamp(ended) if outcome != "Dispatched" else None,
                "UpdatingIDUser": 0, "WorkItemHash": work_hash, "AttemptNumber": 1, "BeaconID": beacon,
                "DispatchedAt": iso(dispatched), "StartedAt": None,
                "CompletedAt": iso(ended) if outcome != "Dispatched" else None, "Outcome": outcome,
                "ErrorMessage": "exit code 1" if outcome == "Error" else "",
                "DurationMs": int((ended - dispatched).total_seconds() * 1000) if outcome != "Dispatched" else 0,
            })
        if not run:
            insert(conn, "BeaconRun", {
                "GUIDBeaconRun": self.uuid(), "CreateDate": None, "CreatingIDUser": 0, "UpdateDate": None,
                "UpdatingIDUser": 0, "Deleted": 0, "DeleteDate": None, "DeletingIDUser": 0, "RunID": run_id,
                "IdempotencyKey": "", "SubmitterTag": "example", "State": "Active", "StartedAt": iso(enqueued),
                "EndedAt": None, "CanceledAt": None, "CancelReason": "", "Metadata": js({}),
            })

    def result(self, status: str, i: int):
        if status == "Complete":
            return js({"Outputs": {"StdOut": f"item {i}\n", "ExitCode": 0}, "Log": [f"started item {i}", "done"]})
        if status == "Error":
            return js({"Error": "exit code 1", "Log": [f"started item {i}", "exit code 1"]})
        return None

    def timeline_row(self, at: datetime, event: str, work_hash, run_hash, op, beacon, status) -> None:
        guid = self.uuid()
        stamp = iso(at)
        self.timeline.append((stamp, {
            "GUIDTimelineRecord": self.uuid(), "CreateDate": stamp, "CreatingIDUser": 0, "UpdateDate": stamp,
            "UpdatingIDUser": 0, "Deleted": 0, "DeleteDate": None, "DeletingIDUser": 0, "EventGUID": guid,
            "At": stamp, "EndAt": None, "EventType": event[:1].upper() + event[1:], "RunHash": run_hash,
            "OperationHash": op, "WorkItemHash": work_hash, "Capability": "Shell", "Action": "Execute",
            "BeaconID": beacon, "Status": status, "DurationMs": 0, "RawRefHash": guid, "InsertedAt": stamp,
        }))

    def run_manifest(self, i: int) -> dict:
        op = f"OPR-{i + 1:04d}"
        start = BASE + timedelta(seconds=3 + 20 * i, milliseconds=123 * (i + 1))
        status = ["Complete", "Waiting", "Failed"][i]
        stop = start + timedelta(seconds=4, milliseconds=250)
        node = "brc-dispatch"
        manifest = {
            "Hash": f"run-{op}-{int(start.timestamp() * 1000)}", "OperationHash": op,
            "OperationName": ["Simple echo", "Approval gate", "Failing shell"][i], "Status": status,
            "RunMode": "standard", "StartTime": iso(start), "StopTime": "" if status == "Waiting" else iso(stop),
            "ElapsedMs": 0 if status == "Waiting" else 4250,
            "Output": {"Message": f"run {i}"},
            "TaskManifests": {node: {"NodeHash": node, "DefinitionHash": "beacon-dispatch", "TaskTypeName": "BeaconDispatch",
                                     "Category": "Beacon", "Capability": "Shell", "Action": "Execute", "Tier": 1,
                                     "Executions": [{"StartTime": iso(start), "Status": status}]}},
            "TimingSummary": {"TotalMs": 4250, "Tasks": 1},
            "EventLog": [{"Timestamp": iso(start), "TimestampMs": int(start.timestamp() * 1000), "NodeHash": node,
                          "EventName": "TaskStart", "Message": "dispatching", "Verbosity": 1}],
            "Errors": [{"NodeHash": node, "Message": "exit code 1", "Timestamp": iso(stop)}] if status == "Failed" else [],
            "Log": [f"Run {i} started", f"Manifest written to <staging>/{op}"],
            "GlobalState": {}, "OperationState": {"Step": i},
            "TaskOutputs": {node: {"StdOut": "", "ExitCode": -1, "BeaconID": "bcn-uvgen-fail", "_BeaconError": True}}
            if status == "Failed" else {node: {"StdOut": "hello\n", "ExitCode": 0}},
        }
        if status == "Waiting":
            manifest["WaitingTasks"] = {node: {"PromptMessage": "Approve?", "OutputAddress": "Approval",
                                               "ResumeEventName": "Approved", "Timestamp": iso(stop)}}
        return manifest

    def write_manifest(self, staging: Path, manifest: dict) -> None:
        start = datetime.strptime(manifest["StartTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        folder = staging / (f"{manifest['OperationHash']}-{start.strftime('%Y-%m-%d-%H-%M-%S')}-"
                            f"{start.microsecond // 1000:03d}_{self.rng.randrange(10, 100)}")
        folder.mkdir(parents=True)
        (folder / f"Manifest_{manifest['OperationHash']}.json").write_text(json.dumps(manifest, indent="\t"))
        (folder / "run.log").write_text(f"{manifest['StartTime']} run {manifest['Hash']} {manifest['Status']}\n")


def build(out: Path, items: int = 24, seed: int = 7) -> Path:
    """Write the example data directory under ``out`` (replacing it); returns ``out``."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    beacon = out / "data" / "beacon"
    beacon.mkdir(parents=True)
    conn = sqlite3.connect(beacon / "beacon-queue.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    with conn:
        Example(items, seed).build(conn, out / "staging")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for leftover in ("-wal", "-shm"):
        Path(f"{beacon / 'beacon-queue.sqlite'}{leftover}").unlink(missing_ok=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent.parent / "examples" / "ultravisor-datadir"
    parser.add_argument("--out", type=Path, default=default, help=f"target folder (replaced; default {default})")
    parser.add_argument("--items", type=int, default=24, help="number of work items (default 24)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.items < 1:
        parser.error("--items must be at least 1")
    out = build(args.out, args.items, args.seed)
    print(f"wrote an example Ultravisor data dir to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
