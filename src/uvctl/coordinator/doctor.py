"""Check that a coordinator's persistence writes can really land, and repair what can be.

The live runs (databeacon-live.md §5-6) show a coordinator saying ``bootstrapped`` while
every write fails: a stale BeaconID after a restart, endpoint paths the MeadowProxy
allowlist refuses (a re-bootstrap gets "already enabled" without an EndpointBase and falls
back to ``/1.0/<Table>``), missing columns. The doctor sends only harmless reads:

1. the status of both bridges and the assigned BeaconID against the registered beacons;
2. ``ListConnections`` on the databeacon: the assigned connection and its route hash;
3. per UV table, ``MeadowProxy GET /1.0/<hash>/<Table>s/0/1`` through the coordinator;
4. per UV table, the columns (a ``SELECT`` through ``DataBeaconAccess/QueryTable``) against
   the fields Ultravisor sends that the UV schema lacks;
5. ``GET /Beacon/Queue?include=history&limit=1``: the coordinator's own read through its
   bridge, with whatever endpoint paths it cached.

The repair is the one that worked live: ``DisableEndpoint`` on the four UV tables (so the
next ``EnableEndpoint`` answers a fresh EndpointBase), ``Assign {BeaconID: null}``, then
``Assign`` with the databeacon's current BeaconID, and watch the bootstrap.
"""

from __future__ import annotations

import json

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
#: Upstream write defects no read can see (databeacon-live.md §5), said as notes, not failures.
MANIFEST_NOTE = ("Ultravisor 1.3.24 writes a manifest with a POST each time, so only a run's first state lands "
                 "(the next POST hits the unique Hash); the journal and 'uvctl flush' keep the final one")
SQLITE_NOTE = ("on SQLite, Ultravisor 1.3.24 sends work-item Settings and event Payload as JSON objects, which the "
               "databeacon cannot bind: those writes fail even with every column present (attempts and manifests land)")


class _Report:
    def __init__(self, coordinator, statuses: dict):
        self.data = {"Coordinator": coordinator.display_url, "State": overall(statuses), "Status": statuses,
                     "Beacon": None, "Connection": None, "Checks": [], "Notes": []}

    def check(self, name: str, ok: bool, detail: str, fix: str | None = None, repairable: bool = False) -> None:
        self.data["Checks"].append({"Check": name, "OK": ok, "Detail": detail, "Fix": None if ok else fix,
                                    "Repairable": bool(repairable and not ok)})

    def done(self) -> dict:
        checks = self.data["Checks"]
        self.data["Healthy"] = all(c["OK"] for c in checks)
        located = self.data["Beacon"] is not None and self.data["Connection"] is not None
        self.data["Repairable"] = located and any(c["Repairable"] for c in checks)
        return self.data


def diagnose(coordinator, timeout_ms: int = databeacon.DEFAULT_TIMEOUT_MS) -> dict:
    """Run the checks; ``{Coordinator, State, Status, Beacon, Connection, Checks, Notes, Healthy, Repairable}``.

    ``Notes`` are known upstream write defects that no read can confirm; they do not count as problems.
    """
    from ..schema import UV_TABLES

    statuses = persistence.status(coordinator)
    report = _Report(coordinator, statuses)
    target = _assignment(report, statuses)
    if target is None:
        return report.done()
    beacon_id, conn_id = target
    for bridge in persistence.BRIDGES:
        if statuses[bridge].get("State") == "error":
            report.check(f"{bridge} bootstrap", False, f"the {bridge} bridge's bootstrap failed: "
                         f"{statuses[bridge].get('LastError')}", fix=REPAIR_FIX + " to run it again", repairable=True)
    record = _beacon(report, coordinator, beacon_id)
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
    report.check("connection", True, f"connection {conn_id} {conn['Name']!r} ({conn['Type']}) serves route hash "
                                     f"{conn['RouteHash']!r}")
    report.data["Notes"] = [MANIFEST_NOTE] + ([SQLITE_NOTE] if str(conn["Type"]).lower() == "sqlite" else [])
    try:
        for table in UV_TABLES:
            if _read_table(report, coordinator, name, conn["RouteHash"], table, timeout_ms):
                _columns(report, coordinator, name, conn, table, timeout_ms)
    except BeaconOffline as exc:
        report.check("databeacon answers", False, str(exc), fix="start the databeacon")
        return report.done()
    _bridge_read(report, coordinator, statuses)
    return report.done()


def _assignment(report: _Report, statuses: dict):
    assigned = {b: (statuses[b].get("AssignedBeaconID"), statuses[b].get("IDBeaconConnection"))
                for b in persistence.BRIDGES}
    targets = {t for t in assigned.values() if t[0]}
    if not targets:
        if any(statuses[b].get("BootstrappedAt") for b in persistence.BRIDGES):
            detail = ("nothing is assigned, yet a bootstrap ran: a beacon tagged PersistenceConnectionID (tag-scan "
                      "mode) is used, which the status never shows and which breaks the same way after a restart")
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


def _beacon(report: _Report, coordinator, beacon_id: str) -> dict | None:
    records = [r for r in coordinator.list_beacons() if isinstance(r, dict)]
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
        report.check("beacon", False, f"the assignment names {beacon_id}, but the databeacon {record.get('Name')!r} is "
                     f"now registered as {record['BeaconID']} (Ultravisor restarted or the beacon reconnected; "
                     f"BeaconIDs change each time): the coordinator waits for the old ID and writes nothing",
                     fix=REPAIR_FIX + " to assign the current BeaconID", repairable=True)
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
        out = databeacon.ask(coordinator, name, "DataBeaconAccess", "QueryTable",
                             {"IDBeaconConnection": conn["IDBeaconConnection"], "SQL": sql.format(table=table)},
                             timeout_ms)
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
                     "Queue bridge fails: after an Ultravisor restart EnableEndpoint answers 'already enabled' without "
                     "an EndpointBase, so the coordinator uses /1.0/<Table>, which the MeadowProxy allowlist refuses; "
                     "every write fails the same way", fix=REPAIR_FIX, repairable=True)
    else:
        report.check("coordinator bridge read", True, "the coordinator reads its queue history through its bridge")


def repair(coordinator, report: dict, timeout: float = 90.0, interval: float = 0.2, on_change=None,
           timeout_ms: int = databeacon.DEFAULT_TIMEOUT_MS) -> dict:
    """Disable the UV endpoints, clear, assign the current BeaconID, watch; then diagnose again."""
    from ..schema import UV_TABLES

    if not report.get("Repairable"):
        raise UvctlError("nothing here is fixed by --repair; see the fixes the doctor printed")
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
