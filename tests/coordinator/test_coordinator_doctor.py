"""`uvctl coordinator persistence doctor [--repair]`: the restart scenarios of the live runs."""

import json
import sqlite3

import pytest

from uvctl.coordinator import EXIT_TIMEOUT, EXIT_UNHEALTHY

UV_TABLES = ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest")
REPORT_KEYS = {"Coordinator", "State", "Status", "Beacon", "Connection", "PersistenceBeacon", "Checks", "Notes",
               "Healthy", "Repairable", "RepairKind", "Repair"}


def doctor(uvctl, *extra):
    result = uvctl("coordinator", "persistence", "doctor", "--json", *extra)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def failing(report):
    return {c["Check"]: c for c in report["Checks"] if not c["OK"]}


@pytest.fixture
def bootstrapped(coordinator, databeacon, uvctl):
    result = uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1")
    assert result.exit_code == 0, result.output
    return databeacon


def test_a_healthy_assignment(bootstrapped, uvctl):
    bootstrapped.received.clear()  # assign ran the same checks
    result, report = doctor(uvctl)
    assert result.exit_code == 0, result.output
    assert set(report) == REPORT_KEYS and report["Repair"] is None
    assert report["Healthy"] and not report["Repairable"]
    assert set(report["Checks"][0]) == {"Check", "OK", "Detail", "Fix", "Repairable"}
    checks = [c["Check"] for c in report["Checks"]]
    assert checks[:3] == ["assignment", "beacon", "connection"]
    assert [f"read {t}" for t in UV_TABLES] == [c for c in checks if c.startswith("read ")]
    assert checks[-2:] == ["coordinator bridge read", "writes land"]
    assert "holds 1 work-item row(s), 3 event(s), 1 attempt(s)" in report["Checks"][-1]["Detail"]
    reads = [s["Path"] for c, a, s in bootstrapped.received if a == "Request" and s.get("RemoteUser") == "uvctl-doctor"]
    assert reads == [f"/1.0/uv-test-persistence/{t}s/0/1" for t in UV_TABLES]
    # Each DataBeaconAccess read is a work item the real coordinator mirrors: few of them.
    mirrored = [a for c, a, s in bootstrapped.received if c == "DataBeaconAccess"]
    assert mirrored == ["ListConnections", "QueryTable", "QueryTable", "QueryTable", "QueryTable"]
    assert [n.split(",")[0] for n in report["Notes"]] == ["Ultravisor 1.3.24 writes a manifest with a POST each time"]
    text = uvctl("coordinator", "persistence", "doctor").stdout
    assert "writes land: no problem found" in text


def test_nothing_assigned(coordinator, uvctl):
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY
    assert "nothing is assigned" in failing(report)["assignment"]["Detail"]
    result = uvctl("coordinator", "persistence", "doctor", "--repair", "--yes")
    assert result.exit_code == EXIT_UNHEALTHY and "--repair cannot fix" in result.stderr


def test_ultravisor_restart_stale_beacon_id_then_allowlist_refusals_then_repair(coordinator, bootstrapped, uvctl):
    old_id = bootstrapped.beacon_id
    coordinator.restart()
    new_id = bootstrapped.reregister()
    assert new_id != old_id
    status = json.loads(uvctl("coordinator", "persistence", "status", "--json").stdout)
    assert status["State"] == "waiting-for-beacon" and status["Status"]["Queue"]["AssignedBeaconID"] == old_id

    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY
    beacon = failing(report)["beacon"]
    assert old_id in beacon["Detail"] and new_id in beacon["Detail"] and beacon["Repairable"]
    assert report["Beacon"] == {"Name": "uvdb", "BeaconID": new_id}

    # What an operator does first: assign again. The coordinator now says bootstrapped, but the
    # databeacon answered "already enabled" without an EndpointBase: its paths are unhashed,
    # and assign says so instead of reporting success.
    again = uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1")
    assert again.exit_code == EXIT_UNHEALTHY
    assert f"bootstrapped, but writes do not land (after a coordinator restart (the assignment still named {old_id}" \
        in again.stderr and "doctor --repair" in again.stderr and len(again.stderr.splitlines()) == 1
    assert coordinator.endpoint_base["Queue"][new_id]["UVQueueWorkItem"] == "/1.0/UVQueueWorkItem"
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY and report["State"] == "bootstrapped"
    bridge = failing(report)["coordinator bridge read"]
    assert "allowlist" in bridge["Detail"] and bridge["Repairable"] and report["Repairable"]
    assert "the bootstrap after the Assign at " in bridge["Detail"] and "Ultravisor restart" not in bridge["Detail"]
    assert list(failing(report)) == ["coordinator bridge read", "writes land"]
    assert "holds 0 work-item row(s), 0 event(s), 0 attempt(s)" in failing(report)["writes land"]["Detail"]

    refused = uvctl("coordinator", "persistence", "doctor", "--repair")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    result, report = doctor(uvctl, "--repair", "--yes")
    assert result.exit_code == 0, result.output
    repair = report["Repair"]
    assert repair["Steps"][:4] == [f"DisableEndpoint {t}" for t in UV_TABLES]
    assert repair["Steps"][4:] == ["Assign BeaconID null", f"Assign {new_id} connection 1"]
    assert repair["Watch"]["Outcome"] == "bootstrapped" and repair["After"]["Healthy"]
    assert coordinator.endpoint_base["Queue"][new_id]["UVQueueWorkItem"] == "/1.0/uv-test-persistence/UVQueueWorkItem"


def test_repair_straight_from_a_stale_beacon_id(coordinator, bootstrapped, uvctl):
    coordinator.restart()
    new_id = bootstrapped.reregister()
    result = uvctl("coordinator", "persistence", "doctor", "--repair", "--yes")
    assert result.exit_code == 0, result.output
    assert "repair: DisableEndpoint UVQueueWorkItem" in result.stdout
    assert "writes land: no problem found" in result.stdout.split("after the repair:")[1]
    assert coordinator.statuses()["Queue"]["AssignedBeaconID"] == new_id


def test_a_databeacon_restart_loses_the_allowlist(coordinator, make_databeacon, uvctl):
    beacon = make_databeacon(default_allowlist=False)  # only the bootstrap's UV pattern admits paths
    assert uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "1").exit_code == 0
    beacon.reset()  # the databeacon restarted: its runtime allowlist extension is gone
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY
    read = failing(report)["read UVQueueWorkItem"]
    assert "not in the databeacon's allowlist" in read["Detail"] and read["Repairable"]
    result, report = doctor(uvctl, "--repair", "--yes")
    assert result.exit_code == 0, result.output
    assert report["Repair"]["After"]["Healthy"]


def test_missing_columns_are_named_and_not_repairable(coordinator, bootstrapped, uvctl):
    with sqlite3.connect(bootstrapped.meadow.db_file) as conn:  # the next test's databeacon fixture adds it back
        conn.execute('ALTER TABLE "UVQueueWorkItemEvent" DROP COLUMN "RunID"')
    result, report = doctor(uvctl)
    assert result.exit_code == EXIT_UNHEALTHY
    columns = failing(report)["columns of UVQueueWorkItemEvent"]
    assert "it sends RunID" in columns["Detail"] and not columns["Repairable"]
    assert not report["Repairable"]
    result = uvctl("coordinator", "persistence", "doctor", "--repair", "--yes")
    assert result.exit_code == EXIT_UNHEALTHY and "--repair cannot fix" in result.stderr
    assert "fix: add the column(s) RunID to UVQueueWorkItemEvent" in result.stdout


def test_watching_a_stale_assignment_times_out_with_a_pointer_to_the_doctor(coordinator, bootstrapped, uvctl):
    coordinator.restart()
    bootstrapped.reregister()
    result = uvctl("coordinator", "persistence", "status", "--watch", "--timeout", "0.5")
    assert result.exit_code == EXIT_TIMEOUT
    assert "Queue waiting-for-beacon" in result.stdout
    assert "timed out after" in result.stderr and "persistence doctor" in result.stderr


def test_repair_asks_first_on_a_terminal(coordinator, bootstrapped, uvctl, monkeypatch):
    import types

    import uvctl.cli.coordinator as console

    coordinator.restart()
    bootstrapped.reregister()
    terminal = types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True),
                                     stdout=types.SimpleNamespace(isatty=lambda: False))
    monkeypatch.setattr(console, "sys", terminal)
    declined = uvctl("coordinator", "persistence", "doctor", "--repair", input="n\n")
    assert declined.exit_code == 1 and "clear the assignment and assign" in declined.output
    assert not any(action == "DisableEndpoint" for _, action, _ in bootstrapped.received)
    accepted = uvctl("coordinator", "persistence", "doctor", "--repair", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert sum(action == "DisableEndpoint" for _, action, _ in bootstrapped.received) == 4
