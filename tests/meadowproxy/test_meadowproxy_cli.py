"""`uvctl persistence assign --backend meadowproxy ...`, status and flush from the command line."""

import json

import pytest

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)


def assign(cli_runner, *args):
    return cli_runner(["persistence", "assign", "--backend", "meadowproxy", *args])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--transport", "mesh", "--url", "http://127.0.0.1:9"], "--transport mesh needs --beacon NAME"),
        (["--transport", "mesh", "--url", "http://127.0.0.1:9", "--beacon", "db1"], "needs --connection ID"),
        (["--transport", "direct", "--url", "ftp://x"], "--url 'ftp://x' must look like http(s)://host:port"),
        (["--transport", "direct", "--url", "http://h:1", "--route-hash", "UV X"], "did you mean 'uv-x'"),
        (["--transport", "direct", "--url", "http://h:1", "--connection", "abc"], "--connection must be a positive"),
        (["--transport", "direct", "--url", "http://h:1", "--beacon", "db1"], "--beacon only applies to --transport mesh"),
        (["--transport", "direct", "--url", "http://h:1", "--timeout-ms", "5"], "--timeout-ms must be a whole number"),
    ],
)
def test_bad_options_are_one_line_errors(cli_runner, args, message):
    result = assign(cli_runner, *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.count("uvctl: error:") == 1


def test_assign_direct_bootstraps_and_status_shows_it(cli_runner, meadow):
    url = meadow.url.replace("http://", "http://ops:hunter2@")
    result = assign(cli_runner, "--transport", "direct", "--url", url, "--route-hash", meadow.route_hash, "--json")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert status["Queue"]["State"] == "bootstrapped" and status["Manifest"]["State"] == "bootstrapped"
    assert status["Queue"]["Identity"] == f"meadowproxy:direct:{meadow.url}:rh-{meadow.route_hash}"


def test_assign_mesh_then_flush_lands_rows_through_the_beacon(cli_runner, coordinator, databeacon, db_rows):
    from uvctl.journal import Journal, normalize_action

    with Journal.open() as journal:
        journal.record_many([
            normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "w1", "Status": "Pending"}}),
            normalize_action("QP_AppendEvent", {"Event": {"WorkItemHash": "w1", "EventType": "enqueued"}}),
            normalize_action("QP_UpdateWorkItem", {"WorkItemHash": "w1", "Patch": {"Status": "Complete"}}),
            normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Complete"}}),
        ])
    result = assign(cli_runner, "--transport", "mesh", "--url", coordinator.url, "--beacon", "db1",
                    "--connection", "1", "--remote-user", "ops@site")
    assert result.exit_code == 0, result.output
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert status["Queue"]["State"] == "bootstrapped", status
    assert status["Queue"]["IDBeaconConnection"] in (1, "1")
    flushed = cli_runner(["flush"])
    assert flushed.exit_code == 0, flushed.output
    assert [(r["WorkItemHash"], r["Status"]) for r in db_rows("UVQueueWorkItem")] == [("w1", "Complete")]
    assert len(db_rows("UVQueueWorkItemEvent")) == 1 and db_rows("UVManifest")[0]["Status"] == "Complete"
    proxied = [s for c, _, s in databeacon.received if c == "MeadowProxy"]
    assert proxied and all(s["RemoteUser"] == "ops@site" for s in proxied)


def test_unknown_beacon_is_waiting_with_the_reason(cli_runner, coordinator, databeacon):
    result = assign(cli_runner, "--transport", "mesh", "--url", coordinator.url, "--beacon", "db9", "--connection", "1")
    assert result.exit_code == 0, result.output
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert status["Queue"]["State"] == "waiting-for-beacon"
    assert "beacon 'db9' is not registered" in status["Queue"]["LastError"]
