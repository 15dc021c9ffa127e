"""Check that a coordinator's persistence writes really land, and repair what can be.

The live runs (databeacon-live.md §5-6) show a coordinator saying ``bootstrapped`` while
every write fails: a stale BeaconID after a coordinator restart, endpoint paths the
MeadowProxy allowlist refuses (a re-bootstrap gets "already enabled" without an
EndpointBase and falls back to ``/1.0/<Table>``), missing columns, values SQLite cannot
bind. The doctor sends only harmless reads:

1. the status of both bridges and the assigned BeaconID against the registered beacons (a
   changed BeaconID is judged by the state it leaves the bridges in);
2. ``ListConnections`` on the databeacon: the assigned connection, its route hash, and no
   other connection sharing it;
3. per UV table, ``MeadowProxy GET /1.0/<hash>/<Table>s/0/1`` through the coordinator;
4. per UV table, the columns (a ``SELECT`` through ``DataBeaconAccess/QueryTable``) against
   the fields Ultravisor sends that the UV schema lacks;
5. ``GET /Beacon/Queue?include=history&limit=1``: the coordinator's own read through its
   bridge, with whatever endpoint paths it cached;
6. the evidence: its DataBeaconAccess reads are ordinary work items, which the coordinator
   mirrors into persistence; the rows the UV tables hold for the probe's WorkItemHash say
   whether its writes land.

The repair is the one that worked live: ``DisableEndpoint`` on the four UV tables (so the
next ``EnableEndpoint`` answers a fresh EndpointBase), ``Assign {BeaconID: null}``, then
``Assign`` with the databeacon's current BeaconID, and watch the bootstrap.
"""

from __future__ import annotations

import json
import re

from ..errors import UvctlError
from ..mesh import WorkError, persistence
from . import databeacon
from .databeacon import BeaconOffline
from .watch import follow, overall

#: Fields Ultravisor's bridges send that the UV schema has no column for (databeacon-live.md §5.1-5.2).
ULTRAVISOR_FIELDS = {
    "UVQueueWorkItem": ("RequireAffinityMatch", "CreatedAt"),
    "UVQueueWorkItemEvent": ("RunID",),
    "UVQueueWorkItemAttempt": ("DispatchedAt", "CompletedAt", "ErrorMessage", "DurationMs"),
    "UVManifest": (),
}
#: A SELECT listing a table's columns as ``name``, per databeacon connection Type.
_COLUMNS_SQL = {
    "sqlite": "SELECT name FROM pragma_table_info('{table}')",
    "mysql": "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
             "AND TABLE_NAME = '{table}'",
    "postgresql": "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = 'public' "
                  "AND table_name = '{table}'",
    "mssql": "SELECT COLUMN_NAME AS name FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = '{table}'",
}
REMOTE_USER = "uvctl-doctor"
REPAIR_FIX = "run 'uvctl coordinator persistence doctor --repair'"
#: Where writes land when the MeadowProxy path cannot be made to (docs/beacon.md).
BEACON_FIX = ("the coordinator's MeadowProxy path cannot be made to land these writes from outside: clear the "
              "assignment ('uvctl coordinator persistence clear'), run the persistence beacon ('uvctl beacon run') "
              "and assign the backend that should hold the data ('uvctl persistence assign --backend ...')")
#: An upstream write defect the doctor's probe does not exercise (databeacon-live.md §5), said as a note.
MANIFEST_NOTE = ("Ultravisor 1.3.24 writes a manifest with a POST each time, so only a run's first state lands "
                 "(the next POST hits the unique Hash); the journal and 'uvctl flush' keep the final one")
SQLITE_CAUSE = ("on SQLite, Ultravisor 1.3.24 sends work-item Settings and event Payload as JSON objects, which the "
                "databeacon cannot bind, and events without an EventGUID, which collide on the unique index")
#: The probe's WorkItemHash goes into SQL text: only what coordinator hashes are made of.
_SAFE_HASH = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_PROBE_SQL = "SELECT COUNT(*) AS n FROM UVManifest"
_LANDED_SQL = ("SELECT (SELECT COUNT(*) FROM UVQueueWorkItem WHERE WorkItemHash = '{h}') AS items, "
               "(SELECT COUNT(*) FROM UVQueueWorkItemEvent WHERE WorkItemHash = '{h}') AS events, "
               "(SELECT COUNT(*) FROM UVQueueWorkItemAttempt WHERE WorkItemHash = '{h}') AS attempts")


class _Report:
    def __init__(self, coordinator, statuses: dict, persistence_beacon: str | None):
        self.data = {"Coordinator": coordinator.display_url, "State": overall(statuses), "Status": statuses,
                     "Beacon": None, "Connection": None, "PersistenceBeacon": persistence_beacon, "Checks": [],
                     "Notes": []}
        self.switch = False  # the repair is the switch to the persistence beacon
        self.probe = None  # the WorkItemHash of a DataBeaconAccess read already sent (mirrored by the coordinator)

    def check(self, name: str, ok: bool, detail: str, fix: str | None = None, repairable: bool = False) -> None:
        self.data["Checks"].append({"Check": name, "OK": ok, "Detail": detail, "Fix": None if ok else fix,
                                    "Repairable": bool(repairable and not ok)})

    def repairable(self) -> bool:
        return any(c["Repairable"] for c in self.data["Checks"])

    def done(self) -> dict:
        checks = self.data["Checks"]
        self.data["Healthy"] = all(c["OK"] for c in checks)
        located = self.data["Beacon"] is not None and self.data["Connection"] is not None
        self.data["Repairable"] = located and self.repairable()
        self.data["RepairKind"] = ("switch" if self.switch else "meadowproxy") if self.data["Repairable"] else None
        return self.data


def diagnose(coordinator, timeout_ms: int = databeacon.DEFAULT_TIMEOUT_MS) -> dict:
    """Run the checks; ``{Coordinator, State, Status, Beacon, Connection, PersistenceBeacon, Checks, Notes,
    Healthy, Repairable, RepairKind}``.

    ``Healthy`` is the answer to "do this coordinator's writes land?": every check passed,
    the evidence of the probe's rows included. ``Notes`` are upstream defects the probe does
    not exercise; they do not count as problems.
    """
    from ..schema import UV_TABLES

    statuses = persistence.status(coordinator)
    records = [r for r in coordinator.list_beacons() if isinstance(r, dict)]
    report = _Report(coordinator, statuses, _persistence_beacon(records))
    target = _assignment(report, statuses)
    if target is None:
        return report.done()
    beacon_id, conn_id = target
    for bridge in persistence.BRIDGES:
        if statuses[bridge].get("State") == "error":
            report.check(f"{bridge} bootstrap", False, f"the {bridge} bridge's bootstrap failed: "
                         f"{statuses[bridge].get('LastError')}", fix=REPAIR_FIX + " to run it again", repairable=True)
    record = _beacon(report, records, beacon_id, statuses)
    if record is None:
        return report.done()
    name = record["Name"]
    try:
        databeacon.require_databeacon(record)
        conn = databeacon.connection(coordinator, name, conn_id, timeout_ms)
    except (BeaconOffline, UvctlError) as exc:
        report.check("connection", False, str(exc), fix="start the databeacon, or assign a connection it has")
        return report.done()
    report.data["Connection"] = {k: conn[k] for k in ("IDBeaconConnection", "Name", "Type", "RouteHash")}
    clash = databeacon.route_clash(conn)
    report.check("connection", clash is None, clash or f"connection {conn_id} {conn['Name']!r} ({conn['Type']}) "
                 f"serves route hash {conn['RouteHash']!r}", fix="rename one of those connections on the databeacon "
                 "(its Name gives the route hash), then assign again")
    report.data["Notes"] = [MANIFEST_NOTE]
    try:
        for table in UV_TABLES:
            if _read_table(report, coordinator, name, conn["RouteHash"], table, timeout_ms):
                _columns(report, coordinator, name, conn, table, timeout_ms)
        _bridge_read(report, coordinator, statuses)
        _writes_land(report, coordinator, name, conn, statuses, timeout_ms)
    except BeaconOffline as exc:
        report.check("databeacon answers", False, str(exc), fix="start the databeacon")
    return report.done()


def _persistence_beacon(records: list[dict]) -> str | None:
    """The name of a registered beacon taking the bridges' calls (QueuePersistence, ManifestStore), e.g.
    ``uvctl beacon run``: without a MeadowProxy assignment the coordinator sends its writes there (bridges §1)."""
    names = {cap: [str(r.get("Name")) for r in records if cap in (r.get("Capabilities") or [])]
             for cap in ("QueuePersistence", "ManifestStore")}
    return names["QueuePersistence"][0] if all(names.values()) else None


def _assignment(report: _Report, statuses: dict):
    assigned = {b: (statuses[b].get("AssignedBeaconID"), statuses[b].get("IDBeaconConnection"))
                for b in persistence.BRIDGES}
    targets = {t for t in assigned.values() if t[0]}
    if not targets:
        if any(statuses[b].get("BootstrappedAt") for b in persistence.BRIDGES):
            detail = ("nothing is assigned, yet a bootstrap ran: a beacon tagged PersistenceConnectionID (tag-scan "
                      "mode) is used, which the status never shows and which breaks the same way after a restart")
        elif report.data["PersistenceBeacon"]:
            report.check("assignment", True, f"no MeadowProxy assignment: the coordinator sends its writes to the "
                         f"persistence beacon {report.data['PersistenceBeacon']!r} ('uvctl beacon status' on its host "
                         f"says where they are delivered)")
            return None
        else:
            detail = "nothing is assigned: the coordinator keeps its queue and manifests in its own local store only"
        report.check("assignment", False, detail, fix="uvctl coordinator persistence assign --beacon NAME --connection ID")
        return None
    target = assigned["Queue"] if assigned["Queue"][0] else assigned["Manifest"]
    if len(targets) > 1 or not all(t[0] for t in assigned.values()):
        text = "; ".join(f"{b} → {t[0] or 'nothing'} connection {t[1]}" for b, t in assigned.items())
        report.check("assignment", False, f"the two bridges are assigned differently ({text})",
                     fix=REPAIR_FIX + " to assign both to the Queue's", repairable=True)
    else:
        report.check("assignment", True, f"both bridges are assigned to {target[0]}, connection {target[1]}")
    return target


def _beacon(report: _Report, records: list[dict], beacon_id: str, statuses: dict) -> dict | None:
    record = next((r for r in records if r.get("BeaconID") == beacon_id), None)
    if record is not None:
        report.check("beacon", True, f"{beacon_id} ({record.get('Name')}) is registered")
    else:
        same = [r for r in records if databeacon.beacon_stem(r.get("BeaconID", "")) == databeacon.beacon_stem(beacon_id)]
        if not same:
            report.check("beacon", False, f"no beacon is registered as {beacon_id}, nor under the same name: the "
                         f"coordinator waits for it and writes nothing to the databeacon",
                         fix="start the databeacon, then assign it again")
            return None
        record = max(same, key=lambda r: str(r.get("RegisteredAt") or r.get("BeaconID")))
        moved = (f"the assignment names {beacon_id}, but the databeacon {record.get('Name')!r} is now registered as "
                 f"{record['BeaconID']}")
        if overall(statuses) == "bootstrapped":
            # A databeacon restart with the coordinator up: the bootstrap state survives, and the
            # persistence items are routed by capability, not by the assigned ID (live §6).
            report.check("beacon", True, f"{moved} (the databeacon restarted while the coordinator stayed up); the "
                         f"bridges are still bootstrapped and the coordinator routes its writes by capability, so "
                         f"they reach the new process")
        else:
            report.check("beacon", False, f"{moved}: the coordinator restarted (its bootstrap state is gone and every "
                         f"BeaconID changed), so it waits for the old ID in state {overall(statuses)} and writes "
                         f"nothing to the databeacon", fix=REPAIR_FIX + " to assign the current BeaconID",
                         repairable=True)
    report.data["Beacon"] = {"Name": record.get("Name"), "BeaconID": record.get("BeaconID")}
    return record


def _read_table(report: _Report, coordinator, name: str, hash_: str, table: str, timeout_ms: int) -> bool:
    path = databeacon.endpoint_base(hash_, table) + "s/0/1"
    label = f"read {table}"
    try:
        out = databeacon.ask(coordinator, name, "MeadowProxy", "Request",
                             {"Method": "GET", "Path": path, "RemoteUser": REMOTE_USER}, timeout_ms)
    except WorkError as exc:
        if "allowlist" in str(exc):
            report.check(label, False, f"MeadowProxy refuses {path}: the path is not in the databeacon's allowlist, "
                         f"so every write to {table} fails too", fix=REPAIR_FIX + " (the bootstrap extends the "
                         "allowlist)", repairable=True)
        else:
            report.check(label, False, f"MeadowProxy GET {path} failed: {exc}", fix=REPAIR_FIX, repairable=True)
        return False
    status = out.get("Status")
    if status == 200:
        report.check(label, True, f"GET {path} answered 200 through MeadowProxy")
        return True
    error = _error_text(out.get("Body"))
    if status == 404:
        report.check(label, False, f"{path} is not served (404): the {table} endpoint is not enabled on route hash "
                     f"{hash_!r}", fix=REPAIR_FIX + " (the bootstrap enables it)", repairable=True)
    elif "no such table" in error.lower() or "doesn't exist" in error.lower() or "does not exist" in error.lower():
        report.check(label, False, f"the table {table} does not exist in the connection ({error})",
                     fix=REPAIR_FIX + " (the bootstrap's EnsureSchema creates it)", repairable=True)
    else:
        report.check(label, False, f"GET {path} answered {status}: {error or 'no error text'}", fix=REPAIR_FIX,
                     repairable=True)
    return False


def _error_text(body) -> str:
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()[:200]
        body = parsed
    if isinstance(body, dict):
        return str(body.get("Error") or body.get("message") or "")
    return ""


def _columns(report: _Report, coordinator, name: str, conn: dict, table: str, timeout_ms: int) -> None:
    wanted = ULTRAVISOR_FIELDS.get(table) or ()
    sql = _COLUMNS_SQL.get(str(conn.get("Type") or "").lower())
    if not wanted:
        return
    label = f"columns of {table}"
    if sql is None:
        report.check(label, True, f"not checked: no column query for connection type {conn.get('Type')!r}")
        return
    try:
        work_hash, out = databeacon.ask_item(coordinator, name, "DataBeaconAccess", "QueryTable",
                                             {"IDBeaconConnection": conn["IDBeaconConnection"],
                                              "SQL": sql.format(table=table)}, timeout_ms)
        report.probe = report.probe or work_hash
    except WorkError as exc:
        report.check(label, True, f"not checked: QueryTable failed ({exc})")
        return
    present = {str(row.get("name") or row.get("NAME") or "") for row in out.get("Rows") or [] if isinstance(row, dict)}
    missing = [c for c in wanted if c not in present]
    if missing:
        report.check(label, False, f"Ultravisor's writes to {table} fail: it sends {', '.join(missing)}, which the "
                     f"table has no column for (the databeacon answers 'has no column named {missing[0]}')",
                     fix=f"add the column(s) {', '.join(missing)} to {table} in that database")
    else:
        report.check(label, True, f"{table} has the columns Ultravisor sends ({', '.join(wanted)})")


def _bridge_read(report: _Report, coordinator, statuses: dict) -> None:
    if statuses["Queue"].get("State") != "bootstrapped":
        return
    snapshot = persistence.queue_snapshot(coordinator, 1)
    if snapshot.get("History") is None:
        report.check("coordinator bridge read", False, "the coordinator says bootstrapped, but its own read through the "
                     f"Queue bridge fails: {_bootstrap_trigger(statuses)} met UV endpoints the databeacon had enabled "
                     "already, EnableEndpoint answered 'already enabled' without an EndpointBase, so the coordinator "
                     "uses /1.0/<Table>, which the MeadowProxy allowlist refuses; every write fails the same way",
                     fix=REPAIR_FIX, repairable=True)
    else:
        report.check("coordinator bridge read", True, "the coordinator reads its queue history through its bridge")


def _bootstrap_trigger(statuses: dict) -> str:
    """What started the Queue bridge's last bootstrap, as the status shows it."""
    queue = statuses["Queue"]
    if queue.get("AssignedAt"):
        return f"the bootstrap after the Assign at {queue['AssignedAt']}"
    return "the last bootstrap"


def _writes_land(report: _Report, coordinator, name: str, conn: dict, statuses: dict, timeout_ms: int) -> None:
    """The evidence: do the coordinator's mirrored writes of the doctor's own work item land?"""
    if statuses["Queue"].get("State") != "bootstrapped":
        return  # not in MeadowProxy mode: the checks above say why nothing reaches the databeacon
    label = "writes land"
    settings = {"IDBeaconConnection": conn["IDBeaconConnection"], "SQL": _PROBE_SQL}
    try:
        # The upsert, events and attempt of an item are sent as it is enqueued and dispatched,
        # so a column query sent earlier serves as the probe; else one is sent.
        probe = report.probe or databeacon.ask_item(coordinator, name, "DataBeaconAccess", "QueryTable", settings,
                                                    timeout_ms)[0]
        if not probe or not _SAFE_HASH.match(str(probe)):
            report.check(label, False, f"cannot tell: the coordinator named the probe's work item {probe!r}",
                         fix="look for the coordinator's persistence warnings in its log")
            return
        out = databeacon.ask(coordinator, name, "DataBeaconAccess", "QueryTable",
                             {**settings, "SQL": _LANDED_SQL.format(h=probe)}, timeout_ms)
    except WorkError as exc:
        report.check(label, False, f"cannot tell: the probe's QueryTable failed ({exc})",
                     fix="look for the coordinator's persistence warnings in its log")
        return
    rows = out.get("Rows") or [{}]
    row = {str(k).lower(): v for k, v in (rows[0] if isinstance(rows[0], dict) else {}).items()}
    found = {k: int(row.get(k) or 0) for k in ("items", "events", "attempts")}
    held = f"{found['items']} work-item row(s), {found['events']} event(s), {found['attempts']} attempt(s)"
    if all(found.values()):
        report.check(label, True, f"the coordinator's writes land: for its work item {probe} (a read of the doctor's) "
                                  f"connection {conn['IDBeaconConnection']} holds {held}")
        return
    causes = [c["Detail"] for c in report.data["Checks"] if not c["OK"]]
    cause = "see the failures above" if causes else SQLITE_CAUSE if str(conn["Type"]).lower() == "sqlite" else (
        "the databeacon's log names the failing requests")
    detail = (f"the coordinator's writes do not land: for its work item {probe} (a read of the doctor's) connection "
              f"{conn['IDBeaconConnection']} holds {held} ({cause})")
    switch_to = report.data["PersistenceBeacon"]
    if causes and report.repairable():
        report.check(label, False, detail, fix=REPAIR_FIX)
    elif switch_to:
        report.switch = True
        report.check(label, False, detail, fix=f"{REPAIR_FIX} to clear the MeadowProxy assignment: the persistence "
                     f"beacon {switch_to!r} then receives the writes", repairable=True)
    else:
        report.check(label, False, detail, fix=BEACON_FIX)


def repair(coordinator, report: dict, timeout: float = 90.0, interval: float = 0.2, on_change=None,
           timeout_ms: int = databeacon.DEFAULT_TIMEOUT_MS) -> dict:
    """Disable the UV endpoints, clear, assign the current BeaconID, watch; then diagnose again.

    With ``RepairKind`` "switch" only clear: the persistence beacon takes the writes then.
    """
    from ..schema import UV_TABLES

    if not report.get("Repairable"):
        raise UvctlError("nothing here is fixed by --repair; see the fixes the doctor printed")
    if report["RepairKind"] == "switch":
        persistence.clear(coordinator)
        return {"Steps": [f"Assign BeaconID null (the persistence beacon {report['PersistenceBeacon']!r} takes the "
                          f"writes)"], "Watch": None, "After": diagnose(coordinator, timeout_ms)}
    name, beacon_id = report["Beacon"]["Name"], report["Beacon"]["BeaconID"]
    conn_id = report["Connection"]["IDBeaconConnection"]
    steps = []
    for table in UV_TABLES:
        databeacon.ask(coordinator, name, "DataBeaconManagement", "DisableEndpoint",
                       {"IDBeaconConnection": conn_id, "TableName": table}, timeout_ms)
        steps.append(f"DisableEndpoint {table}")
    persistence.clear(coordinator)
    steps.append("Assign BeaconID null")
    answered = persistence.assign(coordinator, beacon_id, conn_id)
    steps.append(f"Assign {beacon_id} connection {conn_id}")
    result = follow(coordinator, timeout, interval, first=answered, on_change=on_change)
    return {"Steps": steps, "Watch": result.to_dict(), "After": diagnose(coordinator, timeout_ms)}
