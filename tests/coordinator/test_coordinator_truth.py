"""Wrong answers of the console against 1.3.24 (issue 16), on the stub's behaviours (uv_coordinator.py).

The import's (item 5) are in test_coordinator_import.py."""

import json

import pytest

from uvctl.coordinator import EXIT_OK, EXIT_UNHEALTHY

COLLIDING = {"IDBeaconConnection": 9, "Name": "UV-Test Persistence!", "Type": "SQLite", "Config": "{}"}


def assign(uvctl, connection="1", *extra):
    return uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", connection, *extra)


def doctor(uvctl):
    result = uvctl("coordinator", "persistence", "doctor", "--json")
    return result, json.loads(result.stdout)


def failing(report):
    return {c["Check"]: c for c in report["Checks"] if not c["OK"]}


@pytest.fixture
def bootstrapped(coordinator, databeacon, uvctl):
    result = assign(uvctl)
    assert result.exit_code == 0, result.output
    return databeacon


def test_doctor_exit_follows_the_rows_the_writes_left(coordinator, bootstrapped, uvctl):
    coordinator.fit_schema = False  # from now on 1.3.24's shapes: objects SQLite cannot bind, no EventGUID
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY and not report["Healthy"]
    assert list(failing(report)) == ["writes land"]
    check = failing(report)["writes land"]
    assert "writes do not land" in check["Detail"] and "0 work-item row(s), 0 event(s), 1 attempt(s)" in check["Detail"]
    assert "JSON objects" in check["Detail"] and "uvctl beacon run" in check["Fix"] and not check["Repairable"]
    text = uvctl("coordinator", "persistence", "doctor")
    assert text.exit_code == EXIT_UNHEALTHY and "FAIL  writes land:" in text.stdout
    assert text.stdout.splitlines()[-1] == "writes do not land: see the FAIL lines"


def test_a_connection_sharing_its_route_hash_is_refused_by_assign(coordinator, make_databeacon, uvctl):
    make_databeacon(other_connections=[COLLIDING])
    result = assign(uvctl, "9")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "route hash 'uv-test-persistence' of connection 1 'UV Test Persistence'" in result.stderr
    assert coordinator.assignment["Queue"] is None


def test_the_doctor_reports_a_route_hash_collision(coordinator, bootstrapped, uvctl):
    bootstrapped.other_connections.append(dict(COLLIDING))  # created after the assignment
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY
    check = failing(report)["connection"]
    assert "connection 9 'UV-Test Persistence!'" in check["Detail"] and "rename one" in check["Fix"]


def test_a_databeacon_restart_with_the_coordinator_up_is_fine_when_writes_land(coordinator, bootstrapped, uvctl):
    old_id = bootstrapped.beacon_id
    bootstrapped.reconnect()  # a new BeaconID; the coordinator keeps its bootstrap state
    assert coordinator.statuses()["Queue"]["State"] == "bootstrapped"
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_OK, result.output
    beacon = next(c for c in report["Checks"] if c["Check"] == "beacon")
    assert beacon["OK"] and old_id in beacon["Detail"] and bootstrapped.beacon_id in beacon["Detail"]
    assert "restarted while the coordinator stayed up" in beacon["Detail"]


@pytest.mark.parametrize("trigger", ["clear", "databeacon restart"])
def test_assign_verifies_before_it_reports_success(coordinator, bootstrapped, uvctl, trigger):
    old_id = bootstrapped.beacon_id
    if trigger == "clear":
        assert uvctl("coordinator", "persistence", "clear").exit_code == 0
        named = "after a cleared assignment"
    else:
        bootstrapped.reconnect()  # it re-enables the endpoints it had at start-up
        named = f"after a databeacon restart (it was bootstrapped as {old_id}"
    result = assign(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("uvctl: bootstrapped, but writes do not land (" + named)
    assert "allowlist" in line and "doctor --repair" in line
    report = json.loads(assign(uvctl, "1", "--json").stdout)
    assert report["Outcome"] == "writes-fail" and report["ExitCode"] == EXIT_UNHEALTHY

    _, checked = doctor(uvctl)
    bridge = failing(checked)["coordinator bridge read"]
    assigned_at = coordinator.statuses()["Queue"]["AssignedAt"]
    assert f"the bootstrap after the Assign at {assigned_at}" in bridge["Detail"]
    assert "Ultravisor restart" not in bridge["Detail"]


def test_repair_switches_to_a_running_persistence_beacon(coordinator, bootstrapped, uvctl):
    import httpx

    coordinator.fit_schema = False
    httpx.post(f"{coordinator.url}/Beacon/Register", json={"Name": "uvctl-beacon", "MaxConcurrent": 8,
                                                           "Capabilities": ["QueuePersistence", "ManifestStore"]})
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY and report["RepairKind"] == "switch"
    assert "persistence beacon 'uvctl-beacon' then receives the writes" in failing(report)["writes land"]["Fix"]
    result = uvctl("coordinator", "persistence", "doctor", "--repair", "--yes")
    assert result.exit_code == EXIT_OK, result.output
    assert "repair: Assign BeaconID null (the persistence beacon 'uvctl-beacon' takes the writes)" in result.stdout
    assert coordinator.assignment == {"Queue": None, "Manifest": None}
    assert "ok    assignment: no MeadowProxy assignment" in result.stdout.split("after the repair:")[1]
