"""A databeacon as the coordinator sees it: its record, capabilities and connections.

Connections are read through a dispatched ``DataBeaconAccess/ListConnections`` (which has no
``Connected`` flag), so each one is then asked ``DataBeaconAccess/ListTables``: an answer
means the connection is live, "not live" means it is not. The route hash a connection's
endpoints use comes from its Name (databeacon.md §1.4).
"""

from __future__ import annotations

import re

from ..errors import UsageError, UvctlError
from ..mesh import DispatchTimeout, WorkError
from . import EXIT_NO_BEACON

#: What the persistence bootstrap and MeadowProxy writes need on the beacon.
REQUIRED_CAPABILITIES = ("MeadowProxy", "DataBeaconSchema", "DataBeaconManagement", "DataBeaconAccess")
DEFAULT_TIMEOUT_MS = 10000


class BeaconOffline(UvctlError):
    """The databeacon is not registered, or does not answer."""

    exit_code = EXIT_NO_BEACON


def _routes():
    # The route-hash rules live in the meadowproxy distribution (its backend applies them too).
    try:
        from uvctl_meadowproxy import routes
    except ImportError:
        raise UvctlError(
            "uvctl coordinator needs the meadowproxy plugin (route hashes); install plugins/meadowproxy"
        ) from None
    return routes


def route_hash(name, connection_id) -> str:
    """The route hash a databeacon gives connection ``connection_id`` called ``name``."""
    return _routes().route_hash_for(name, connection_id)


def endpoint_base(hash_: str, table: str) -> str:
    """``/1.0/<hash>/<Table>`` (``/1.0/<Table>`` for an unnamed connection)."""
    return f"/1.0/{hash_}/{table}" if hash_ else f"/1.0/{table}"


def beacon_stem(beacon_id: str) -> str:
    """``bcn-<slug>`` of ``bcn-<slug>-<ms>``: what stays the same when a beacon re-registers."""
    return re.sub(r"-\d+$", "", str(beacon_id))


def describe(record: dict) -> dict:
    """The parts of a beacon record the console shows."""
    caps = record.get("Capabilities")
    return {
        "Name": record.get("Name"),
        "BeaconID": record.get("BeaconID"),
        "Status": record.get("Status"),
        "Capabilities": [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else [],
        "Tags": record.get("Tags") if isinstance(record.get("Tags"), dict) else {},
        "MaxConcurrent": record.get("MaxConcurrent"),
        "LastHeartbeat": record.get("LastHeartbeat"),
    }


def beacons(coordinator, capability: str | None = None) -> list[dict]:
    """Registered beacons (described), optionally only those with ``capability``."""
    out = [describe(r) for r in coordinator.list_beacons() if isinstance(r, dict)]
    if capability:
        out = [b for b in out if capability in b["Capabilities"]]
    return sorted(out, key=lambda b: (str(b["Name"]), str(b["BeaconID"])))


def require_databeacon(record: dict) -> None:
    """A UsageError unless the beacon has every capability persistence needs."""
    missing = [c for c in REQUIRED_CAPABILITIES if c not in describe(record)["Capabilities"]]
    if missing:
        raise UsageError(
            f"beacon {record.get('Name')!r} lacks {', '.join(missing)}, so it cannot be the persistence "
            f"databeacon; pick one from 'uvctl coordinator beacons --capability MeadowProxy'"
        )


def ask(coordinator, name: str, capability: str, action: str, settings: dict, timeout_ms: int) -> dict:
    """Dispatch one work item to the beacon called ``name``; a BeaconOffline when it does not answer."""
    return ask_item(coordinator, name, capability, action, settings, timeout_ms)[1]


def ask_item(coordinator, name: str, capability: str, action: str, settings: dict,
             timeout_ms: int) -> tuple[str | None, dict]:
    """:func:`ask`, also giving the work item's ``WorkItemHash``."""
    try:
        return coordinator.dispatch_item(capability, action, settings, name, timeout_ms=timeout_ms)
    except DispatchTimeout:
        raise BeaconOffline(
            f"beacon {name!r} is registered with the coordinator at {coordinator.display_url} but did not "
            f"answer {capability}/{action} within {timeout_ms / 1000:g} s; is the databeacon running? "
            f"(beacons that stopped polling stay listed)"
        ) from None


def connections(coordinator, name: str, timeout_ms: int = DEFAULT_TIMEOUT_MS, probe: bool = True) -> list[dict]:
    """The connections of databeacon ``name``: ID, name, engine, connected, route hash, UV tables."""
    outputs = ask(coordinator, name, "DataBeaconAccess", "ListConnections", {}, timeout_ms)
    rows = outputs.get("Connections")
    if not isinstance(rows, list):
        raise UvctlError(f"beacon {name!r} answered ListConnections without a Connections list")
    out = []
    for row in rows:
        if not isinstance(row, dict) or row.get("IDBeaconConnection") is None:
            continue
        conn_id = row["IDBeaconConnection"]
        entry = {
            "IDBeaconConnection": conn_id,
            "Name": row.get("Name"),
            "Type": row.get("Type"),
            "Connected": None,
            "RouteHash": route_hash(row.get("Name"), conn_id),
            "UVTables": None,
        }
        if probe:
            entry.update(_tables(coordinator, name, conn_id, timeout_ms))
        out.append(entry)
    return out


def _tables(coordinator, name: str, conn_id, timeout_ms: int) -> dict:
    from ..schema import UV_TABLES

    try:
        outputs = ask(coordinator, name, "DataBeaconAccess", "ListTables", {"IDBeaconConnection": conn_id}, timeout_ms)
    except WorkError as exc:
        return {"Connected": False if "not live" in str(exc).lower() else None, "Error": str(exc)}
    tables = {t.get("TableName"): bool(t.get("EndpointsEnabled")) for t in outputs.get("Tables") or []
              if isinstance(t, dict)}
    return {"Connected": True, "UVTables": {t: tables[t] for t in UV_TABLES if t in tables}}


def connection(coordinator, name: str, connection_id: int, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> dict:
    """The connection ``connection_id`` of databeacon ``name``; a UsageError listing the others.

    ``SharesRouteWith`` lists the other connections with the same route hash.
    """
    rows = connections(coordinator, name, timeout_ms, probe=False)
    for row in rows:
        if str(row["IDBeaconConnection"]) == str(connection_id):
            clashes = _routes().route_hash_clashes(rows, connection_id)
            return {**row, "SharesRouteWith": [f"{r['IDBeaconConnection']} {r['Name']!r}" for r in clashes]}
    known = ", ".join(f"{r['IDBeaconConnection']} ({r['Name']})" for r in rows) or "none"
    raise UsageError(
        f"databeacon {name!r} has no connection {connection_id} (it has: {known}); "
        f"see 'uvctl coordinator connections --beacon {name}'"
    )


def route_clash(conn: dict) -> str | None:
    """Why a connection that shares its route hash cannot hold the persistence (None when it does not)."""
    if not conn.get("SharesRouteWith"):
        return None
    return (f"connection {conn['IDBeaconConnection']} {conn['Name']!r} has the route hash {conn['RouteHash']!r} of "
            f"connection {', '.join(conn['SharesRouteWith'])} too: the databeacon serves both under "
            f"/1.0/{conn['RouteHash']}/ and writes can land in the other database; rename one of them")
