"""``uvctl persistence assign|status|clear`` and the assignment state machine."""

from __future__ import annotations

import json
import stat

import pytest

from uvctl import assignment, host
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec
from uvctl.hookspecs import hookimpl

from .conftest import record, traffic


class ScriptedBackend:
    """An in-process plugin whose bootstrap answers what its --mode option says."""

    seen_states: list = []

    @hookimpl
    def uvctl_register_backends(self, register):
        register(BackendInfo(
            name="scripted",
            summary="test backend",
            options=(
                OptionSpec("Mode", "--mode", "How bootstrap answers.", required=True, choices=("ok", "error", "away")),
                OptionSpec("Token", "--token", "An access token.", secret=True),
                OptionSpec("Loud", "--loud", "Say more.", is_flag=True),
                OptionSpec("BeaconID", "--beacon-id", "Beacon to use.", default="bcn-1"),
            ),
            identity=lambda o: f"scripted:{o['Mode']}",
        ))

    @hookimpl
    def uvctl_bootstrap(self, backend):
        if backend.name != "scripted":
            return None
        ScriptedBackend.seen_states.append(assignment.load()["Queue"]["State"])
        mode = backend.options["Mode"]
        state = {"ok": "bootstrapped", "error": "error", "away": "waiting-for-beacon"}[mode]
        return BootstrapResult(state, reason=None if mode == "ok" else f"mode {mode}; token={backend.options.get('Token')}")

    closed: list = []

    @hookimpl
    def uvctl_close(self, backend):
        if backend.name == "scripted":
            ScriptedBackend.closed.append(backend.options["Mode"])


@pytest.fixture
def scripted():
    host.register_plugin(ScriptedBackend(), "scripted-test")
    ScriptedBackend.seen_states, ScriptedBackend.closed = [], []
    yield ScriptedBackend
    host.unregister_plugin("scripted-test")


def test_assign_writes_a_private_file_and_status_masks_the_password(pg_url, cli_runner, data_dir, journal):
    url = pg_url.replace("postgres@", "postgres:s3cret@")  # the server trusts loopback: any password works
    record(journal, traffic(2, manifests=1))
    result = cli_runner(["persistence", "assign", "--backend", "sql", "--db", url])
    assert result.exit_code == 0, result.output
    assert "bootstrapped" in result.output and "s3cret" not in result.output
    file = data_dir / "persistence-assignment.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    doc = json.loads(file.read_text())
    assert set(doc) == {"Queue", "Manifest"}
    assert set(doc["Queue"]) == {"BeaconID", "IDBeaconConnection", "AssignedAt", "Backend", "Options", "State",
                                 "LastError", "BootstrappedAt", "CheckedAt"}
    assert doc["Queue"]["Options"] == {"Db": url} and doc["Queue"]["State"] == "bootstrapped"
    status = cli_runner(["persistence", "status", "--json"])
    assert "s3cret" not in status.output
    row = json.loads(status.output)["Queue"]
    assert row["State"] == "bootstrapped" and row["BootstrappedAt"] and row["AssignedAt"]
    assert row["Identity"] == "sql:" + url.replace("s3cret", "***")
    assert row["HighWaterMark"] == 0 and row["Pending"] == journal.count_after("Queue", 0)
    assert cli_runner(["flush"]).exit_code == 0
    row = json.loads(cli_runner(["persistence", "status", "--json"]).output)["Manifest"]
    assert row["HighWaterMark"] == journal.last_seq("Manifest") and row["Pending"] == 0


def test_one_bridge_at_a_time_and_clear(cli_runner, sqlite_url, data_dir):
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url, "--queue-only"]).exit_code == 0
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert status["Queue"]["State"] == "bootstrapped" and status["Manifest"]["State"] == "unassigned"
    result = cli_runner(["persistence", "clear", "--queue-only", "--manifest-only"])
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert cli_runner(["persistence", "clear", "--queue-only"]).exit_code == 0
    assert json.loads((data_dir / "persistence-assignment.json").read_text()) == {"Queue": None, "Manifest": None}
    assert "Queue: unassigned" in cli_runner(["persistence", "status"]).output


@pytest.mark.parametrize("content, problem", [
    ('{"Queue": {"Backend": "sql", ', "line 1"),
    ('{"Queue": 5, "Manifest": null}', "Queue must be an object or null"),
    ('{"Queue": {"BeaconID": "bcn-x"}, "Manifest": null}', "Queue has no Backend name"),
    ('[1, 2]', "expected an object"),
    ('null', "got null"),
    ('{}', "no Queue and no Manifest entry"),
    ('{"Queue": null}', "no Manifest entry"),
])
def test_a_corrupt_assignment_file_is_an_error_naming_it(cli_runner, data_dir, content, problem):
    data_dir.mkdir(parents=True, exist_ok=True)
    file = data_dir / "persistence-assignment.json"
    file.write_text(content)
    for args in (["persistence", "status"], ["flush"], ["persistence", "assign", "--backend", "sql"]):
        result = cli_runner(args)
        assert result.exit_code == 1, args
        assert str(file) in result.output and "corrupt" in result.output and problem in result.output
        assert "Traceback" not in result.output
    assert file.read_text() == content  # never silently reset


def test_backend_options_come_from_the_plugin(scripted, cli_runner, data_dir):
    help_text = cli_runner(["persistence", "assign", "--help"]).output
    for flag in ("--mode", "--token", "--loud", "--beacon-id", "--db"):
        assert flag in help_text
    assert "[scripted] How bootstrap answers. Required. One of: ok, error, away." in " ".join(help_text.split())
    result = cli_runner(["persistence", "assign", "--backend", "scripted"])
    assert result.exit_code == 2 and "needs --mode" in result.output
    result = cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", "maybe"])
    assert result.exit_code == 2 and "--mode must be one of ok, error, away" in result.output
    result = cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", "ok", "--db", "sqlite:///x"])
    assert result.exit_code == 2 and "--db is not an option of backend 'scripted'" in result.output
    assert not (data_dir / "persistence-assignment.json").exists()
    result = cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", "ok", "--loud", "--token", "t0psecret", "--json"])
    assert result.exit_code == 0, result.output
    assert "t0psecret" not in result.output
    row = json.loads(result.output)["Queue"]
    assert row["Options"] == {"Mode": "ok", "Token": "***", "Loud": True, "BeaconID": "bcn-1"}
    assert row["BeaconID"] == "bcn-1" and row["Identity"] == "scripted:ok"


@pytest.mark.parametrize("mode, state", [("ok", "bootstrapped"), ("error", "error"), ("away", "waiting-for-beacon")])
def test_status_runs_the_state_machine(scripted, cli_runner, mode, state):
    result = cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", mode, "--token", "t0psecret", "--json"])
    assert result.exit_code == (1 if state == "error" else 0)  # waiting for the beacon is not a failure
    if state == "error":
        assert "Queue and Manifest assigned, but the bootstrap failed: mode error" in result.stderr
    rows = json.loads(result.stdout)
    assert scripted.seen_states == ["bootstrapping"]  # recorded while the hook ran, once for both bridges
    for bridge in ("Queue", "Manifest"):
        assert rows[bridge]["State"] == state
        assert (rows[bridge]["BootstrappedAt"] is not None) == (state == "bootstrapped")
        if state != "bootstrapped":
            assert rows[bridge]["LastError"].startswith(f"mode {mode}") and "t0psecret" not in rows[bridge]["LastError"]
    status = cli_runner(["persistence", "status", "--json"])
    assert status.exit_code == (1 if state == "error" else 0)  # a bridge in error is a failure a script sees
    rows = json.loads(status.stdout)
    assert rows["Queue"]["State"] == state
    assert len(scripted.seen_states) == (1 if state == "bootstrapped" else 2)  # retried only when not ready
    no_bootstrap = json.loads(cli_runner(["persistence", "status", "--json", "--no-bootstrap"]).stdout)
    assert no_bootstrap["Queue"]["State"] == state and len(scripted.seen_states) == (1 if state == "bootstrapped" else 2)


def test_lost_readiness_is_bootstrapped_again(scripted):
    assignment.assign("scripted", {"Mode": "ok"})
    assert assignment.backend_for("Queue", bootstrap=True) is not None
    assignment.mark_needs_bootstrap("Queue", "table UVQueueWorkItem vanished")
    entry = assignment.load()["Queue"]
    assert (entry["State"], entry["LastError"]) == ("waiting-for-beacon", "table UVQueueWorkItem vanished")
    assert assignment.backend_for("Queue") is not None  # the handle, whatever the state
    assert assignment.backend_for("Queue", bootstrap=True) is not None
    assert assignment.load()["Queue"]["State"] == "bootstrapped"


def test_a_database_that_appears_later_gets_bootstrapped(cli_runner, tmp_path):
    folder = tmp_path / "later"
    url = f"sqlite:///{folder}/db.sqlite"
    result = cli_runner(["persistence", "assign", "--backend", "sql", "--db", url, "--json"])
    assert result.exit_code == 0
    row = json.loads(result.output)["Queue"]
    assert row["State"] == "waiting-for-beacon" and "cannot reach database" in row["LastError"]
    folder.mkdir()
    row = json.loads(cli_runner(["persistence", "status", "--json"]).output)["Queue"]
    assert row["State"] == "bootstrapped" and row["LastError"] is None


def test_a_handle_is_closed_when_its_assignment_changes_or_is_cleared(scripted, data_dir):
    assignment.assign("scripted", {"Mode": "ok"})
    first = assignment.backend_for("Queue", bootstrap=True)
    assert assignment.backend_for("Manifest") is first and scripted.closed == []  # one handle per assignment
    assignment.assign("scripted", {"Mode": "away"}, ("Queue",))
    assert scripted.closed == []  # the Manifest bridge still uses it
    assignment.backend_for("Queue")
    assignment.assign("scripted", {"Mode": "away"}, ("Manifest",))
    assert scripted.closed == ["ok"]
    assignment.clear()
    assert scripted.closed == ["ok", "away"]


def test_status_of_a_backend_whose_plugin_was_removed_says_so_and_claims_no_count(scripted, cli_runner, journal):
    record(journal, traffic(2))
    assert cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", "ok"]).exit_code == 0
    host.unregister_plugin("scripted-test")
    assignment.close_all_handles()  # as a new process starts: no handle opened before the removal
    try:
        result = cli_runner(["persistence", "status", "--json"])
        text = cli_runner(["persistence", "status"]).output
    finally:
        host.register_plugin(ScriptedBackend(), "scripted-test")
    row = json.loads(result.stdout)["Queue"]
    assert row["State"] == "error" and "backend 'scripted'" in row["LastError"] and "is not installed" in row["LastError"]
    assert "reinstall that plugin" in row["LastError"]
    assert row["Pending"] is None and row["HighWaterMark"] is None
    assert "pending records unknown" in text


def test_an_assign_replaced_by_another_meanwhile_says_so(scripted, cli_runner, monkeypatch):
    from uvctl.cli import persistence as cli_persistence

    original = cli_persistence._status

    def raced(*args, **kwargs):  # another process assigns between our write and our status
        assignment.assign("scripted", {"Mode": "away"})
        return original(*args, **kwargs)

    monkeypatch.setattr(cli_persistence, "_status", raced)
    result = cli_runner(["persistence", "assign", "--backend", "scripted", "--mode", "ok"])
    assert result.exit_code == 1 and "another 'uvctl persistence assign' replaced this assignment" in result.stderr


def test_assign_and_clear_of_one_bridge_report_both_in_json(cli_runner, sqlite_url):
    assigned = cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url, "--queue-only", "--json"])
    assert assigned.exit_code == 0, assigned.output
    rows = json.loads(assigned.stdout)
    assert set(rows) == {"Queue", "Manifest"} and rows["Manifest"]["State"] == "unassigned"
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    cleared = cli_runner(["persistence", "clear", "--queue-only", "--json"])
    assert cleared.exit_code == 0, cleared.output
    rows = json.loads(cleared.stdout)
    assert (rows["Queue"]["State"], rows["Manifest"]["State"]) == ("unassigned", "bootstrapped")
