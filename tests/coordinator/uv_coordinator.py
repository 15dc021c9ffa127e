"""A coordinator stub with Ultravisor's persistence routes, and a richer databeacon stub.

:class:`UltravisorStub` extends the meadowproxy tests' ``CoordinatorStub`` (the beacon mesh
protocol of /work/shared/reference/ultravisor-mesh.md) with what the console talks to,
following ultravisor-bridges.md §6-7, ultravisor-mesh.md §5 and the captured responses of
databeacon-live.md §2 and §6 exactly:

- ``GET /Ultravisor/Persistence/Status`` → ``{Queue, Manifest}`` statuses ``{State,
  AssignedBeaconID, IDBeaconConnection, LastError, BootstrappedAt, AssignedAt}``; the state is
  derived in upstream's order: unassigned, error, bootstrapped, bootstrapping,
  waiting-for-beacon;
- ``POST /Ultravisor/Persistence/Assign {BeaconID, IDBeaconConnection}``: no validation (an
  unknown ID waits forever), ``null``/``''`` clears, a different BeaconID drops the old one's
  bootstrapped mark and endpoint cache, the same BeaconID keeps them (no re-bootstrap); the
  answer is read before the bootstrap starts, so it says ``waiting-for-beacon``;
- the bootstrap, per bridge, when the assigned beacon is online (on Assign, or when a beacon
  with that ID registers): EnsureSchema, whole-connection Introspect, UpdateProxyConfig with
  ``^/?1\\.0/[^/]+/UV[A-Za-z0-9]*``, EnableEndpoint per table, dispatched with the sticky keys
  ``queue-persistence-bootstrap`` / ``manifest-store-bootstrap`` (not the beacon's name) and
  TimeoutMs 20000; ``Outputs.EndpointBase`` is cached, ``/1.0/<Table>`` when the answer is
  "already enabled" (the live restart defect); a failed step sets ``LastError``
  ``<Step> failed: <reason>``;
- the read routes: ``GET /Beacon/Queue[?include=history&limit=N]`` → ``{Summary, Items,
  History}`` — in MeadowProxy mode (see below) the history is one MeadowProxy GET of
  ``<cached base>s/0/250`` routed by ``queue-persistence`` and ``null`` when it fails,
  otherwise the local store's rows (``limit`` clamped to 1..5000); ``GET
  /Beacon/Work/<hash>/Events`` → ``{WorkItemHash, Events}`` (at most 500, 404 unknown);
  ``GET /Manifest`` → summaries (at most 100 from the store), ``GET /Manifest/<hash>`` → the
  manifest or 404. Events and manifests are served from the local store only;
- :meth:`UltravisorStub.restart`: every beacon deregistered (they come back with new
  BeaconIDs), sessions and in-memory bootstrap state lost, the assignment kept (it is in
  ``persistence-assignment.json``);
- the mirroring of every work item whose Capability is not a meta one (bridges §1: not
  QueuePersistence, ManifestStore, MeadowProxy, DataBeaconSchema, DataBeaconManagement)
  while the Queue bridge is in MeadowProxy mode (assigned *and* bootstrapped, bridges §3;
  the assigned beacon need not be online, so a restarted databeacon still gets them, live
  §6): the upsert, the enqueued and dispatched events, the attempt, the completed event, the
  complete update and the attempt outcome as ``MeadowProxy/Request`` items routed by
  ``queue-persistence`` with ``RemoteUser: ultravisor-system`` (bridges §5.2-5.3, mesh §5.3),
  in the shapes of live §5.1: the work item with every UV column plus
  ``RequireAffinityMatch`` and ``CreatedAt``, ``Settings`` and ``Payload`` as JSON objects,
  nulls and booleans as they are, events without EventGUID/Seq/EmittedAt; updates as a
  FilteredTo lookup and a PUT by ID only when the row was found. ``fit_schema=True`` is
  *not* 1.3.24: it sends what the UV schema takes (objects as JSON text, no nulls, booleans
  as 0/1, a fresh EventGUID with Seq and EmittedAt), so that a test can see writes land. Upstream sends them fire-and-forget as the item moves; the stub sends them
  before it answers the dispatch, so a test never races them;
- ``history_defect``: the local store's history read fails as 1.3.24's does (bridges §7:
  ``OrderBy: '-EnqueuedAt'`` is read as a column name; live: ``no such column:
  -EnqueuedAt``), answering ``History: null``.

:class:`UVDataBeacon` extends ``DataBeaconStub`` (databeacon.md §4-5) with whole-connection
Introspect, ListTables, QueryTable (SELECT only, on the meadow server's SQLite file),
DisableEndpoint (the next EnableEndpoint is fresh again), re-registration, and knobs to fail
or hang chosen actions.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote

from coordinator_stub import CoordinatorStub, DataBeaconStub

UV_PATTERN = "^/?1\\.0/[^/]+/UV[A-Za-z0-9]*"
BRIDGE_TABLES = {"Queue": ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt"),
                 "Manifest": ("UVManifest",)}
BOOTSTRAP_KEYS = {"Queue": "queue-persistence-bootstrap", "Manifest": "manifest-store-bootstrap"}
#: Capabilities whose work items are never mirrored into persistence (bridges §1, COORD:142-149).
META_CAPABILITIES = {"QueuePersistence", "ManifestStore", "MeadowProxy", "DataBeaconSchema", "DataBeaconManagement"}


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class _StepFailed(Exception):
    pass


class UltravisorStub(CoordinatorStub):
    """``CoordinatorStub`` plus the persistence state machine and the read routes."""

    def __init__(self, **options):
        self.assignment = {"Queue": None, "Manifest": None}
        self.bootstrapped = {"Queue": set(), "Manifest": set()}
        self.inflight = {"Queue": set(), "Manifest": set()}
        self.last_error = {"Queue": None, "Manifest": None}
        self.bootstrapped_at = {"Queue": None, "Manifest": None}
        self.endpoint_base = {"Queue": {}, "Manifest": {}}
        self.bootstrap_timeout_ms = 20000
        self.history: list[dict] = []
        self.events: dict[str, list] = {}
        self.manifests: dict[str, dict] = {}
        self.live_items: list[dict] = []
        self.logins = 0
        self.requests: list[str] = []
        self.fit_schema = options.pop("fit_schema", False)
        self.history_defect = options.pop("history_defect", False)
        self.mirrored: list[tuple[str, str, int]] = []  # (method, path, Outputs.Status or 0 for a refusal)
        super().__init__(**options)

    # -- persistence state machine ----------------------------------------------------

    def status_of(self, bridge: str) -> dict:
        entry = self.assignment[bridge]
        if entry is None:
            state = "unassigned"
        elif self.last_error[bridge]:
            state = "error"
        elif entry["BeaconID"] in self.bootstrapped[bridge]:
            state = "bootstrapped"
        elif entry["BeaconID"] in self.inflight[bridge]:
            state = "bootstrapping"
        else:
            state = "waiting-for-beacon"
        return {"State": state, "AssignedBeaconID": entry["BeaconID"] if entry else None,
                "IDBeaconConnection": entry["IDBeaconConnection"] if entry else 0,
                "LastError": self.last_error[bridge], "BootstrappedAt": self.bootstrapped_at[bridge],
                "AssignedAt": entry["AssignedAt"] if entry else None}

    def statuses(self) -> dict:
        with self.lock:
            return {bridge: self.status_of(bridge) for bridge in BRIDGE_TABLES}

    def _online(self, beacon_id: str) -> bool:
        record = self.beacons.get(beacon_id)
        return record is not None and record.get("Status") in ("Online", "Busy")

    def _assign(self, body: dict):
        raw = body.get("BeaconID")
        beacon_id = None if raw in (None, "") else str(raw)
        try:
            connection = int(str(body.get("IDBeaconConnection") or 0), 10)
        except ValueError:
            connection = 0
        with self.lock:
            for bridge in BRIDGE_TABLES:
                previous = self.assignment[bridge]
                if previous and previous["BeaconID"] != beacon_id:
                    self.bootstrapped[bridge].discard(previous["BeaconID"])
                    self.endpoint_base[bridge].pop(previous["BeaconID"], None)
                self.assignment[bridge] = (
                    {"BeaconID": beacon_id, "IDBeaconConnection": connection, "AssignedAt": _now()} if beacon_id else None
                )
                self.last_error[bridge] = None
                self.bootstrapped_at[bridge] = None
            answer = {"Success": True, **{b: self.status_of(b) for b in BRIDGE_TABLES}}
            online = beacon_id is not None and self._online(beacon_id)
        if online:
            self._start_bootstrap(beacon_id)
        return 200, answer

    def _start_bootstrap(self, beacon_id: str) -> None:
        for bridge in BRIDGE_TABLES:
            threading.Timer(0.01, self._bootstrap, args=(bridge, beacon_id)).start()

    def _bootstrap(self, bridge: str, beacon_id: str) -> None:
        from uvctl.schema import builtin_descriptor

        with self.lock:
            entry = self.assignment[bridge]
            if (entry is None or entry["BeaconID"] != beacon_id or beacon_id in self.bootstrapped[bridge]
                    or beacon_id in self.inflight[bridge]):
                return
            self.inflight[bridge].add(beacon_id)
            connection = entry["IDBeaconConnection"]
        steps = [
            ("DataBeaconSchema", "EnsureSchema",
             {"IDBeaconConnection": connection, "SchemaName": "ultravisor", "SchemaJSON": builtin_descriptor()}),
            ("DataBeaconManagement", "Introspect", {"IDBeaconConnection": connection}),
            ("DataBeaconManagement", "UpdateProxyConfig", {"PathAllowlist": [UV_PATTERN]}),
        ] + [("DataBeaconManagement", "EnableEndpoint", {"IDBeaconConnection": connection, "TableName": table})
             for table in BRIDGE_TABLES[bridge]]
        bases = {}
        try:
            for capability, action, settings in steps:
                code, data = self._dispatch({"Capability": capability, "Action": action, "Settings": settings,
                                             "AffinityKey": BOOTSTRAP_KEYS[bridge],
                                             "TimeoutMs": self.bootstrap_timeout_ms})
                outputs = data.get("Outputs") if isinstance(data.get("Outputs"), dict) else {}
                label = f"EnableEndpoint({settings['TableName']})" if action == "EnableEndpoint" else action
                if code != 200 or outputs.get("Success") is False:
                    raise _StepFailed(f"{label} failed: {data.get('Error') or outputs.get('Error') or 'unknown'}")
                if action == "EnableEndpoint":
                    table = settings["TableName"]
                    bases[table] = outputs.get("EndpointBase") or f"/1.0/{table}"
            with self.lock:
                self.bootstrapped[bridge].add(beacon_id)
                self.bootstrapped_at[bridge] = _now()
                self.last_error[bridge] = None
                self.endpoint_base[bridge][beacon_id] = bases
        except _StepFailed as exc:
            with self.lock:
                self.last_error[bridge] = str(exc)
        finally:
            with self.lock:
                self.inflight[bridge].discard(beacon_id)

    def _register(self, body: dict):
        code, record = super()._register(body)
        if code == 200 and any(e and e["BeaconID"] == record["BeaconID"] for e in self.assignment.values()):
            self._start_bootstrap(record["BeaconID"])
        return code, record

    def restart(self) -> None:
        """An Ultravisor restart: beacons, work, sessions and bootstrap state gone; assignment kept."""
        with self.lock:
            self.beacons.clear()
            self.items.clear()
            self.sessions.clear()
            for bridge in BRIDGE_TABLES:
                self.bootstrapped[bridge].clear()
                self.inflight[bridge].clear()
                self.last_error[bridge] = None
                self.bootstrapped_at[bridge] = None
                self.endpoint_base[bridge].clear()

    # -- mirroring into persistence -----------------------------------------------------

    def _meadowproxy_bases(self) -> dict | None:
        """The Queue bridge's cached endpoint bases in MeadowProxy mode, else None (bridges §3)."""
        with self.lock:
            entry = self.assignment["Queue"]
            if entry is None or entry["BeaconID"] not in self.bootstrapped["Queue"]:
                return None
            return dict(self.endpoint_base["Queue"].get(entry["BeaconID"], {}))

    def _dispatch(self, body: dict):
        code, data = super()._dispatch(body)
        bases = self._meadowproxy_bases() if body.get("Capability") not in META_CAPABILITIES else None
        if bases is not None and data.get("WorkItemHash"):
            self._mirror(bases, body, data["WorkItemHash"])
        return code, data

    def _proxy(self, method: str, path: str, record: dict | None = None):
        settings = {"Method": method, "Path": path, "RemoteUser": "ultravisor-system"}
        if record is not None:
            settings["Body"] = json.dumps(self._fit(record))
        code, data = super()._dispatch({"Capability": "MeadowProxy", "Action": "Request", "Settings": settings,
                                        "AffinityKey": "queue-persistence", "TimeoutMs": 5000})
        status = (data.get("Outputs") or {}).get("Status", 0) if code == 200 else 0
        self.mirrored.append((method, path, status))
        return status, (data.get("Outputs") or {}).get("Body")

    def _fit(self, record: dict) -> dict:
        """``record`` as 1.3.24 sends it, or (``fit_schema``) as the UV schema takes it."""
        if not self.fit_schema:
            return record
        fit = {k: json.dumps(v) if isinstance(v, dict) else int(v) if isinstance(v, bool) else "" if v is None else v
               for k, v in record.items()}
        if "EventType" in fit:
            fit.update({"EventGUID": str(uuid.uuid4()), "Seq": next(self.counter), "EmittedAt": _now()})
        return fit

    def _mirror(self, bases: dict, body: dict, work_hash: str) -> None:
        item_base = bases.get("UVQueueWorkItem", "/1.0/UVQueueWorkItem")
        event_base = bases.get("UVQueueWorkItemEvent", "/1.0/UVQueueWorkItemEvent")
        attempt_base = bases.get("UVQueueWorkItemAttempt", "/1.0/UVQueueWorkItemAttempt")
        now = _now()
        item = {"WorkItemHash": work_hash, "RunID": "", "RunHash": "", "NodeHash": "", "OperationHash": "",
                "Capability": body["Capability"], "Action": body.get("Action") or "Execute",
                "Settings": dict(body.get("Settings") or {}), "AffinityKey": body.get("AffinityKey") or "",
                "Priority": 0, "Status": "Pending", "AssignedBeaconID": "", "TimeoutMs": int(body.get("TimeoutMs") or 0),
                "MaxAttempts": 1, "AttemptNumber": 0, "RetryBackoffMs": 0, "EnqueuedAt": now, "DispatchedAt": None,
                "CompletedAt": None, "CancelRequested": False, "LastError": "", "Health": None, "Result": "",
                "RequireAffinityMatch": False, "CreatedAt": now}
        def event(kind, before, after):
            return {"WorkItemHash": work_hash, "RunID": "", "EventType": kind, "FromStatus": before, "ToStatus": after,
                    "Payload": {"At": now}}

        self._proxy("POST", item_base, item)
        self._proxy("POST", event_base, event("enqueued", "", "Assigned"))
        self._proxy("POST", event_base, event("dispatched", "Assigned", "Running"))
        self._proxy("POST", attempt_base, {"WorkItemHash": work_hash, "AttemptNumber": 1, "BeaconID": "",
                                           "DispatchedAt": now, "Outcome": "Dispatched"})
        self._proxy("POST", event_base, event("completed", "Running", "Complete"))
        self._update(item_base, "IDUVQueueWorkItem", f"FBV~WorkItemHash~EQ~{work_hash}",
                     {"Status": "Complete", "CompletedAt": now})
        self._update(attempt_base, "IDUVQueueWorkItemAttempt",
                     f"FBV~WorkItemHash~EQ~{work_hash}~FBV~AttemptNumber~EQ~1", {"Outcome": "Complete", "CompletedAt": now})

    def _update(self, base: str, key: str, terms: str, patch: dict) -> None:
        """A bridge update: the FilteredTo lookup, then a PUT by ID only when a row was found (bridges §5.2)."""
        status, text = self._proxy("GET", f"{base}s/FilteredTo/{terms}")
        try:
            rows = json.loads(text) if status == 200 and text else []
        except ValueError:
            rows = []
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            self._proxy("PUT", base, {**patch, key: rows[0].get(key)})

    # -- read routes -----------------------------------------------------------------------

    def _queue(self, query: dict):
        items = [dict(i) for i in self.live_items]
        summary = {"Total": len(items)}
        if query.get("include", [""])[0] != "history":
            return 200, {"Summary": summary, "Items": items, "History": None}
        bases = self._meadowproxy_bases()
        if bases is not None:  # MeadowProxy mode: one read through the databeacon, whatever the limit
            base = bases.get("UVQueueWorkItem", "/1.0/UVQueueWorkItem")
            code, data = self._dispatch({"Capability": "MeadowProxy", "Action": "Request", "AffinityKey": "queue-persistence",
                                         "TimeoutMs": 5000, "Settings": {"Method": "GET", "Path": base + "s/0/250",
                                                                         "RemoteUser": "ultravisor-system"}})
            history = None
            outputs = data.get("Outputs") or {}
            if code == 200 and outputs.get("Status") == 200:
                try:
                    history = json.loads(outputs.get("Body") or "null")
                except ValueError:
                    history = None
            return 200, {"Summary": summary, "Items": items, "History": history}
        if self.history_defect:
            return 200, {"Summary": summary, "Items": items, "History": None}
        try:
            limit = int(query.get("limit", ["200"])[0]) or 200
        except ValueError:
            limit = 200
        limit = max(1, min(limit, 5000))
        rows = sorted(self.history, key=lambda r: (str(r.get("EnqueuedAt") or ""), r.get("IDBeaconWorkItem") or 0))
        return 200, {"Summary": summary, "Items": items, "History": [dict(r) for r in rows[:limit]]}

    def _events(self, work_hash: str):
        known = {r.get("WorkItemHash") for r in self.history} | set(self.events)
        if work_hash not in known:
            return 404, {"Error": f"Work item [{work_hash}] not found."}
        return 200, {"WorkItemHash": work_hash, "Events": [dict(e) for e in self.events.get(work_hash, [])[:500]]}

    def _manifest_list(self):
        keys = ("Hash", "OperationHash", "OperationName", "Status", "StartTime", "StopTime", "ElapsedMs")
        ordered = sorted(self.manifests.values(), key=lambda m: str(m.get("StartTime") or ""))[:100]
        return 200, [{k: m.get(k) for k in keys} for m in ordered]

    def _manifest(self, run_hash: str):
        found = self.manifests.get(run_hash)
        if found is None:
            return 404, {"Error": f"Manifest {run_hash} not found."}
        return 200, dict(found)

    def _persistence_route(self, method: str, path: str):
        """The handler of one of this stub's own routes, or None for the base stub's."""
        if method == "GET" and path == "/Ultravisor/Persistence/Status":
            return lambda body, query: (200, self.statuses())
        if method == "POST" and path == "/Ultravisor/Persistence/Assign":
            return lambda body, query: self._assign(body)
        if method == "GET" and path == "/Beacon/Queue":
            return lambda body, query: self._queue(query)
        match = re.fullmatch(r"/Beacon/Work/([^/]+)/Events", path)
        if method == "GET" and match:
            return lambda body, query: self._events(unquote(match[1]))
        if method == "GET" and path == "/Manifest":
            return lambda body, query: self._manifest_list()
        match = re.fullmatch(r"/Manifest/([^/]+)", path)
        if method == "GET" and match:
            return lambda body, query: self._manifest(unquote(match[1]))
        return None

    def _handler(self):
        base = super()._handler()
        stub = self

        class Handler(base):
            # Headers and body go out as separate writes: without TCP_NODELAY every answer on a
            # keep-alive connection waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True

            def _route(self, method):
                path, _, query = self.path.partition("?")
                stub.requests.append(f"{method} {self.path}")
                if path == "/1.0/Authenticate":
                    stub.logins += 1
                route = stub._persistence_route(method, path)
                if route is None:
                    return super()._route(method)
                body = self._body() if method == "POST" else {}
                if not self._authorized(path):
                    return self._send(401, {"Error": "Authentication required.", "LoggedIn": False})
                return self._send(*route(body, parse_qs(query)))

        return Handler


class UVDataBeacon(DataBeaconStub):
    """``DataBeaconStub`` plus ListTables, QueryTable, DisableEndpoint, whole-connection Introspect."""

    def __init__(self, *args, fail_actions: dict | None = None, hang_actions=(), other_connections=(), **options):
        self.fail_actions = dict(fail_actions or {})
        self.hang_actions = set(hang_actions)
        self.other_connections = [dict(c) for c in other_connections]  # listed, never live
        super().__init__(*args, **options)

    def reregister(self) -> str:
        """Register again (after a coordinator restart): the coordinator gives a new BeaconID."""
        time.sleep(0.002)  # BeaconIDs end in the registration's epoch ms
        record = self.coordinator.post("/Beacon/Register", json={
            "Name": self.name, "MaxConcurrent": self.max_concurrent, "Tags": {},
            "Capabilities": ["MeadowProxy", "DataBeaconAccess", "DataBeaconManagement", "DataBeaconSchema"],
        }).json()
        self.beacon_id = record["BeaconID"]
        return self.beacon_id

    def handle(self, capability: str, action: str, settings: dict) -> dict:
        if action in self.hang_actions:
            self._stop.wait(60)
            raise RuntimeError("closed while hanging")
        if action in self.fail_actions:
            raise RuntimeError(self.fail_actions[action])
        extra = {
            ("DataBeaconAccess", "ListConnections"): lambda s: {"Connections": [dict(self.connection),
                                                                                *self.other_connections]},
            ("DataBeaconAccess", "ListTables"): self._list_tables,
            ("DataBeaconAccess", "QueryTable"): self._query_table,
            ("DataBeaconManagement", "DisableEndpoint"): self._disable_endpoint,
        }.get((capability, action))
        return extra(settings) if extra is not None else super().handle(capability, action, settings)

    def _sqlite(self):
        return sqlite3.connect(self.meadow.db_file, timeout=30)

    def _table_names(self) -> list[str]:
        with self._sqlite() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                               "AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def _introspect(self, settings: dict) -> dict:
        if settings.get("TableName"):
            return super()._introspect(settings)
        self._live(settings, "Introspect")
        tables = self._table_names()
        self.introspected.update(tables)
        return {"TableCount": len(tables), "Tables": [{"TableName": t, "ColumnCount": 0, "Columns": []} for t in tables]}

    def _list_tables(self, settings: dict) -> dict:
        self._live(settings, "ListTables")
        return {"Tables": [{"TableName": t, "EndpointsEnabled": t in self.enabled, "RowCountEstimate": 0}
                           for t in self._table_names()]}

    def _query_table(self, settings: dict) -> dict:
        self._live(settings, "QueryTable")
        sql = str(settings.get("SQL") or "")
        if not sql.strip().lower().startswith("select"):
            raise RuntimeError("Only SELECT queries are allowed.")
        with self._sqlite() as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute(sql)]
        return {"Rows": rows, "RowCount": len(rows)}

    def _disable_endpoint(self, settings: dict) -> dict:
        self._live(settings, "DisableEndpoint")
        table = settings.get("TableName")
        self.enabled.discard(table)
        self.ever_enabled.discard(table)
        return {"TableName": table, "Disabled": True}
