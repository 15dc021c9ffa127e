"""A stub of the Ultravisor coordinator's beacon side, replaying captured persistence traffic.

The real coordinator (Ultravisor 1.3.24) is not on any registry here. This stub follows its
documented protocol and the frames captured from it, exactly:
/work/shared/reference/ultravisor-persistence-beacon.md §1-§5 and ultravisor-mesh.md §2, §4.1,
§5.1, with the traffic itself taken from /work/shared/reference/captures/*.jsonl, never invented:

- one port for HTTP and WebSocket (the upgrade handler ignores the path);
- WebSocket: ``BeaconRegister`` → ``BeaconRegistered`` with a new ``bcn-<slug>-<ms>`` ID every
  time; work is pushed as ``{"EventType": "WorkItem", "WorkItem": ...}``; ``WorkComplete`` /
  ``WorkError`` answer it; ``Deregister`` or a closed socket removes the beacon at once;
- HTTP: ``POST /Beacon/Register`` (same Name → same BeaconID), ``/Beacon/Work/Poll`` (one item
  or ``{"WorkItem": null}`` at once, never a long-poll; name-routed by capability here, since
  the persistence beacons are the names ``queue-persistence`` / ``manifest-store``),
  ``/Beacon/Work/<hash>/Complete`` / ``/Error`` (``200 {"Status": ...}`` or 400 not found),
  ``GET`` / ``DELETE /Beacon/<id>``;
- ``GET /Ultravisor/Persistence/Status`` (``unassigned`` unless a test sets it), and
  ``POST /1.0/Authenticate`` with the ``SessionID`` cookie when ``secured``: then every other
  route answers 401 and a WebSocket upgrade without the cookie is rejected;
- an item not answered within its ``TimeoutMs`` (5000) is dropped (a lost write); a late
  answer is "not found".

:meth:`CoordinatorStub.replay` sends a capture's received work items in their captured order,
each only after the answers the captured beacon had sent before it arrived have come back
(so the sweep's one-at-a-time calls stay one at a time, and live bursts stay concurrent).
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

#: Copies of shared/reference/captures/*.jsonl (the frames of the live runs, unchanged).
CAPTURES = Path(__file__).resolve().parent / "captures"


def load_capture(name: str) -> list[dict]:
    """The lines of ``captures/<name>.jsonl``."""
    with open(CAPTURES / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def captured_items(lines: list[dict]) -> list[dict]:
    """The work items a captured beacon received, in arrival order."""
    out = []
    for line in lines:
        if line["dir"] != "in":
            continue
        frame = line.get("frame") or {}
        item = frame.get("WorkItem") if frame.get("EventType") == "WorkItem" else line.get("poll")
        if item:
            out.append(item)
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "-", name.lower())


class Pending:
    """One pushed or pollable item waiting for its answer."""

    def __init__(self, item: dict):
        self.item = item
        self.hash = item["WorkItemHash"]
        self.answer = None  # ("complete", Outputs) or ("error", ErrorMessage)
        self.done = threading.Event()
        self.sent_at = None
        self.answered_at = None
        self.timed_out = False


class CoordinatorStub:
    """The coordinator's beacon side on 127.0.0.1:<port>; see the module docstring."""

    def __init__(self, secured: bool = False, timeout_ms: int | None = None, keep_answers: bool = True):
        self.secured = secured
        self.timeout_ms = timeout_ms
        #: Keep every Pending in ``answers`` (a benchmark of a million frames does not).
        self.keep_answers = keep_answers
        #: Called with each Pending once answered or timed out (a benchmark's window of frames in flight).
        self.on_done = None
        self.persistence = {b: {"State": "unassigned", "AssignedBeaconID": None, "IDBeaconConnection": 0,
                                "LastError": None, "BootstrappedAt": None, "AssignedAt": None}
                            for b in ("Queue", "Manifest")}
        self.sessions: set = set()
        self.lock = threading.Condition()
        self.beacons: dict = {}  # BeaconID -> {"Name", "Capabilities", "MaxConcurrent", "ws"}
        self.registrations: list = []  # every BeaconRegistered/Register answer, in order
        self.deregistered: list = []
        self.pending: dict = {}  # hash -> Pending (pushed or queued, not yet answered)
        self.poll_queue: list = []  # Pending items waiting for an HTTP poll
        self.answers: list = []  # every Pending, answered or timed out, in send order
        self.late_answers = 0
        self._last_ms = 0
        self.refuse = False  # a restarting coordinator: connections are dropped at once
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.start()

    def close(self) -> None:
        self.drop_all()
        self._server.shutdown()
        self._server.server_close()

    # -- waiting ---------------------------------------------------------------------
    def wait_registered(self, count: int = 1, timeout: float = 30.0) -> list:
        """Block until ``count`` registrations happened in all; the registrations."""
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.registrations) >= count, timeout):
                raise AssertionError(f"{len(self.registrations)} registrations after {timeout} s, wanted {count}")
            return list(self.registrations)

    def online(self, capability: str | None = None) -> list:
        with self.lock:
            return [bid for bid, b in self.beacons.items() if capability is None or capability in b["Capabilities"]]

    def wait_online(self, capabilities=("QueuePersistence", "ManifestStore"), timeout: float = 30.0) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: all(
                    any(c in b["Capabilities"] for b in self.beacons.values()) for c in capabilities), timeout):
                raise AssertionError(f"no beacon with {capabilities} online after {timeout} s")

    def wait_deregistered(self, count: int = 1, timeout: float = 30.0) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.deregistered) >= count, timeout):
                raise AssertionError("the beacon did not deregister")

    # -- sending work ----------------------------------------------------------------
    def send(self, item: dict, text: str | None = None) -> Pending:
        """Dispatch one work item to the beacon with its capability (pushed or queued for a poll);
        ``text`` is the item's frame already encoded (a benchmark's)."""
        item = json.loads(json.dumps(item)) if text is None else item
        if self.timeout_ms is not None:
            item["TimeoutMs"] = self.timeout_ms
        entry = Pending(item)
        with self.lock:
            target = next((b for b in self.beacons.values() if item["Capability"] in b["Capabilities"]), None)
            entry.sent_at = time.monotonic()
            self.pending[entry.hash] = entry
            if self.keep_answers:
                self.answers.append(entry)
            if target is not None and target.get("ws") is not None:
                ws = target["ws"]
            else:
                ws = None
                self.poll_queue.append(entry)
        if ws is not None:
            try:
                ws.send(text or json.dumps({"EventType": "WorkItem", "WorkItem": item}))
            except Exception:
                pass  # the socket is gone: the item times out, as on the real coordinator
        return entry

    def replay(self, lines: list[dict], timeout: float = 60.0) -> list[Pending]:
        """Send the capture's received items in order, each after the answers captured before it."""
        sent: dict = {}
        waits: list = []  # hashes whose captured answer came before the next item
        out = []
        for line in lines:
            if line["dir"] == "out":
                frame = line.get("frame") or {}
                work_hash = frame.get("WorkItemHash") or line.get("WorkItemHash")
                if work_hash in sent:
                    waits.append(sent[work_hash])
                continue
            items = captured_items([line])
            if not items:
                continue
            for entry in waits:
                if not entry.done.wait(timeout):
                    raise AssertionError(f"no answer for {entry.hash} ({entry.item['Action']}) within {timeout} s")
            waits = []
            entry = self.send(items[0])
            sent[entry.hash] = entry
            out.append(entry)
        for entry in out:
            entry.done.wait(timeout)
        return out

    # -- faults ------------------------------------------------------------------------
    def drop_all(self) -> None:
        """Close every WebSocket (the beacons are deregistered at once, as on a drop)."""
        with self.lock:
            sockets = [b["ws"] for b in self.beacons.values() if b.get("ws") is not None]
            self.beacons = {bid: b for bid, b in self.beacons.items() if b.get("ws") is None}
            self.lock.notify_all()
        for ws in sockets:
            try:
                ws.close()
            except Exception:
                pass

    def restart(self) -> None:
        """A coordinator restart: every beacon dropped and forgotten, pending items lost."""
        self.drop_all()
        with self.lock:
            self.beacons.clear()
            for entry in self.pending.values():
                entry.timed_out = True
                entry.done.set()
            self.pending.clear()
            self.poll_queue.clear()
            self.sessions.clear()

    # -- bookkeeping -------------------------------------------------------------------
    def _answer(self, work_hash: str, kind: str, value) -> bool:
        with self.lock:
            entry = self.pending.pop(work_hash, None)
            if entry is None:
                self.late_answers += 1
                return False
            entry.answer = (kind, value)
            entry.answered_at = time.monotonic()
            self.lock.notify_all()
        entry.done.set()
        if self.on_done is not None:
            self.on_done(entry)
        return True

    def _reap(self) -> None:
        """Drop items not answered within their TimeoutMs (the coordinator's per-dispatch timer)."""
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self.lock:
                expired = [e for e in self.pending.values()
                           if now - e.sent_at > (e.item.get("TimeoutMs") or 5000) / 1000]
                for entry in expired:
                    del self.pending[entry.hash]
                    if entry in self.poll_queue:
                        self.poll_queue.remove(entry)
            for entry in expired:
                entry.timed_out = True
                entry.done.set()
                if self.on_done is not None:
                    self.on_done(entry)

    def _register(self, body: dict, ws=None) -> dict:
        name = body.get("Name")
        caps = body.get("Capabilities")
        with self.lock:
            existing = next((bid for bid, b in self.beacons.items() if b["Name"] == name and ws is None
                             and b.get("ws") is None), None)
            if existing is None:  # bcn-<slug>-<ms>; two registrations in one ms get distinct ms
                self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            beacon_id = existing or f"bcn-{_slug(name)}-{self._last_ms}"
            self.beacons[beacon_id] = {"Name": name, "Capabilities": caps, "MaxConcurrent": body.get("MaxConcurrent") or 1,
                                       "ws": ws}
            self.registrations.append({"BeaconID": beacon_id, "Name": name, "Capabilities": caps,
                                       "Transport": "websocket" if ws else "http"})
            self.lock.notify_all()
        return {"BeaconID": beacon_id, "Name": name, "SessionID": "anonymous", "Capabilities": caps, "Status": "Online",
                "CurrentWorkItems": [], "MaxConcurrent": body.get("MaxConcurrent") or 1, "Tags": body.get("Tags") or {}}

    def _deregister(self, beacon_id: str) -> bool:
        with self.lock:
            found = self.beacons.pop(beacon_id, None) is not None
            if found:
                self.deregistered.append(beacon_id)
                self.lock.notify_all()
            return found

    def _poll(self, beacon_id: str):
        with self.lock:
            beacon = self.beacons.get(beacon_id)
            if beacon is None:
                return None
            for entry in self.poll_queue:
                if entry.item["Capability"] in beacon["Capabilities"]:
                    self.poll_queue.remove(entry)
                    return entry.item
        return None

    # -- WebSocket ---------------------------------------------------------------------
    def _websocket(self, ws, cookie: str | None) -> None:
        beacon_id = None
        try:
            for text in ws:
                frame = json.loads(text)
                action = frame.get("Action")
                if action == "BeaconRegister":
                    if self.secured and cookie not in self.sessions:
                        ws.send(json.dumps({"EventType": "BeaconRejected", "Reason": "Authentication required."}))
                        continue
                    beacon_id = self._register(frame, ws)["BeaconID"]
                    ws.send(json.dumps({"EventType": "BeaconRegistered", "BeaconID": beacon_id}))
                elif action == "WorkComplete":
                    self._answer(frame["WorkItemHash"], "complete", frame.get("Outputs"))
                elif action == "WorkError":
                    self._answer(frame["WorkItemHash"], "error", frame.get("ErrorMessage") or "Unknown error")
                elif action == "Deregister":
                    self._deregister(frame.get("BeaconID"))
                    beacon_id = None
        except Exception:
            pass
        finally:
            if beacon_id is not None:
                with self.lock:
                    if self.beacons.get(beacon_id, {}).get("ws") is ws:
                        del self.beacons[beacon_id]
                        self.lock.notify_all()


class _Server(socketserver.ThreadingTCPServer):
    """HTTP and WebSocket on one port, told apart by the request's Upgrade header."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, stub: CoordinatorStub):
        self.stub = stub
        self.socket_closed = threading.Event()  # what websockets' ServerConnection asks its server
        super().__init__(("127.0.0.1", 0), _HttpHandler)

    def finish_request(self, request, client_address):
        if self.stub.refuse:
            request.close()
            return
        head = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:
            head = request.recv(65536, socket.MSG_PEEK)
            if not head:
                return
            if b"\r\n\r\n" not in head:
                time.sleep(0.001)
        if b"upgrade: websocket" in head.lower():
            self._upgrade(request, head)
        else:
            super().finish_request(request, client_address)

    def _upgrade(self, sock, head: bytes) -> None:
        from websockets.server import ServerProtocol
        from websockets.sync.server import ServerConnection

        cookie = None
        match = re.search(rb"(?im)^cookie:.*?SessionID=([^;\r\n]+)", head)
        if match:
            cookie = match.group(1).decode()
        sock.settimeout(None)
        ws = ServerConnection(sock, ServerProtocol(max_size=None), self, ping_interval=None)
        ws.handshake(timeout=10)
        if ws.protocol.state.name != "OPEN":
            return
        self.stub._websocket(ws, cookie)


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body, cookie: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", f"SessionID={cookie}; Path=/; HttpOnly")
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def _authorized(self) -> bool:
        stub = self.server.stub
        if not stub.secured:
            return True
        match = re.search(r"SessionID=([^;]+)", self.headers.get("Cookie") or "")
        return bool(match) and match.group(1) in stub.sessions

    def _route(self, method: str) -> None:
        stub = self.server.stub
        path = self.path.split("?")[0]
        body = self._body() if method in ("POST", "PUT") else None
        if path == "/1.0/Authenticate" and method == "POST":
            session = uuid.uuid4().hex
            stub.sessions.add(session)
            return self._reply(200, {"LoggedIn": True, "SessionID": session, "UserID": 0}, cookie=session)
        if not self._authorized():
            return self._reply(401, {"Error": "Authentication required.", "LoggedIn": False})
        if path == "/Ultravisor/Persistence/Status" and method == "GET":
            return self._reply(200, stub.persistence)
        if path == "/Beacon/Register" and method == "POST":
            if not body.get("Name") or not body.get("Capabilities"):
                return self._reply(400, {"Error": "Name and Capabilities are required."})
            return self._reply(200, stub._register(body))
        if path == "/Beacon/Work/Poll" and method == "POST":
            if not body.get("BeaconID"):
                return self._reply(400, {"Error": "BeaconID is required."})
            return self._reply(200, {"WorkItem": stub._poll(body["BeaconID"])})
        match = re.fullmatch(r"/Beacon/Work/([^/]+)/(Complete|Error)", path)
        if match and method == "POST":
            work_hash, kind = match.groups()
            if kind == "Complete":
                ok = stub._answer(work_hash, "complete", body.get("Outputs") or {})
            else:
                ok = stub._answer(work_hash, "error", body.get("ErrorMessage") or "Unknown error")
            if not ok:
                return self._reply(400, {"Error": f"BeaconCoordinator: work item [{work_hash}] not found."})
            return self._reply(200, {"Status": "Completed" if kind == "Complete" else "Failed", "WorkItemHash": work_hash})
        match = re.fullmatch(r"/Beacon/([^/]+)", path)
        if match and method in ("GET", "DELETE"):
            beacon_id = match.group(1)
            if method == "DELETE":
                if stub._deregister(beacon_id):
                    return self._reply(200, {"Status": "Deregistered", "BeaconID": beacon_id})
            elif beacon_id in stub.beacons:
                return self._reply(200, {"BeaconID": beacon_id, **{k: v for k, v in stub.beacons[beacon_id].items()
                                                                    if k != "ws"}})
            return self._reply(404, {"Error": f"Beacon [{beacon_id}] not found."})
        return self._reply(404, {"Error": f"no route {method} {path}"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")
