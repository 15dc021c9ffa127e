"""Login against a secured coordinator stub: cached 0600 cookie, login on demand, secrets never printed."""

import json
import stat

import httpx
import pytest

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def secured(make_uv, monkeypatch):
    stub = make_uv(secured=True, users={"ops": PASSWORD})
    monkeypatch.setenv("UVCTL_COORDINATOR", stub.url)
    monkeypatch.setenv("UVCTL_COORDINATOR_USER", "ops")
    return stub


def sessions_file(data_dir):
    return data_dir / "coordinator-sessions.json"


def assert_no_secret(result, stub):
    for secret in [PASSWORD, *stub.sessions]:
        assert secret not in result.output


def test_login_caches_the_session_cookie_0600_and_later_commands_reuse_it(secured, uvctl, data_dir, monkeypatch):
    monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", PASSWORD)
    result = uvctl("coordinator", "login", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {"Coordinator": secured.url, "LoginRequired": True, "UserName": "ops", "LoggedIn": True,
                      "SessionCached": True, "SessionFile": str(sessions_file(data_dir))}
    assert stat.S_IMODE(sessions_file(data_dir).stat().st_mode) == 0o600
    cached = json.loads(sessions_file(data_dir).read_text())[secured.url]
    assert cached["SessionID"] in secured.sessions and cached["UserName"] == "ops"
    assert_no_secret(result, secured)

    monkeypatch.delenv("UVCTL_COORDINATOR_PASSWORD")  # the cookie is enough now
    monkeypatch.delenv("UVCTL_COORDINATOR_USER")
    result = uvctl("coordinator", "persistence", "status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["State"] == "unassigned"
    assert secured.logins == 1
    assert_no_secret(result, secured)


def test_commands_log_in_on_demand_and_again_when_the_session_expired(secured, uvctl, data_dir, monkeypatch):
    monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", PASSWORD)
    login = httpx.post(f"{secured.url}/1.0/Authenticate", json={"UserName": "ops", "Password": PASSWORD})
    httpx.post(f"{secured.url}/Beacon/Register", cookies=login.cookies,
               json={"Name": "db1", "Capabilities": ["MeadowProxy"], "MaxConcurrent": 2})
    result = uvctl("coordinator", "beacons", "--json")
    assert result.exit_code == 0, result.output
    assert [b["Name"] for b in json.loads(result.stdout)] == ["db1"]
    assert secured.logins == 2 and sessions_file(data_dir).exists()

    secured.sessions.clear()  # the coordinator restarted: the cached cookie is stale
    result = uvctl("coordinator", "persistence", "clear", "--json")
    assert result.exit_code == 0, result.output
    assert secured.logins == 3
    assert json.loads(sessions_file(data_dir).read_text())[secured.url]["SessionID"] in secured.sessions
    assert_no_secret(result, secured)


def test_a_wrong_password_fails_in_one_line_without_the_password(secured, uvctl, data_dir, monkeypatch):
    monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", "wrong-" + PASSWORD)
    result = uvctl("coordinator", "persistence", "status")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "login to the coordinator" in result.stderr and "UVCTL_COORDINATOR_PASSWORD" in result.stderr
    assert PASSWORD not in result.output
    assert not sessions_file(data_dir).exists()


def test_no_password_and_no_terminal_says_which_variable_to_set(secured, uvctl):
    result = uvctl("coordinator", "login")
    assert result.exit_code == 1
    assert "set UVCTL_COORDINATOR_PASSWORD" in result.stderr
    assert secured.logins == 0


def test_the_password_prompt_hides_the_input(secured, monkeypatch):
    from click.testing import CliRunner

    from uvctl.cli import cli
    from uvctl.coordinator import connect

    original = connect.ConsoleCoordinator.__init__

    def interactive(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "interactive": True})

    monkeypatch.setattr(connect.ConsoleCoordinator, "__init__", interactive)  # as on a terminal
    result = CliRunner().invoke(cli, ["coordinator", "login"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Password for" in result.output and PASSWORD not in result.output
    assert secured.logins == 1


def test_login_on_a_promiscuous_coordinator_asks_nothing(coordinator, uvctl, monkeypatch):
    monkeypatch.delenv("UVCTL_COORDINATOR_USER", raising=False)
    result = uvctl("coordinator", "login")
    assert result.exit_code == 0, result.output
    assert "is promiscuous" in result.stdout and "no login is needed" in result.stdout
    assert "requires a login" not in result.output and coordinator.logins == 0
