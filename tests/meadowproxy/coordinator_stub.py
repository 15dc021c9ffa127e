"""A coordinator stub and a databeacon stub for the meadowproxy mesh tests.

:class:`CoordinatorStub` follows the HTTP protocol of an Ultravisor coordinator exactly
as /work/shared/reference/ultravisor-mesh.md records it from the real server
(snapshot fbe9b9a1), including its measured pitfalls:

- ``POST /Beacon/Register`` (``Name`` + string ``Capabilities`` required, 400 otherwise;
  ``MaxConcurrent`` default 1; re-registering a Name reuses the record and BeaconID
  ``bcn-<slug>-<ms>``), ``GET /Beacon``, ``GET|DELETE /Beacon/<id>``;
- ``POST /Beacon/Work/Poll`` answers at once (no long-poll), ``{"WorkItem": null}`` for an
  unknown BeaconID, refuses when ``len(CurrentWorkItems) >= MaxConcurrent`` (name-routed
  items count before delivery, §6.1), hands out Assigned items first, then Pending ones
  by capability; ``Settings`` carry an injected ``QueueMetadata``;
- ``POST /Beacon/Work/<hash>/Complete|Error`` (400 "not found" for unknown or finished);
- ``POST /Beacon/Work/Dispatch`` blocks until completion: 200 ``{Success, WorkItemHash,
  Outputs, Log}``, 500 ``{Success: false, Error}`` for a beacon error or
  ``Direct dispatch timed out after Nms.``, 503 when no beacon is registered, 400 without
  a Capability; an ``AffinityKey`` equal to a beacon Name routes to it (Assigned, no
  capability check); a 500 ms scheduler tick turns Pending items into Dispatched ones
  that no HTTP poll returns (§6.2), ignoring ``RequireAffinityMatch``;
- secured mode: ``POST /1.0/Authenticate`` sets the ``SessionID`` cookie; everything but
  ``/status``, ``/package`` and ``/1.0/*`` answers 401 without it.

:class:`DataBeaconStub` is an HTTP-polling beacon standing in for retold-databeacon
(reference/databeacon.md §2-§5): MeadowProxy/Request forwarded to the real meadow
server with the default allowlist plus ``UpdateProxyConfig`` extensions, EnsureSchema
through uvctl's schema service, Introspect, EnableEndpoint ("already enabled" without an
EndpointBase the second time), ListConnections, and the SDK's "Unknown capability"
success for anything else.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ALLOWLIST = r"^\/?1\.0\/[a-z0-9][a-z0-9-]{0,63}\/"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "-", name.lower())


class CoordinatorStub:
    """An in-process coordinator on 127.0.0.1; ``url``, ``dispatches`` (every Dispatch body)."""

    def __init__(self, secured: bool = False, users: dict | None = None, tick_ms: int = 500, tls=None):
        self.secured = secured
        self.users = users or {}
        self.tick_ms = tick_ms
        self.beacons: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.waiters: dict[str, tuple[threading.Event, dict]] = {}
        self.sessions: set[str] = set()
        self.dispatches: list[dict] = []
        self.fail_next = 0  # answer this many next dispatcher requests with 503 (a restarting coordinator)
        self.lock = threading.RLock()
        self.counter = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (certificate file, key file): serve HTTPS
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self._tick, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    # -- scheduler tick (§6.2) -------------------------------------------------------

    def _tick(self):
        while not self._stop.wait(self.tick_ms / 1000):
            with self.lock:
                now = time.monotonic()
                for item in self.items.values():
                    if item["Status"] != "Pending" or now - item["_enqueued"] < self.tick_ms / 1000:
                        continue
                    capable = [b for b in self.beacons.values() if item["Capability"] in b["Capabilities"]]
                    if capable:
                        beacon = min(capable, key=lambda b: len(b["CurrentWorkItems"]))
                        item["Status"], item["AssignedBeaconID"] = "Dispatched", beacon["BeaconID"]
                        beacon["CurrentWorkItems"].append(item["WorkItemHash"])

    # -- work --------------------------------------------------------------------------

    def _dispatch(self, body: dict):
        if not body.get("Capability"):
            return 400, {"Success": False, "Error": "Capability is required."}
        with self.lock:
            self.dispatches.append(body)
            if not self.beacons:
                return 503, {"Success": False, "Error": "No Beacon workers are registered."}
            hash_ = f"wi-unknown-unknown-{int(time.time() * 1000)}-{next(self.counter)}"
            timeout_ms = int(body.get("TimeoutMs") or 300000)
            item = {
                "WorkItemHash": hash_, "RunID": "", "Capability": body["Capability"],
                "Action": body.get("Action") or "Execute", "Settings": dict(body.get("Settings") or {}),
                "AffinityKey": body.get("AffinityKey") or "", "RequireAffinityMatch": bool(body.get("RequireAffinityMatch")),
                "TimeoutMs": timeout_ms, "Status": "Pending", "AssignedBeaconID": None, "_enqueued": time.monotonic(),
            }
            named = [b for b in self.beacons.values() if b["Name"] == item["AffinityKey"]]
            if named:
                item["Status"], item["AssignedBeaconID"] = "Assigned", named[0]["BeaconID"]
                named[0]["CurrentWorkItems"].append(hash_)
            self.items[hash_] = item
            done = threading.Event()
            self.waiters[hash_] = (done, {})
        finished = done.wait(timeout_ms / 1000)
        with self.lock:
            _, result = self.waiters.pop(hash_)
            if not finished:
                self._finish(hash_)
                return 500, {"Success": False, "Error": f"Direct dispatch timed out after {timeout_ms}ms."}
        if result.get("Error") is not None:
            return 500, {"Success": False, "Error": result["Error"] or "Unknown error"}
        return 200, {"Success": True, "WorkItemHash": hash_, "Outputs": result.get("Outputs", {}), "Log": result.get("Log", [])}

    def _finish(self, hash_: str) -> dict | None:
        item = self.items.pop(hash_, None)
        if item is not None:
            for beacon in self.beacons.values():
                if hash_ in beacon["CurrentWorkItems"]:
                    beacon["CurrentWorkItems"].remove(hash_)
        return item

    def _poll(self, body: dict):
        beacon_id = body.get("BeaconID")
        if not beacon_id:
            return 400, {"Error": "BeaconID is required."}
        with self.lock:
            beacon = self.beacons.get(beacon_id)
            if beacon is None:
                return 200, {"WorkItem": None}
            beacon["LastHeartbeat"] = time.time()
            # §6.1: the capacity check counts pre-assigned (name-routed) items too.
            if len(beacon["CurrentWorkItems"]) >= beacon["MaxConcurrent"]:
                return 200, {"WorkItem": None}
            assigned = [self.items[h] for h in beacon["CurrentWorkItems"]
                        if self.items.get(h, {}).get("Status") == "Assigned"]
            item = assigned[0] if assigned else None
            if item is None:
                for candidate in self.items.values():
                    if candidate["Status"] != "Pending" or candidate["Capability"] not in beacon["Capabilities"]:
                        continue
                    if candidate["RequireAffinityMatch"] and candidate["AffinityKey"] != beacon["Name"]:
                        continue
                    item = candidate
                    beacon["CurrentWorkItems"].append(item["WorkItemHash"])
                    break
            if item is None:
                return 200, {"WorkItem": None}
            item["Status"], item["AssignedBeaconID"] = "Running", beacon_id
            meta = {"RunID": "", "WorkItemHash": item["WorkItemHash"], "AttemptNumber": 1, "HubInstanceID": ""}
            public = {k: v for k, v in item.items() if not k.startswith("_") and k not in ("Status", "AssignedBeaconID", "RequireAffinityMatch", "AffinityKey")}
            public.update({"Settings": {**item["Settings"], "QueueMetadata": meta}, "QueueMetadata": meta,
                           "OperationHash": "", "AttemptNumber": 1})
            return 200, {"WorkItem": public}

    def _complete(self, hash_: str, body: dict, error: bool):
        with self.lock:
            if self._finish(hash_) is None or hash_ not in self.waiters:
                return 400, {"Error": f"BeaconCoordinator: work item [{hash_}] not found."}
            done, result = self.waiters[hash_]
            if error:
                result["Error"] = body.get("ErrorMessage") or "Unknown error"
            else:
                result["Outputs"], result["Log"] = body.get("Outputs") or {}, body.get("Log") or []
            done.set()
            return 200, {"Status": "Failed" if error else "Completed", "WorkItemHash": hash_}

    def _register(self, body: dict):
        name, caps = body.get("Name"), body.get("Capabilities")
        if not name or caps is None:
            return 400, {"Error": "Name and Capabilities are required."}
        caps = caps if isinstance(caps, list) else []
        with self.lock:
            record = next((b for b in self.beacons.values() if b["Name"] == name), None)
            if record is None:
                beacon_id = f"bcn-{_slug(name)}-{int(time.time() * 1000)}"
                record = {"BeaconID": beacon_id, "Name": name, "SessionID": "anonymous", "CurrentWorkItems": [],
                          "Contexts": {}, "BindAddresses": [], "HostID": None, "SharedMounts": [],
                          "RegisteredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "MaxConcurrent": 1}
                self.beacons[beacon_id] = record
            record.update({"Capabilities": caps, "Tags": body.get("Tags") or {}, "Status": "Online",
                           "LastHeartbeat": time.time()})
            if body.get("MaxConcurrent"):
                record["MaxConcurrent"] = int(body["MaxConcurrent"])
            return 200, dict(record)

    # -- HTTP ------------------------------------------------------------------------------

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

            def log_message(self, *args):
                pass

            def _send(self, status, data, cookie=None):
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if cookie:
                    self.send_header("Set-Cookie", f"SessionID={cookie}; Path=/; HttpOnly")
                self.end_headers()
                self.wfile.write(payload)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else {}
                except ValueError:
                    return {}

            def _authorized(self, path):
                if not stub.secured or path in ("/status", "/package") or path.startswith("/1.0/"):
                    return True
                cookies = dict(
                    part.strip().split("=", 1) for part in (self.headers.get("Cookie") or "").split(";") if "=" in part
                )
                return cookies.get("SessionID") in stub.sessions

            def _route(self, method):
                path = self.path.split("?")[0]
                body = self._body() if method in ("POST", "PUT") else {}
                if stub.fail_next > 0 and path in ("/Beacon", "/Beacon/Work/Dispatch"):  # not the beacon's polls
                    stub.fail_next -= 1
                    return self._send(503, {"Error": "restarting"})
                if not self._authorized(path):
                    return self._send(401, {"Error": "Authentication required.", "LoggedIn": False})
                if method == "GET" and path == "/status":
                    return self._send(200, {"Status": "Running", "AuthEnabled": stub.secured})
                if method == "POST" and path == "/1.0/Authenticate":
                    user, password = body.get("UserName"), body.get("Password")
                    if stub.users and stub.users.get(user) != password:
                        return self._send(200, {"LoggedIn": False})
                    session = str(uuid.uuid4())
                    stub.sessions.add(session)
                    return self._send(200, {"LoggedIn": True, "SessionID": session, "UserID": 0}, cookie=session)
                if method == "GET" and path == "/Beacon":
                    with stub.lock:
                        return self._send(200, [dict(b) for b in stub.beacons.values()])
                if method == "POST" and path == "/Beacon/Register":
                    return self._send(*stub._register(body))
                if method == "POST" and path == "/Beacon/Work/Poll":
                    return self._send(*stub._poll(body))
                if method == "POST" and path == "/Beacon/Work/Dispatch":
                    return self._send(*stub._dispatch(body))
                match = re.fullmatch(r"/Beacon/Work/([^/]+)/(Complete|Error)", path)
                if method == "POST" and match:
                    return self._send(*stub._complete(match[1], body, match[2] == "Error"))
                match = re.fullmatch(r"/Beacon/([^/]+)", path)
                if match and method in ("GET", "DELETE"):
                    with stub.lock:
                        record = stub.beacons.get(match[1])
                        if record is None:
                            return self._send(404, {"Error": f"Beacon [{match[1]}] not found."})
                        if method == "DELETE":
                            del stub.beacons[match[1]]
                            return self._send(200, {"Status": "Deregistered", "BeaconID": match[1]})
                        return self._send(200, dict(record))
                return self._send(404, {"code": "ResourceNotFound", "message": f"{path} does not exist"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

        return Handler


class DataBeaconStub:
    """An HTTP-polling beacon that serves one SQLite connection through a real meadow server."""

    def __init__(self, coordinator_url: str, name: str, meadow, connection_name: str, connection_id: int = 1,
                 max_concurrent: int = 4, default_allowlist: bool = True, poll_interval: float = 0.005):
        import httpx

        self.coordinator = httpx.Client(base_url=coordinator_url, timeout=10)
        self.meadow_http = httpx.Client(base_url=meadow.url, timeout=30)
        self.name, self.meadow = name, meadow
        self.connection = {"IDBeaconConnection": connection_id, "Name": connection_name, "Type": "SQLite", "Config": "{}"}
        # listed by ListConnections, never served (a subclass may have set them already)
        self.other_connections: list[dict] = getattr(self, "other_connections", [])
        self.default_allowlist = default_allowlist
        self.max_concurrent = max_concurrent
        self.poll_interval = poll_interval
        self.received: list[tuple[str, str, dict]] = []
        self.hang = False  # claim work and never answer
        self.damage = 0  # damage this many next proxied bodies the way upstream's chunk decoding does
        self.reset()
        self.register()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def register(self) -> None:
        record = self.coordinator.post("/Beacon/Register", json={
            "Name": self.name, "MaxConcurrent": self.max_concurrent, "Tags": {},
            "Capabilities": ["MeadowProxy", "DataBeaconAccess", "DataBeaconManagement", "DataBeaconSchema"],
        }).json()
        self.beacon_id = record["BeaconID"]

    def reconnect(self) -> None:
        """Restart and register again under a new BeaconID (what a WebSocket reconnect does)."""
        self.coordinator.delete(f"/Beacon/{self.beacon_id}")
        time.sleep(0.002)
        self.reset()
        self.register()

    def reset(self) -> None:
        """A databeacon restart: the runtime allowlist and the in-memory endpoints are lost."""
        self.allowlist = [DEFAULT_ALLOWLIST] if self.default_allowlist else []
        self.introspected: set[str] = set()
        self.enabled: set[str] = set()
        self.ever_enabled = getattr(self, "ever_enabled", set())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.coordinator.close()
        self.meadow_http.close()

    def _loop(self):
        while not self._stop.is_set():
            try:
                item = self.coordinator.post("/Beacon/Work/Poll", json={"BeaconID": self.beacon_id}).json().get("WorkItem")
            except Exception:
                item = None
            if item is None:
                time.sleep(self.poll_interval)
                continue
            settings = {k: v for k, v in item["Settings"].items() if k != "QueueMetadata"}
            self.received.append((item["Capability"], item["Action"], settings))
            if self.hang:
                continue
            try:
                outputs = self.handle(item["Capability"], item["Action"], settings)
                self.coordinator.post(f"/Beacon/Work/{item['WorkItemHash']}/Complete", json={"Outputs": outputs, "Log": []})
            except Exception as exc:  # a handler error becomes the work item's ErrorMessage
                self.coordinator.post(f"/Beacon/Work/{item['WorkItemHash']}/Error", json={"ErrorMessage": str(exc), "Log": []})

    # -- capabilities --------------------------------------------------------------------

    def handle(self, capability: str, action: str, settings: dict) -> dict:
        handler = {
            ("MeadowProxy", "Request"): self._proxy,
            ("DataBeaconSchema", "EnsureSchema"): self._ensure_schema,
            ("DataBeaconManagement", "Introspect"): self._introspect,
            ("DataBeaconManagement", "UpdateProxyConfig"): self._update_proxy_config,
            ("DataBeaconManagement", "EnableEndpoint"): self._enable_endpoint,
            ("DataBeaconAccess", "ListConnections"): lambda s: {"Connections": [dict(self.connection), *self.other_connections]},
        }.get((capability, action))
        if handler is None:
            return {"StdOut": f"Unknown capability: {capability}/{action}", "ExitCode": -1, "Result": ""}
        return handler(settings)

    def _live(self, settings: dict, label: str) -> None:
        if str(settings.get("IDBeaconConnection")) != str(self.connection["IDBeaconConnection"]):
            raise RuntimeError(f"{label}: connection [{settings.get('IDBeaconConnection')}] is not live.")

    def _proxy(self, settings: dict) -> dict:
        method = settings.get("Method")
        if not isinstance(method, str) or not method:
            raise RuntimeError("MeadowProxy: Method is required.")
        path = settings.get("Path")
        if not isinstance(path, str) or not any(re.search(p, path) for p in self.allowlist):
            raise RuntimeError("MeadowProxy: path is not in the allowlist.")
        body = settings.get("Body") if isinstance(settings.get("Body"), str) else ""
        headers = {"Content-Type": "application/json", "X-DataBeacon-MeadowProxy": "1",
                   "X-Beacon-User": settings.get("RemoteUser") or "anonymous"}
        response = self.meadow_http.request(method.upper(), "/" + path.lstrip("/"), content=body.encode() or None,
                                            headers=headers)
        text = response.text
        if self.damage and any(ord(ch) > 127 for ch in text):
            # a multi-byte character split across two chunks, each decoded on its own
            self.damage -= 1
            split = next(i for i, ch in enumerate(text) if ord(ch) > 127)
            text = text[:split] + "\ufffd\ufffd" + text[split + 1:]
        return {"Status": response.status_code, "Headers": dict(response.headers), "Body": text}

    def _ensure_schema(self, settings: dict) -> dict:
        schema = settings.get("SchemaJSON")
        if not isinstance(schema, dict) or not isinstance(schema.get("Tables"), list):
            raise RuntimeError("EnsureSchema: SchemaJSON.Tables is required.")
        self._live(settings, "EnsureSchema")
        from uvctl.schema import ensure_schema

        report = ensure_schema(f"sqlite:///{self.meadow.db_file}", schema).to_dict()
        return {"Success": True, "SchemaName": settings.get("SchemaName") or "unnamed", "Engine": "sqlite",
                "TablesCreated": report.get("TablesCreated", []), "ColumnsAdded": report.get("ColumnsAdded", []),
                "IndicesCreated": [], "MigrationStatements": [], "SkippedDestructive": [], "Notes": []}

    def _introspect(self, settings: dict) -> dict:
        self._live(settings, "Introspect")
        table = settings.get("TableName")
        self.introspected.add(table)
        return {"TableCount": 1, "Tables": [{"TableName": table, "ColumnCount": 1, "Columns": []}]}

    def _update_proxy_config(self, settings: dict) -> dict:
        before = len(self.allowlist)
        for pattern in settings.get("PathAllowlist") or []:
            if pattern not in self.allowlist:
                self.allowlist.append(pattern)
        sources = [p if p == DEFAULT_ALLOWLIST else p.replace("/", "\\/") for p in self.allowlist]
        return {"Success": True, "PatternsAdded": len(self.allowlist) - before,
                "ActiveConfig": {"AllowWrites": True, "PathAllowlist": sources}}

    def _enable_endpoint(self, settings: dict) -> dict:
        self._live(settings, "EnableEndpoint")
        table = settings.get("TableName")
        if table not in self.introspected:
            raise RuntimeError(f"Introspected table not found: {table}. Run introspect first.")
        if table in self.enabled or table in self.ever_enabled:
            self.enabled.add(table)
            return {"Message": "Endpoint already enabled", "TableName": table}
        self.enabled.add(table)
        self.ever_enabled.add(table)
        from uvctl_meadowproxy.routes import endpoint_base, sanitize_connection_name

        return {"TableName": table, "EndpointBase": endpoint_base(sanitize_connection_name(self.connection["Name"]), table),
                "ColumnCount": 10}
