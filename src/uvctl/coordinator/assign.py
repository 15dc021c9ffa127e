"""Assign a databeacon connection as the coordinator's persistence, by the beacon's name.

Upstream's lab sends the beacon's *name* as ``BeaconID``, which never matches (IDs are
``bcn-<slug>-<ms>``), and a BeaconID changes on every reconnect and coordinator restart. So
the name is resolved to the beacon's **current** BeaconID right before ``Assign``, the
beacon's capabilities and the connection are checked (the coordinator checks nothing), and
the status is then followed until it settles.
"""

from __future__ import annotations

import time

from ..mesh import persistence
from . import databeacon
from .databeacon import BeaconOffline
from .watch import follow


def wait_for_beacon(coordinator, name: str, timeout: float, interval: float = 0.25, on_wait=None) -> dict:
    """The record of the beacon called ``name``, waiting up to ``timeout`` s for it to register."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        record = coordinator.find_beacon(name)
        if record is not None:
            return record
        if time.monotonic() >= deadline:
            names = sorted({str(b.get("Name")) for b in coordinator.list_beacons() if b.get("Name")})
            what = f"did not register within {timeout:g} s with" if timeout > 0 else "is not registered with"
            raise BeaconOffline(
                f"beacon {name!r} {what} the coordinator at {coordinator.display_url} "
                f"(registered: {', '.join(names) or 'none'}); start the databeacon or fix --beacon"
            )
        if on_wait is not None and not announced:
            on_wait(name)
            announced = True
        time.sleep(interval)


def assign_by_name(coordinator, name: str, connection_id: int, *, wait: bool = True, timeout: float = 90.0,
                   interval: float = 0.2, on_wait=None, on_change=None) -> dict:
    """Resolve, check, ``Assign`` and (with ``wait``) follow the status; a report with ``ExitCode``."""
    start = time.monotonic()
    record = wait_for_beacon(coordinator, name, timeout if wait else 0, on_wait=on_wait)
    databeacon.require_databeacon(record)
    remaining_ms = int(max(1.0, timeout - (time.monotonic() - start)) * 1000)
    conn = databeacon.connection(coordinator, name, connection_id, min(databeacon.DEFAULT_TIMEOUT_MS, remaining_ms))
    beacon_id = record["BeaconID"]
    notes = _prepare(coordinator, beacon_id, connection_id)
    answered = persistence.assign(coordinator, beacon_id, connection_id)
    report = {
        "Coordinator": coordinator.display_url,
        "Beacon": {"Name": name, "BeaconID": beacon_id},
        "Connection": {k: conn[k] for k in ("IDBeaconConnection", "Name", "Type", "RouteHash")},
        "Notes": notes,
    }
    if not wait:
        report.update({"Outcome": "assigned", "ExitCode": 0, "ElapsedSeconds": 0.0, "Changes": [],
                       "Status": answered})
        return report
    left = max(0.0, timeout - (time.monotonic() - start))
    result = follow(coordinator, left, interval, first=answered, on_change=on_change)
    report.update(result.to_dict())
    return report


def _prepare(coordinator, beacon_id: str, connection_id: int) -> list[str]:
    """Clear first when Assign alone would keep a bootstrap of another connection; notes saying so.

    The coordinator never bootstraps a BeaconID it has bootstrapped (bridges reference §6.4):
    the same BeaconID with another connection would keep writing to the old one.
    """
    before = persistence.status(coordinator)
    same = [before[b] for b in persistence.BRIDGES if before[b].get("AssignedBeaconID") == beacon_id]
    moved = [s for s in same if str(s.get("IDBeaconConnection")) != str(connection_id)]
    if moved:
        persistence.clear(coordinator)
        return [f"cleared the assignment first: the coordinator never bootstraps the same BeaconID twice, so it "
                f"would have kept writing to connection {moved[0].get('IDBeaconConnection')}"]
    if len(same) == len(persistence.BRIDGES) and all(s.get("State") == "bootstrapped" for s in same):
        return ["this BeaconID and connection were already bootstrapped; the coordinator does not bootstrap them "
                "again ('uvctl coordinator persistence doctor' checks that writes land)"]
    return []
