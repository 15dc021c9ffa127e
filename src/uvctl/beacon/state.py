"""What a running beacon says about itself: ``beacon-state.json`` in the data dir.

The beacon keeps its counters in memory (:class:`BeaconState`) and writes them atomically
(0600) on every event worth knowing and at most every :data:`WRITE_EVERY` seconds between;
``uvctl beacon status`` and ``uvctl persistence status`` read the file. A file whose
process is gone says the beacon is not running (and since when it last spoke).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from ..statefile import process_alive, read_json, write_json
from ..timestamps import now_iso

STATE_FILE = "beacon-state.json"
WHAT = "beacon state file"
#: Seconds between two writes of the counters while nothing else happens.
WRITE_EVERY = 2.0
#: Answers whose latency the percentiles are taken over (the most recent ones).
LATENCY_WINDOW = 10_000


def state_path():
    """``<data dir>/beacon-state.json``."""
    from ..paths import data_file

    return data_file(STATE_FILE)


class BeaconState:
    """Counters and connection facts of one running beacon, written to the state file."""

    def __init__(self, coordinator: str, transport: str, names: list, path=None):
        self.path = path or state_path()
        self._lock = threading.Lock()
        self._written = 0.0
        self._latencies: deque = deque(maxlen=LATENCY_WINDOW)
        self.data = {
            "Pid": os.getpid(), "StartedAt": now_iso(), "Coordinator": coordinator, "Transport": transport,
            "Names": names, "Connected": False, "BeaconIDs": {}, "ConnectedSince": None, "Stopping": False,
            "WritesAnswered": 0, "ReadsAnswered": 0, "AnswersFailed": 0, "AnswersLate": 0, "AnswersUndelivered": 0,
            "Reconnects": 0, "LastError": None, "LastErrorAt": None, "CoordinatorPersistence": None,
            "Delivery": {"State": "idle", "LastError": None, "LastDeliveredAt": None, "Pruned": 0},
            "LatencyMs": None, "UpdatedAt": None,
        }

    # -- events ----------------------------------------------------------------------
    def connected(self, beacon_ids: dict) -> None:
        with self._lock:
            self.data.update(Connected=True, BeaconIDs=dict(beacon_ids), ConnectedSince=now_iso())
        self.write(force=True)

    def disconnected(self, reason: str) -> None:
        with self._lock:
            was = self.data["Connected"]
            self.data.update(Connected=False, ConnectedSince=None)
            if was:
                self.data["Reconnects"] += 1
        self.error(reason)

    def error(self, reason: str) -> None:
        with self._lock:
            self.data.update(LastError=reason, LastErrorAt=now_iso())
        self.write(force=True)

    def set(self, **fields) -> None:
        with self._lock:
            self.data.update(fields)
        self.write(force=True)

    def delivery(self, **fields) -> None:
        with self._lock:
            self.data["Delivery"].update(fields)
        self.write()

    def pruned(self, rows: int) -> None:
        """Count log rows the retention pruned."""
        with self._lock:
            self.data["Delivery"]["Pruned"] += rows
        self.write()

    def answered(self, read: bool, ok: bool, seconds: float, late: bool, sent: bool) -> None:
        """Count one answer and its latency (frame in to answer out)."""
        with self._lock:
            if not sent:
                self.data["AnswersUndelivered"] += 1
            elif not ok:
                self.data["AnswersFailed"] += 1
            elif read:
                self.data["ReadsAnswered"] += 1
            else:
                self.data["WritesAnswered"] += 1
            if late:
                self.data["AnswersLate"] += 1
            self._latencies.append(seconds)
        self.write()

    # -- output ----------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The state as written: counters plus latency percentiles over the recent answers."""
        with self._lock:
            out = {**self.data, "Delivery": dict(self.data["Delivery"])}
            latencies = list(self._latencies)
        if latencies:
            out["LatencyMs"] = percentiles(latencies)
        out["UpdatedAt"] = now_iso()
        return out

    def write(self, force: bool = False) -> None:
        """Write the state file (at most every WRITE_EVERY seconds unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._written < WRITE_EVERY:
            return
        self._written = now
        try:
            write_json(self.path, self.snapshot(), what=WHAT, keep_rename=False)
        except Exception:  # a full disk must not stop answering: the journal says what matters
            pass


def percentiles(seconds: list) -> dict:
    """``{p50, p99, max}`` in milliseconds of ``seconds``."""
    ordered = sorted(seconds)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50": round(pick(0.50), 3), "p99": round(pick(0.99), 3), "max": round(ordered[-1] * 1000, 3),
            "Samples": len(ordered)}


def read_state(path=None) -> dict | None:
    """The last state a beacon wrote, with ``Running`` (its process still alive); None if none."""
    data = read_json(path or state_path(), default=None, what=WHAT)
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("Pid"), int):
        from ..errors import UvctlError

        raise UvctlError(f"{WHAT} {path or state_path()} is corrupt (expected an object with Pid); remove it, "
                         f"the beacon writes it again")
    data["Running"] = process_alive(data["Pid"]) and not data.get("Stopped")
    return data
