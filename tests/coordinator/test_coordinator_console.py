"""`uvctl coordinator beacons|connections|persistence assign|status|clear` against the stubs."""

import json

import httpx
import pytest

from uvctl.coordinator import EXIT_ERROR, EXIT_NO_BEACON, EXIT_TIMEOUT, EXIT_UNASSIGNED

DATABEACON_CAPS = ["MeadowProxy", "DataBeaconAccess", "DataBeaconManagement", "DataBeaconSchema"]
STATUS_KEYS = {"State", "AssignedBeaconID", "IDBeaconConnection", "LastError", "BootstrappedAt", "AssignedAt"}
WATCH_KEYS = {"Outcome", "ExitCode", "ElapsedSeconds", "Changes", "Status"}


def register(coordinator, name, caps):
    """A beacon that registers and never polls (HTTP beacons stay 'Online' forever)."""
    return httpx.post(f"{coordinator.url}/Beacon/Register",
                      json={"Name": name, "Capabilities": caps, "MaxConcurrent": 2}).json()["BeaconID"]


def assign(uvctl, *extra, beacon="uvdb"):
    return uvctl("coordinator", "persistence", "assign", "--beacon", beacon, "--connection", "1", *extra)


def test_assign_resolves_the_name_to_the_current_beacon_id_and_prints_each_state_change(coordinator, databeacon, uvctl):
    result = assign(uvctl)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Not a terminal: one plain line per change, never a carriage return.
    assert "\r" not in result.stdout
    assert "Queue waiting-for-beacon, Manifest waiting-for-beacon" in lines[0]
    assert lines[-2].endswith("Queue bootstrapped, Manifest bootstrapped")
    assert lines[-1].startswith(f"bootstrapped on {databeacon.beacon_id} connection 1 'UV Test Persistence'")
    assert "route hash uv-test-persistence" in lines[-1]
    # Upstream's lab sends the name; uvctl sends the registered BeaconID.
    assert coordinator.assignment["Queue"]["BeaconID"] == databeacon.beacon_id != "uvdb"
    steps = [action for _, action, _ in databeacon.received]
    assert "EnsureSchema" in steps and steps.count("EnableEndpoint") == 4


def test_assign_json_shape(coordinator, databeacon, uvctl):
    result = assign(uvctl, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"Coordinator", "Beacon", "Connection", "Notes", "Problems"} | WATCH_KEYS
    assert report["Notes"] == [] and report["Problems"] == []
    assert report["Coordinator"] == coordinator.url
    assert report["Beacon"] == {"Name": "uvdb", "BeaconID": databeacon.beacon_id}
    assert report["Connection"] == {"IDBeaconConnection": 1, "Name": "UV Test Persistence", "Type": "SQLite",
                                    "RouteHash": "uv-test-persistence"}
    assert report["Outcome"] == "bootstrapped" and report["ExitCode"] == 0
    assert report["Changes"][0] == {"Seconds": report["Changes"][0]["Seconds"], "Queue": "waiting-for-beacon",
                                    "Manifest": "waiting-for-beacon"}
    assert report["Changes"][-1]["Queue"] == report["Changes"][-1]["Manifest"] == "bootstrapped"
    for bridge in ("Queue", "Manifest"):
        assert set(report["Status"][bridge]) == STATUS_KEYS
        assert report["Status"][bridge]["BootstrappedAt"]


def test_assign_no_wait_returns_the_answer_of_assign(coordinator, databeacon, uvctl):
    result = assign(uvctl, "--no-wait", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["Outcome"] == "assigned" and report["Changes"] == []
    assert report["Status"]["Queue"]["State"] == "waiting-for-beacon"
    assert report["Status"]["Queue"]["AssignedBeaconID"] == databeacon.beacon_id


def test_a_beacon_that_never_comes_online_exits_4_without_assigning(coordinator, databeacon, uvctl):
    result = assign(uvctl, "--timeout", "0.6", beacon="ghost")
    assert result.exit_code == EXIT_NO_BEACON
    assert "beacon 'ghost' did not register within 0.6 s" in result.stderr and "registered: uvdb" in result.stderr
    assert "waiting for beacon 'ghost' to register" in result.stdout
    assert coordinator.assignment["Queue"] is None
    assert not any(r.startswith("POST /Ultravisor/Persistence/Assign") for r in coordinator.requests)


def test_a_listed_beacon_that_does_not_answer_exits_4(coordinator, uvctl):
    register(coordinator, "zombie", DATABEACON_CAPS)
    result = assign(uvctl, "--timeout", "1", beacon="zombie")
    assert result.exit_code == EXIT_NO_BEACON
    assert "did not answer DataBeaconAccess/ListConnections" in result.stderr
    assert coordinator.assignment["Queue"] is None


def test_a_failing_bootstrap_exits_5_with_its_last_error(coordinator, make_databeacon, uvctl):
    make_databeacon(fail_actions={"EnsureSchema": "SQLITE_FULL: database or disk is full"})
    result = assign(uvctl, "--json")
    assert result.exit_code == EXIT_ERROR
    report = json.loads(result.stdout)
    assert report["Outcome"] == "error"
    assert "EnsureSchema failed: SQLITE_FULL" in report["Status"]["Queue"]["LastError"]


def test_a_bootstrap_that_never_ends_exits_6_at_the_timeout(coordinator, make_databeacon, uvctl):
    make_databeacon(hang_actions={"EnsureSchema"})
    result = assign(uvctl, "--timeout", "1.5")
    assert result.exit_code == EXIT_TIMEOUT
    assert "timed out after" in result.stderr and "bootstrapping" in result.stderr


def test_unknown_connection_and_wrong_beacon_are_bad_input(coordinator, databeacon, uvctl):
    result = uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "9")
    assert result.exit_code == 2
    assert "has no connection 9 (it has: 1 (UV Test Persistence))" in result.stderr
    register(coordinator, "shell1", ["Shell"])
    result = assign(uvctl, beacon="shell1")
    assert result.exit_code == 2
    assert "lacks MeadowProxy" in result.stderr
    assert coordinator.assignment["Queue"] is None


def test_status_clear_and_watch(coordinator, databeacon, uvctl):
    result = uvctl("coordinator", "persistence", "status", "--json")
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert set(status) == {"Coordinator", "State", "Status"} and status["State"] == "unassigned"
    assert set(status["Status"]["Manifest"]) == STATUS_KEYS
    result = uvctl("coordinator", "persistence", "status", "--watch", "--json")
    assert result.exit_code == EXIT_UNASSIGNED
    assert json.loads(result.stdout)["Outcome"] == "unassigned"

    assert assign(uvctl, "--no-wait").exit_code == 0
    result = uvctl("coordinator", "persistence", "status", "--watch", "--json")
    assert result.exit_code == 0, result.output
    watched = json.loads(result.stdout)
    assert set(watched) == {"Coordinator", "State"} | WATCH_KEYS
    assert watched["State"] == watched["Outcome"] == "bootstrapped"
    text = uvctl("coordinator", "persistence", "status").stdout
    assert f"Queue     bootstrapped  {databeacon.beacon_id} connection 1" in text

    result = uvctl("coordinator", "persistence", "clear", "--json")
    assert result.exit_code == 0
    cleared = json.loads(result.stdout)
    assert set(cleared) == {"Coordinator", "Cleared", "State", "Status"}
    assert cleared["State"] == "unassigned" and coordinator.assignment == {"Queue": None, "Manifest": None}


def test_beacons_and_connections(coordinator, databeacon, uvctl):
    register(coordinator, "shell1", ["Shell"])
    result = uvctl("coordinator", "beacons", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["Name"] for r in rows] == ["shell1", "uvdb"]
    assert set(rows[0]) == {"Name", "BeaconID", "Status", "Capabilities", "Tags", "MaxConcurrent", "LastHeartbeat"}
    only = json.loads(uvctl("coordinator", "beacons", "--capability", "MeadowProxy", "--json").stdout)
    assert [r["BeaconID"] for r in only] == [databeacon.beacon_id]

    result = uvctl("coordinator", "connections", "--beacon", "uvdb", "--json")
    assert result.exit_code == 0, result.output
    (conn,) = json.loads(result.stdout)
    assert conn == {"IDBeaconConnection": 1, "Name": "UV Test Persistence", "Type": "SQLite", "Connected": True,
                    "RouteHash": "uv-test-persistence", "UVTables": {t: False for t in (
                        "UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest")}}
    assert [a for _, a, _ in databeacon.received] == ["ListConnections", "ListTables"]
    text = uvctl("coordinator", "connections", "--beacon", "uvdb").stdout
    assert "UV Test Persistence" in text and "connected" in text and "route hash uv-test-persistence" in text
    missing = uvctl("coordinator", "connections", "--beacon", "nope")
    assert missing.exit_code == EXIT_NO_BEACON and "beacon 'nope' is not registered" in missing.stderr
    not_a_databeacon = uvctl("coordinator", "connections", "--beacon", "shell1")  # at once, not after 10 s
    assert not_a_databeacon.exit_code == 2 and "beacon 'shell1' lacks MeadowProxy" in not_a_databeacon.stderr


def test_coordinator_url_is_required_and_never_carries_a_password(uvctl, monkeypatch):
    result = uvctl("coordinator", "beacons")
    assert result.exit_code == 2 and "UVCTL_COORDINATOR" in result.stderr
    result = uvctl("coordinator", "beacons", "--coordinator", "http://ops:hunter2@127.0.0.1:9")
    assert result.exit_code == 2 and "UVCTL_COORDINATOR_PASSWORD" in result.stderr
    assert "hunter2" not in result.output
    result = uvctl("coordinator", "beacons", "--coordinator", "ftp://host")
    assert result.exit_code == 2


def test_an_unreachable_coordinator_is_exit_3(uvctl):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = uvctl("coordinator", "persistence", "status", "--coordinator", f"http://127.0.0.1:{port}")
    assert result.exit_code == 3 and "cannot reach" in result.stderr


@pytest.mark.parametrize("command", [["login"], ["beacons"], ["connections", "--beacon", "x"],
                                     ["persistence", "assign", "--beacon", "x", "--connection", "1"],
                                     ["persistence", "status"], ["persistence", "clear"], ["persistence", "doctor"]])
def test_every_command_has_help_json_and_the_coordinator_option(uvctl, command):
    result = uvctl("coordinator", *command, "--help")
    assert result.exit_code == 0
    assert "--json" in result.stdout and "--coordinator URL" in result.stdout and "--password" not in result.stdout


def test_the_live_line_rewrites_itself_on_a_terminal(capsys, monkeypatch):
    import sys

    from uvctl.cli.coordinator import _LiveLine

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    live = _LiveLine(enabled=True)
    live.show("Queue waiting-for-beacon, Manifest waiting-for-beacon")
    live.show("Queue bootstrapped, Manifest bootstrapped")
    live.end()
    out = capsys.readouterr().out
    first, second = "Queue waiting-for-beacon, Manifest waiting-for-beacon", "Queue bootstrapped, Manifest bootstrapped"
    assert out == f"\r{first}\r{second}{' ' * (len(first) - len(second))}\n"


def test_assigning_again_notes_that_nothing_is_bootstrapped_again(coordinator, databeacon, uvctl):
    assert assign(uvctl).exit_code == 0
    again = assign(uvctl)
    assert again.exit_code == 0
    assert "uvctl: note: this BeaconID and connection were already bootstrapped" in again.stderr
    assert json.loads(assign(uvctl, "--json").stdout)["Notes"][0].startswith("this BeaconID and connection")


def test_another_connection_on_the_same_beacon_is_cleared_first_so_it_bootstraps(coordinator, make_databeacon, uvctl):
    make_databeacon(other_connections=[{"IDBeaconConnection": 2, "Name": "Offline DB", "Type": "MySQL", "Config": "{}"}])
    assert assign(uvctl).exit_code == 0
    result = uvctl("coordinator", "persistence", "assign", "--beacon", "uvdb", "--connection", "2", "--json")
    report = json.loads(result.stdout)
    assert "would have kept writing to connection 1" in report["Notes"][0]
    # Without the clear the coordinator would have kept "bootstrapped" on connection 1; now it
    # really bootstraps connection 2, which is not live on the databeacon.
    assert result.exit_code == EXIT_ERROR
    assert "connection [2] is not live" in report["Status"]["Queue"]["LastError"]
