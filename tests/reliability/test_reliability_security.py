"""The security pass: private and atomic state files, secrets masked in every output, meadow
paths only under the backend's own table bases, no SQL pasted from user text, TLS verified."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SECRET = "TopSecretPw9"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------- state files
def test_state_files_and_the_journal_are_private(data_dir, sqlite_url, cli_runner):
    from uvctl.bridge import QueueBridge

    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "private-1"}})
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    assert cli_runner(["flush"]).exit_code == 0
    assert _mode(data_dir) == 0o700
    for name in ("persistence-assignment.json", "persistence-bridge-hwm.json", "journal.sqlite"):
        assert _mode(data_dir / name) == 0o600, name
    for extra in data_dir.glob("journal.sqlite-*"):
        assert _mode(extra) == 0o600, extra.name


def test_a_failed_state_write_leaves_the_old_file_whole(data_dir, monkeypatch):
    from uvctl.errors import UvctlError
    from uvctl.flush import HighWaterMarks

    marks = HighWaterMarks()
    marks.advance("Queue", "sql:x", 5)
    before = marks.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UvctlError, match="nothing was changed"):
        marks.advance("Queue", "sql:x", 9)
    assert marks.path.read_bytes() == before
    assert [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")] == []


_HAMMER = """
import sys
from uvctl.flush import HighWaterMarks
marks = HighWaterMarks()
n = 0
while True:
    n += 1
    marks.advance("Queue", "sql:hammer", n)
"""


def test_kill_9_while_the_mark_is_being_rewritten_never_leaves_a_torn_file(data_dir):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    last = 0
    for delay in (0.3, 0.45, 0.6, 0.75):
        proc = subprocess.Popen([sys.executable, "-c", _HAMMER], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        doc = json.loads((data_dir / "persistence-bridge-hwm.json").read_text())
        mark = doc["Queue"]["sql:hammer"]
        assert isinstance(mark, int) and mark >= last
        last = mark
    assert last > 0


# ---------------------------------------------------------------------------- masking
def _outputs(cli_runner, commands) -> str:
    text = ""
    for args in commands:
        result = cli_runner(args)
        text += (result.stdout or "") + (result.stderr or "")
    return text


def test_database_passwords_never_appear_in_any_output(data_dir, cli_runner):
    from uvctl.bridge import QueueBridge

    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "masked-1"}})
    url = f"postgresql+psycopg://uvctl:{SECRET}@127.0.0.1:1/nowhere"  # nothing listens on port 1
    text = _outputs(cli_runner, [
        ["persistence", "assign", "--backend", "sql", "--db", url],
        ["persistence", "assign", "--backend", "sql", "--db", url, "--json"],
        ["persistence", "status"], ["persistence", "status", "--json"],
        ["flush"], ["flush", "--json"], ["flush", "--dry-run"],
        ["journal", "stats"], ["journal", "stats", "--json"], ["journal", "prune"],
        ["schema", "ensure", "--db", url], ["schema", "plan", "--db", url, "--json"],
        ["schema", "introspect", "--db", url],
        ["--debug", "persistence", "status"],
    ])
    assert "uvctl:***@127.0.0.1:1" in text  # the URL is shown, its password is not
    assert SECRET not in text
    assert SECRET not in (data_dir / "persistence-bridge-hwm.json").read_text() \
        if (data_dir / "persistence-bridge-hwm.json").exists() else True
    assert _mode(data_dir / "persistence-assignment.json") == 0o600  # the one place it must be kept


@pytest.mark.postgres
def test_a_reachable_database_with_a_password_is_masked_too(pg_url, data_dir, cli_runner):
    from sqlalchemy.engine import make_url

    from uvctl.bridge import QueueBridge

    url = make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)
    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "masked-2"}})
    text = _outputs(cli_runner, [["persistence", "assign", "--backend", "sql", "--db", url, "--json"],
                                 ["flush", "--json"], ["persistence", "status", "--json"], ["journal", "stats", "--json"]])
    assert SECRET not in text
    assert SECRET not in (data_dir / "persistence-bridge-hwm.json").read_text()


@pytest.mark.postgres
def test_a_password_given_as_a_url_query_parameter_is_masked_too(pg_url, data_dir, cli_runner):
    from uvctl.bridge import QueueBridge

    url = f"{pg_url}?password={SECRET}"  # the server trusts loopback: any password works
    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "masked-q"}})
    text = _outputs(cli_runner, [["persistence", "assign", "--backend", "sql", "--db", url, "--json"],
                                 ["flush"], ["flush", "--json"], ["persistence", "status"], ["persistence", "status", "--json"],
                                 ["journal", "stats", "--json"], ["journal", "prune", "--dry-run"]])
    assert "password=***" in text and SECRET not in text
    assert SECRET not in (data_dir / "persistence-bridge-hwm.json").read_text()


def test_coordinator_credentials_never_appear_in_any_output(data_dir, cli_runner):
    from uvctl.bridge import QueueBridge

    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "masked-3"}})
    url = f"http://admin:{SECRET}@127.0.0.1:1"
    text = _outputs(cli_runner, [
        ["persistence", "assign", "--backend", "meadowproxy", "--transport", "mesh", "--url", url, "--beacon", "db1",
         "--connection", "1"],
        ["persistence", "status", "--json"], ["flush"], ["flush", "--json"], ["journal", "stats"],
    ])
    assert "127.0.0.1:1" in text and SECRET not in text


def test_mask_secrets_covers_urls_and_key_value_pairs():
    from uvctl.errors import UvctlError, mask_secrets

    text = mask_secrets(f"mysql+pymysql://root:{SECRET}@db/x password={SECRET} token: {SECRET} "
                        f'{{"Password": "{SECRET}"}} sessionid={SECRET}')
    assert SECRET not in text
    assert SECRET not in str(UvctlError(f"cannot reach postgresql://u:{SECRET}@h/d"))


# ---------------------------------------------------------------------------- meadow paths
class _Recorder:
    """A meadow server stand-in that records every path it is asked for."""

    def __init__(self):
        self.paths = []
        self.next_id = 1

    def request(self, method, path, body=None):
        from uvctl_meadowproxy.transport import HttpAnswer

        self.paths.append(path)
        if method == "GET":
            return HttpAnswer(200, "[]")
        data = json.loads(body) if body else {}
        rows = data if isinstance(data, list) else [data]
        table = path.split("/")[-1].rstrip("s") if method == "POST" else None
        for row in rows:
            if table:
                row.setdefault(f"ID{table}", self.next_id)
                self.next_id += 1
        return HttpAnswer(200, json.dumps(rows if isinstance(data, list) else rows[0]))

    def close(self):
        pass


HOSTILE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(str.strip) | \
    st.sampled_from(["../../beacon/connection", "..", "%2e%2e%2f", "a/../../b", "x?y=1#z", "a b", "\\..\\",
                     "/1.0/Other/UVQueueWorkItem", "%252e%252e", "UVManifest/../../x"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=HOSTILE, other=HOSTILE)
def test_meadowproxy_builds_paths_only_under_its_own_table_bases(key, other):
    from uvctl.errors import UsageError
    from uvctl.journal import normalize_action
    from uvctl_meadowproxy import routes
    from uvctl_meadowproxy.translate import Translator

    calls = [
        ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": key, "RunID": other}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": key, "Patch": {"Status": "Complete"}}),
        ("QP_AppendEvent", {"Event": {"WorkItemHash": key, "EventType": other[:60]}}),
        ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": key, "AttemptNumber": 1}}),
        ("MS_UpsertManifest", {"Manifest": {"Hash": key}}),
        ("MS_RemoveManifest", {"RunHash": key}),
        ("QP_GetWorkItemByHash", {"WorkItemHash": key}),
        ("QP_GetEvents", {"WorkItemHash": key}),
        ("QP_ListWorkItems", {"Filter": {"RunID": other, "Status": [key, other]}}),
        ("MS_ListManifests", {"Filter": {"OperationHash": other}}),
    ]
    actions = []
    for name, settings_ in calls:
        try:
            actions.append(normalize_action(name, settings_))
        except UsageError:
            pass  # refused at the door (control characters, too long): nothing to send
    recorder = _Recorder()
    bases = routes.bases_for("uv-own-hash")
    Translator(recorder, bases, {}).execute(actions)
    allowed = tuple(bases.values())
    for path in recorder.paths:
        base = next((b for b in allowed if path == b or path.startswith(b + "/") or path.startswith(b + "s/")
                     or path == b + "s"), None)
        assert base is not None, path
        rest = path[len(base):]
        assert "?" not in rest and "#" not in rest, path
        for segment in rest.split("/"):  # nothing a server or proxy could resolve upwards
            assert segment not in ("..", ".") and unquote(segment) not in ("..", "."), path


# ---------------------------------------------------------------------------- SQL building
#: Every expression interpolated into SQL text anywhere in uvctl, and why it cannot carry user text.
REVIEWED_SQL_INTERPOLATIONS = {
    "tbl": "a UV table name from uvctl.journal.columns (fixed); never from input",
    "time_column": "a column name from filters.RANGE_COLUMNS (fixed per table); the times are bound",
    "key_column": "a natural-key column from filters.RANGE_COLUMNS (fixed per table); the cursor is bound",
    "spec.name": "a UV table name from the built-in descriptor",
    "table(tbl).name": "a UV table name from the built-in descriptor",
    "cols": "quoted column names of the built-in descriptor",
    "key": "quoted natural-key columns of the built-in descriptor",
    "marks": "'?' placeholders, one per column",
    "updates": "quoted column names of the built-in descriptor",
    "name": "a journal index name from the fixed _INDEXES table",
    "'UNIQUE ' if unique else ''": "a keyword chosen by a boolean",
    "quoted": "quoted column names from the fixed _INDEXES table",
    "_marks(part)": "'?' placeholders, one per value; the values are bound parameters",
    "order": "columns re-validated by filters.parse_order_by against the schema, directions ASC/DESC",
    "where": "fixed clauses with '?' placeholders; columns from the schema or the normalized filter keys",
    "sets": "patch columns: normalize_action keeps only schema columns (unknown fields are dropped)",
    "self.synchronous.upper()": "'FULL' or 'NORMAL', validated in Journal.open",
    "EXTRA_COLUMN": "the constant 'uvctl_extra' of journal/store.py",
    "col": "a column the journal adds to its own tables: 'extra' or EXTRA_COLUMN (store._setup)",
    "PG_LOCK_TIMEOUT": "a constant of uvctl.schema.ensure",
    "c": "a column: patch keys normalized to schema columns (store._update) or natural-key columns",
    "', '.join(('?' for _ in flt['Status']))": "'?' placeholders, one per Status value (bound)",
    "t": "a table name of the fixed _QUEUE_TABLES of the data-dir import (journal/sources/datadir.py)",
    "stage": "'uvctl_stage_' and a CRC32 in hex (plugins/sql/staging.py)",
    "stage_columns": "quoted column names, each matched by \\w+ in the INSERT that SQLAlchemy compiled",
    "target_table": "the table name as SQLAlchemy's compiled INSERT quotes it",
    "insert_head": "the INSERT INTO part of a statement SQLAlchemy compiled",
    "insert_tail": "the ON CONFLICT part of a statement SQLAlchemy compiled",
    "select_list": "the VALUES row SQLAlchemy compiled, its binds replaced by the staging columns of the same names",
    "table": "a source table of the data-dir import, passed as a constant (journal/sources/datadir.py _latest_rows_sql)",
    "newest": "ORDER BY terms made of that constant table name and UpdateDate",
    "f' WHERE {where}' if where else ''": "a constant clause with '?' placeholders (datadir.py _history)",
}
#: SQL statements (by their first word) and SQL fragments (a bound comparison, an IN list).
_SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA|SET|WITH)\s|=\s*\?|\bIN\s*\(")


def _sql_interpolations():
    for root in (REPO / "src" / "uvctl", REPO / "plugins"):
        for path in sorted(root.rglob("*.py")):
            if "egg-info" in str(path):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.JoinedStr):
                    continue
                literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if not _SQL_TEXT.search(literal):
                    continue
                for value in node.values:
                    if isinstance(value, ast.FormattedValue):
                        yield ast.unparse(value.value), f"{path.relative_to(REPO)}:{node.lineno}"


def test_no_sql_is_built_by_pasting_user_text():
    unreviewed = sorted({f"{where}: {{{expr}}}" for expr, where in _sql_interpolations()
                         if expr not in REVIEWED_SQL_INTERPOLATIONS})
    assert unreviewed == [], "SQL text with unreviewed interpolations (bind a parameter instead):\n" + "\n".join(unreviewed)


def test_hostile_values_travel_as_data_through_the_journal_and_the_sql_backend(data_dir, sqlite_url):
    from uvctl import assignment
    from uvctl.bridge import QueueBridge
    from uvctl.flush import flush
    from uvctl.journal import Journal

    from reliability.compare import compare_target

    hostile = 'x\'); DROP TABLE "UVQueueWorkItem"; --'
    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": hostile, "RunID": "' OR 1=1 --"}})
        bridge.execute("QP_UpdateWorkItem", {"WorkItemHash": hostile, "Patch": {
            'Status" = \'pwned\'; DROP TABLE log; --': "x", "Status": "Complete"}})
        listed = bridge.execute("QP_ListWorkItems", {"Filter": {"RunID": "' OR 1=1 --"}})
    assert [row["WorkItemHash"] for row in listed["WorkItems"]] == [hostile]
    assignment.assign("sql", {"Db": sqlite_url})
    assert flush().ok
    with Journal.open() as journal:
        assert journal.get_work_item(hostile)["Status"] == "Complete"
        assert compare_target(sqlite_url, journal).equal
    from uvctl.errors import UsageError
    from uvctl.journal import normalize_action

    with pytest.raises(UsageError, match="OrderBy"):
        normalize_action("QP_ListWorkItems", {"Filter": {"OrderBy": "EnqueuedAt; DROP TABLE log"}})
    with pytest.raises(UsageError, match="cannot order by"):
        normalize_action("QP_ListWorkItems", {"Filter": {"OrderBy": "(SELECT) DESC"}})


# ---------------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """A loopback HTTPS server with a self-signed certificate (answers '[]' to everything)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_tls_certificates_are_verified_by_default(https_server):
    from uvctl.errors import UvctlError
    from uvctl.mesh.http import RetryingClient

    client = RetryingClient(https_server, what="test server")
    with pytest.raises(UvctlError, match="could not be verified"):
        client.request("GET", "/x")
    client.close()


def test_turning_verification_off_works_only_with_a_warning(https_server, capsys):
    from uvctl.mesh.http import RetryingClient

    client = RetryingClient(https_server, what="test server", verify=False)
    assert "verification is OFF" in capsys.readouterr().err
    assert client.request("GET", "/x").status_code == 200
    client.close()


def test_a_self_signed_backend_is_refused_through_the_cli(https_server, cli_runner, data_dir):
    from uvctl.bridge import QueueBridge

    with QueueBridge() as bridge:
        bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "tls-1"}})
    cli_runner(["persistence", "assign", "--backend", "meadowproxy", "--transport", "direct", "--url", https_server,
                "--route-hash", "uv-tls"])
    status = json.loads(cli_runner(["persistence", "status", "--json"]).stdout)
    assert status["Queue"]["State"] != "bootstrapped"
    assert "could not be verified" in (status["Queue"]["LastError"] or "")
    result = cli_runner(["flush"])
    assert result.exit_code != 0 and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- coordinator sessions
def _coordinator_stub_module():
    import importlib.util

    name = "coordinator_stub"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "meadowproxy" / "coordinator_stub.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_coordinator_password_and_session_cookie_stay_secret(data_dir, cli_runner, monkeypatch):
    stub = _coordinator_stub_module().CoordinatorStub(secured=True, users={"admin": SECRET})
    try:
        monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", "wrong-" + SECRET)
        refused = cli_runner(["coordinator", "login", "--coordinator", stub.url, "--user", "admin"])
        assert refused.exit_code != 0 and "Traceback" not in refused.stderr
        monkeypatch.setenv("UVCTL_COORDINATOR_PASSWORD", SECRET)
        text = _outputs(cli_runner, [
            ["coordinator", "login", "--coordinator", stub.url, "--user", "admin"],
            ["coordinator", "login", "--coordinator", stub.url, "--user", "admin", "--json"],
            ["coordinator", "beacons", "--coordinator", stub.url], ["coordinator", "beacons", "--coordinator", stub.url, "--json"],
        ])
        sessions = data_dir / "coordinator-sessions.json"
        assert _mode(sessions) == 0o600
        cookie = json.loads(sessions.read_text())[stub.url]["SessionID"]
        assert cookie and cookie not in text + refused.stdout + refused.stderr
        assert SECRET not in text + refused.stdout + refused.stderr
        assert SECRET not in sessions.read_text()
    finally:
        stub.close()


def test_mysql_access_denied_keeps_its_yes_and_a_password_value_is_still_masked():
    from uvctl.errors import mask_secrets

    assert mask_secrets("Access denied for user 'root'@'h' (using password: YES)").endswith("(using password: YES)")
    assert SECRET not in mask_secrets(f"password: {SECRET} pwd=YES){SECRET}")


# ---------------------------------------------------------------------------- trust: who may write the data dir
def _nobody() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


def _assigned(data_dir, cli_runner, sqlite_url):
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    return data_dir / "persistence-assignment.json"


def test_a_data_dir_others_may_write_or_another_user_owns_is_refused(data_dir, cli_runner, sqlite_url):
    _assigned(data_dir, cli_runner, sqlite_url)
    for change, expected in ((lambda: os.chmod(data_dir, 0o777), "chmod go-w"),
                             (lambda: os.chmod(data_dir, 0o720), "writable by group"),
                             (lambda: os.chown(data_dir, _nobody(), -1), "belongs to another user")):
        change()
        for args in (["flush"], ["persistence", "status"], ["journal", "stats"]):
            result = cli_runner(args)
            assert result.exit_code == 1 and expected in result.stderr, result.output
            assert result.stderr.count("\n") == 1
        os.chmod(data_dir, 0o700)
        os.chown(data_dir, os.geteuid(), -1)
    assert cli_runner(["flush"]).exit_code == 0  # readable by others is fine: every file in it is 0600
    os.chmod(data_dir, 0o755)
    assert cli_runner(["flush"]).exit_code == 0


@pytest.mark.parametrize("name", ["persistence-assignment.json", "persistence-bridge-hwm.json",
                                  "coordinator-sessions.json", "beacon-state.json"])
def test_a_state_file_another_user_owns_is_refused_and_one_too_open_is_tightened(name, data_dir, cli_runner,
                                                                                  sqlite_url, capsys):
    from uvctl.beacon.state import read_state
    from uvctl.errors import UvctlError
    from uvctl.flush import HighWaterMarks
    from uvctl.mesh.session import SessionCache
    from uvctl.statefile import write_json

    path = data_dir / name
    if name == "persistence-assignment.json":
        _assigned(data_dir, cli_runner, sqlite_url)
    else:
        write_json(path, {"Pid": 1} if name == "beacon-state.json" else {})
    read = {"persistence-assignment.json": lambda: __import__("uvctl.assignment").assignment.load(),
            "persistence-bridge-hwm.json": lambda: HighWaterMarks().get("Queue", "sql:x"),
            "coordinator-sessions.json": lambda: SessionCache().get("http://c"),
            "beacon-state.json": read_state}[name]
    os.chmod(path, 0o644)
    capsys.readouterr()
    read()
    assert _mode(path) == 0o600
    assert "was open to group and others (mode 0644); it is 0600 now" in capsys.readouterr().err
    os.chown(path, _nobody(), -1)
    with pytest.raises(UvctlError, match="belongs to another user .*chown"):
        read()
    os.chown(path, os.geteuid(), -1)
    read()


def test_a_journal_another_user_owns_is_refused(data_dir, cli_runner):
    from uvctl.journal import Journal

    Journal.open().close()  # a journal of this data dir ('journal stats' alone creates none)
    os.chown(data_dir / "journal.sqlite", _nobody(), -1)
    result = cli_runner(["journal", "stats"])
    assert result.exit_code == 1 and "belongs to another user" in result.stderr


# ---------------------------------------------------------------------------- trust: input files
def test_every_input_file_is_a_regular_file_of_bounded_size(data_dir, cli_runner, sqlite_url, tmp_path, monkeypatch):
    import uvctl.paths
    from uvctl.schema import builtin_descriptor

    fifo = tmp_path / "descriptor.fifo"
    os.mkfifo(fifo)
    for source in ("/dev/zero", str(fifo), str(tmp_path)):
        for args in (["schema", "ensure", "--schema", source, "--db", sqlite_url],
                     ["schema", "ddl", "--dialect", "sqlite", "--schema", source]):
            result = cli_runner(args)
            assert result.exit_code == 2 and f"--schema {source} is " in result.stderr, result.output
    big = tmp_path / "big.json"
    big.write_text(json.dumps(builtin_descriptor()))
    with monkeypatch.context() as patch:
        patch.setattr(uvctl.paths.input_file, "__defaults__", (1000, None))
        result = cli_runner(["schema", "ddl", "--dialect", "sqlite", "--schema", str(big)])
    assert result.exit_code == 2 and "bytes long, over the 1000 bytes" in result.stderr
    _assigned(data_dir, cli_runner, sqlite_url)
    (data_dir / "persistence-bridge-hwm.json").unlink(missing_ok=True)
    os.symlink("/dev/zero", data_dir / "persistence-bridge-hwm.json")
    result = cli_runner(["flush"])
    assert result.exit_code != 0 and "is not a regular file" in result.stderr


# ---------------------------------------------------------------------------- masking: linear and bounded
def _unbounded_repeats(tree):
    """Every repeat of a parsed pattern that can run without bound and give characters back."""
    import re._constants as c

    for op, arg in tree:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and arg[1] == c.MAXREPEAT:
            yield op
        for value in (arg if isinstance(arg, (list, tuple)) else ()):
            if isinstance(value, re._parser.SubPattern):
                yield from _unbounded_repeats(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, re._parser.SubPattern):
                        yield from _unbounded_repeats(item)


def test_masking_cannot_backtrack_and_handles_a_megabyte():
    import uvctl.errors as errors
    from uvctl.errors import MAX_MESSAGE, UvctlError, mask_secrets, mask_url

    patterns = [value for value in vars(errors).values() if isinstance(value, re.Pattern)]
    assert patterns
    for pattern in patterns:  # nothing a failed match could give back and try again: linear
        tree = re._parser.parse(pattern.pattern, pattern.flags)
        assert list(_unbounded_repeats(tree)) == [], pattern.pattern
        assert tree[0][0] not in (re._constants.MAX_REPEAT, re._constants.POSSESSIVE_REPEAT), pattern.pattern
    n = 1_000_000
    for text in ("a" * n, "a://u:" * (n // 6), "x" * n + "://", "://" * (n // 3), "password" + " " * n,
                 "pwd=" * (n // 4), "%20" * (n // 3), "@" * n, f"p://u:{'y' * n}@h"):
        masked = mask_secrets(text)
        assert len(masked) <= len(text) + 3 * text.count("://") + 3
        assert len(mask_url(text)) <= len(text) + 3
        error = str(UvctlError(f"unknown bridge action {text!r}"))
        assert len(error) <= MAX_MESSAGE + 40 and "\n" not in error
    assert mask_secrets(f"p://u:{'y' * n}@h") == "p://u:***@h"


def test_an_error_quotes_a_bounded_slice_of_its_input(cli_runner, tmp_path):
    from uvctl.errors import UsageError
    from uvctl.journal import normalize_action

    name = "QP_" + "A" * 20_000
    with pytest.raises(UsageError) as caught:
        normalize_action(name, {})
    assert len(str(caught.value)) < 1000 and "20003 characters" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h", "Priority": "x" * 20_000}})
    assert len(str(caught.value)) < 1000


def test_a_percent_encoded_password_in_a_query_is_masked(data_dir, cli_runner):
    from uvctl.errors import mask_secrets, mask_url

    url = f"postgresql+psycopg://postgres@127.0.0.1:1/x?options=-c%20password%3D{SECRET}"
    for masked in (mask_url(url), mask_secrets(f"cannot connect to {url}: connection refused")):
        assert SECRET not in masked and "password%3D***" in masked
    assert mask_secrets("?options=-c%20password%3a%22" + SECRET + "%22") == "?options=-c%20password%3a%22***"
    text = _outputs(cli_runner, [["schema", "plan", "--db", url], ["persistence", "assign", "--backend", "sql", "--db", url],
                                 ["persistence", "status", "--json"], ["flush"]])
    assert "password%3D***" in text and SECRET not in text


# ---------------------------------------------------------------------------- terminal spoofing
def test_control_characters_in_printed_values_are_escaped(data_dir, cli_runner, tmp_path):
    source = tmp_path / "spoof.jsonl"
    source.write_text(json.dumps({"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {
        "WorkItemHash": "spoof-1", "Status": "ok\r\nuvctl: error: \x1b[2Kforged"}}}) + "\n")
    assert cli_runner(["journal", "import", str(source)]).exit_code == 0
    stats = cli_runner(["journal", "stats"]).stdout
    assert "\r" not in stats and "\x1b" not in stats and not any(line.startswith("uvctl") for line in stats.splitlines())
    assert "ok\\r\\nuvctl: error: \\x1b[2Kforged 1" in stats
    evil = tmp_path / "evil\nuvctl: error: forged\r.jsonl"
    for args in (["journal", "import", str(evil)], ["schema", "plan", "--schema", str(evil)]):
        result = cli_runner(args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "\r" not in result.stderr
        assert "evil\\nuvctl: error: forged\\r.jsonl" in result.stderr
