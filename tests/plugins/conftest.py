"""Fixtures of the plugin tests: a protocol-faithful Ultravisor coordinator with legacy beacons.

The coordinator speaks the HTTP protocol measured on the real server
(reference/ultravisor-mesh.md): ``GET /Beacon`` lists beacon records, ``POST
/Beacon/Work/Dispatch`` runs one work item and answers ``200 {Success, WorkItemHash,
Outputs, Log}``, ``500 {Success: false, Error}`` for a beacon error or a timeout,
``503`` when no beacon is registered and ``400`` without a Capability. An ``AffinityKey``
equal to a beacon's Name routes to it without checking capabilities; the coordinator
injects ``QueueMetadata`` into Settings. The beacons behind it are in-process legacy
persistence beacons that keep their rows in a :class:`uvctl_memory.MemoryStore`, answer
``Outputs`` like upstream's deleted QueuePersistence / ManifestStore beacons did, and can
report duplicates the way SQL-backed beacons do (a ``UNIQUE constraint failed`` error).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from uvctl_memory import MemoryStore

collect_ignore = ["example_plugin"]  # the example plugin's own tests run in its own pytest session


@dataclass
class LegacyBeacon:
    """One registered beacon and the store behind it."""

    name: str
    capabilities: list
    status: str = "Online"
    duplicates_as_errors: bool = False  # answer a duplicate like a SQL beacon: an Error
    hang: bool = False  # never answer (the dispatch times out)
    max_concurrent: int = 8
    error: str | None = None  # answer every work item with this ErrorMessage
    error_actions: tuple = ()  # ... only these actions (empty: every action)
    store: MemoryStore = field(default_factory=MemoryStore)
    beacon_id: str = ""
    received: list = field(default_factory=list)

    def record(self) -> dict:
        return {
            "BeaconID": self.beacon_id,
            "Name": self.name,
            "SessionID": "anonymous",
            "Capabilities": list(self.capabilities),
            "Status": self.status,
            "CurrentWorkItems": [],
            "MaxConcurrent": self.max_concurrent,
            "Tags": {},
        }

    def run(self, capability: str, action: str, settings: dict) -> tuple[bool, dict | str]:
        """``(True, Outputs)`` or ``(False, ErrorMessage)`` for one work item."""
        settings = {k: v for k, v in settings.items() if k != "QueueMetadata"}
        self.received.append((capability, action, settings))
        if self.error is not None and (not self.error_actions or action in self.error_actions):
            return False, self.error
        if capability not in self.capabilities or not action.startswith(("QP_", "MS_")):
            return False, f"Unknown capability/action {capability}/{action}"
        result = self.store.apply(action, settings)
        if self.duplicates_as_errors and result.get("AlreadyPresent"):  # as a SQLite beacon words it
            columns = "UVQueueWorkItemEvent.EventGUID" if action == "QP_AppendEvent" else \
                "UVQueueWorkItemAttempt.WorkItemHash, UVQueueWorkItemAttempt.AttemptNumber"
            return False, f"SQLITE_CONSTRAINT: UNIQUE constraint failed: {columns}"
        result.pop("Available", None)
        return True, result


class FakeCoordinator:
    """The coordinator's beacon and work routes, served on 127.0.0.1."""

    def __init__(self):
        self.beacons: dict[str, LegacyBeacon] = {}
        self.dispatches: list[dict] = []
        self._counter = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def add_beacon(self, name: str, capabilities=("QueuePersistence", "ManifestStore"), **kwargs) -> LegacyBeacon:
        slug = re.sub(r"[^a-z0-9]", "-", name.lower())
        beacon = LegacyBeacon(name, list(capabilities), beacon_id=f"bcn-{slug}-{int(time.time() * 1000)}", **kwargs)
        self.beacons[name] = beacon
        return beacon

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, method: str, path: str, body) -> tuple[int, object]:
        if method == "GET" and path == "/Beacon":
            return 200, [b.record() for b in self.beacons.values()]
        if method == "GET" and path == "/status":
            return 200, {"Status": "Running", "AuthEnabled": False, "AuthMode": "promiscuous"}
        if method == "POST" and path == "/Beacon/Work/Dispatch":
            return self.dispatch(body if isinstance(body, dict) else {})
        return 404, {"Error": f"Route not found: {method} {path}"}

    def dispatch(self, body: dict) -> tuple[int, dict]:
        self.dispatches.append(body)
        if not body.get("Capability"):
            return 400, {"Success": False, "Error": "Capability is required."}
        if not self.beacons:
            return 503, {"Success": False, "Error": "No Beacon workers are registered."}
        timeout = int(body.get("TimeoutMs") or 300000)
        beacon = self.beacons.get(body.get("AffinityKey") or "")
        if beacon is None or beacon.hang:  # strict affinity to a missing name, or a silent beacon
            return 500, {"Success": False, "Error": f"Direct dispatch timed out after {timeout}ms."}
        with self._lock:
            self._counter += 1
            work_hash = f"wi-unknown-unknown-{int(time.time() * 1000)}-{self._counter}"
        settings = dict(body.get("Settings") or {})
        settings["QueueMetadata"] = {"RunID": "", "WorkItemHash": work_hash, "AttemptNumber": 1}
        ok, answer = beacon.run(body["Capability"], body.get("Action") or "Execute", settings)
        if ok:
            return 200, {"Success": True, "WorkItemHash": work_hash, "Outputs": answer, "Log": []}
        return 500, {"Success": False, "Error": answer or "Unknown error"}

    def _handler(self):
        coordinator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer in one segment: no delayed-ACK stalls
            wbufsize = -1

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status, data = coordinator.handle(self.command, self.path, body)
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):  # keep test output clean
                pass

        return Handler


@pytest.fixture
def coordinator():
    """A running fake coordinator (no beacons yet); ``coordinator.add_beacon(name)`` adds one."""
    fake = FakeCoordinator()
    yield fake
    fake.close()
