"""A coordinator's own persistence routes and the read routes that go through its bridges.

Reference: ultravisor-bridges.md §6-7, ultravisor-mesh.md §5.

- ``GET /Ultravisor/Persistence/Status`` → ``{Queue: status, Manifest: status}``; a status is
  ``{State, AssignedBeaconID, IDBeaconConnection, LastError, BootstrappedAt, AssignedAt}``.
- ``POST /Ultravisor/Persistence/Assign {BeaconID, IDBeaconConnection}`` → ``{Success, Queue,
  Manifest}``; ``BeaconID: null`` clears both bridges. Nothing is validated there: an unknown
  BeaconID simply waits forever.
- ``GET /Beacon/Queue?include=history&limit=N`` → ``{Summary, Items, History}``: ``Items`` are the
  scheduler's live work items, ``History`` the bridge's ``listWorkItems`` (``null`` when that read
  failed). There is no offset: the local store clamps ``limit`` to 1..5000 and MeadowProxy mode
  returns at most 250 rows whatever is asked.
- ``GET /Beacon/Work/<hash>/Events`` → ``{WorkItemHash, Events}`` (at most 500; 404 unknown item,
  503 no persistence backend).
- ``GET /Manifest`` → run summaries (live runs, then the bridge's, at most 100 of those);
  ``GET /Manifest/<RunHash>`` → one whole manifest, 404 when unknown.
"""

from __future__ import annotations

from urllib.parse import quote

from .client import Coordinator, MeshError

BRIDGES = ("Queue", "Manifest")
STATES = ("unassigned", "waiting-for-beacon", "bootstrapping", "bootstrapped", "error")
#: Most work items ``/Beacon/Queue`` returns in one answer (the local store's clamp).
HISTORY_MAX = 5000
#: Most events ``/Beacon/Work/<hash>/Events`` returns (its fixed default).
EVENTS_MAX = 500


def _call(coordinator: Coordinator, method: str, path: str, body=None, allow=(200,)):
    """``(status code, JSON body)``; a MeshError naming the route for any other status."""
    response = coordinator._request(method, path, body)
    data = coordinator._json(response)
    if response.status_code not in allow:
        detail = data.get("Error") if isinstance(data, dict) else None
        raise MeshError(
            f"{method} {path.split('?')[0]} on {coordinator.display_url} answered HTTP {response.status_code}"
            + (f": {detail}" if detail else "")
            + ("; is this an Ultravisor coordinator with persistence bridges?" if response.status_code in (404, 502) else "")
        )
    return response.status_code, data


def _statuses(coordinator: Coordinator, data, route: str) -> dict:
    if not isinstance(data, dict) or not all(isinstance(data.get(b), dict) for b in BRIDGES):
        raise MeshError(f"{route} on {coordinator.display_url} did not answer {{Queue, Manifest}} statuses")
    return {bridge: data[bridge] for bridge in BRIDGES}


def status(coordinator: Coordinator) -> dict:
    """``{"Queue": status, "Manifest": status}`` from ``GET /Ultravisor/Persistence/Status``."""
    _, data = _call(coordinator, "GET", "/Ultravisor/Persistence/Status")
    return _statuses(coordinator, data, "GET /Ultravisor/Persistence/Status")


def assign(coordinator: Coordinator, beacon_id: str | None, connection: int = 0) -> dict:
    """``POST /Ultravisor/Persistence/Assign``; the statuses it answers (read before bootstrap starts).

    ``beacon_id`` None clears both bridges.
    """
    body = {"BeaconID": beacon_id, "IDBeaconConnection": int(connection or 0)}
    _, data = _call(coordinator, "POST", "/Ultravisor/Persistence/Assign", body)
    return _statuses(coordinator, data, "POST /Ultravisor/Persistence/Assign")


def clear(coordinator: Coordinator) -> dict:
    """Clear both bridges' assignment (``Assign {"BeaconID": null}``); the statuses."""
    return assign(coordinator, None, 0)


def queue_snapshot(coordinator: Coordinator, limit: int) -> dict:
    """``GET /Beacon/Queue?include=history&limit=N``: ``{Summary, Items, History}``."""
    _, data = _call(coordinator, "GET", f"/Beacon/Queue?include=history&limit={int(limit)}")
    if not isinstance(data, dict):
        raise MeshError(f"GET /Beacon/Queue on {coordinator.display_url} did not answer an object")
    return data


def work_item_events(coordinator: Coordinator, work_item_hash: str) -> list | None:
    """The events of one work item, or None when the coordinator does not know the item."""
    path = f"/Beacon/Work/{quote(work_item_hash, safe='')}/Events"
    code, data = _call(coordinator, "GET", path, allow=(200, 404))
    if code == 404:
        return None
    events = data.get("Events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise MeshError(f"GET {path} on {coordinator.display_url} did not answer {{WorkItemHash, Events}}")
    return events


def manifest_summaries(coordinator: Coordinator) -> list:
    """``GET /Manifest``: the run summaries the coordinator lists."""
    _, data = _call(coordinator, "GET", "/Manifest")
    if not isinstance(data, list):
        raise MeshError(f"GET /Manifest on {coordinator.display_url} did not answer a list")
    return data


def manifest(coordinator: Coordinator, run_hash: str) -> dict | None:
    """``GET /Manifest/<RunHash>``: the whole manifest, or None when unknown."""
    code, data = _call(coordinator, "GET", f"/Manifest/{quote(run_hash, safe='')}", allow=(200, 404))
    return data if code == 200 and isinstance(data, dict) else None
