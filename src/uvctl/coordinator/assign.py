"""Assign a databeacon connection as the coordinator's persistence, by the beacon's name.

Upstream's lab sends the beacon's *name* as ``BeaconID``, which never matches (IDs are
``bcn-<slug>-<ms>``), and a BeaconID changes on every reconnect and coordinator restart. So
the name is resolved to the beacon's **current** BeaconID right before ``Assign``, the
beacon's capabilities and the connection are checked (the coordinator checks nothing), and
the status is then followed until it settles. ``bootstrapped`` is not taken at its word: the
doctor's checks run before success is reported.
"""

from __future__ import annotations

import time

from ..mesh import persistence
from ..errors import UsageError
from . import EXIT_UNHEALTHY, databeacon
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
    clash = databeacon.route_clash(conn)
    if clash:
        raise UsageError(clash)
    beacon_id = record["BeaconID"]
    notes, trigger = _prepare(coordinator, beacon_id, connection_id)
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
    if result.outcome == "bootstrapped":
        _verify(coordinator, report, trigger)
    return report


def _verify(coordinator, report: dict, trigger: str) -> None:
    """What the doctor checks, before ``bootstrapped`` counts as success."""
    from .doctor import diagnose

    checked = diagnose(coordinator)
    problems = [c for c in checked["Checks"] if not c["OK"]]
    report["Problems"] = problems
    if problems:
        report.update({"Outcome": "writes-fail", "ExitCode": EXIT_UNHEALTHY, "Trigger": trigger})


def _prepare(coordinator, beacon_id: str, connection_id: int) -> tuple[list[str], str]:
    """Clear first when Assign alone would keep a bootstrap of another connection.

    The coordinator never bootstraps a BeaconID it has bootstrapped (bridges reference §6.4):
    the same BeaconID with another connection would keep writing to the old one. Returns
    the notes saying so, and what this Assign follows (named when its writes fail).
    """
    before = persistence.status(coordinator)
    same = [before[b] for b in persistence.BRIDGES if before[b].get("AssignedBeaconID") == beacon_id]
    moved = [s for s in same if str(s.get("IDBeaconConnection")) != str(connection_id)]
    if moved:
        persistence.clear(coordinator)
        return ([f"cleared the assignment first: the coordinator never bootstraps the same BeaconID twice, so it "
                 f"would have kept writing to connection {moved[0].get('IDBeaconConnection')}"],
                "the clear this assign made to move connections")
    if len(same) == len(persistence.BRIDGES) and all(s.get("State") == "bootstrapped" for s in same):
        return (["this BeaconID and connection were already bootstrapped; the coordinator does not bootstrap them "
                 "again"], "an earlier bootstrap of this BeaconID")
    return [], _trigger(before["Queue"], beacon_id)


def _trigger(queue: dict, beacon_id: str) -> str:
    """What a re-bootstrap meeting endpoints enabled already follows, from the status before the Assign."""
    old = queue.get("AssignedBeaconID")
    if old and old != beacon_id and databeacon.beacon_stem(old) == databeacon.beacon_stem(beacon_id):
        if queue.get("State") == "bootstrapped":
            return (f"a databeacon restart (it was bootstrapped as {old}; a restarted databeacon re-enables its "
                    f"endpoints at start-up)")
        return f"a coordinator restart (the assignment still named {old}, {queue.get('State')})"
    if old is None and queue.get("BootstrappedAt"):
        return "tag-scan mode (a beacon tagged PersistenceConnectionID was bootstrapped without an assignment)"
    if old is None:
        return ("a cleared assignment ('persistence clear', or a databeacon restart that re-enabled the endpoints "
                "it had)")
    return f"the assignment to {old}"
