"""`uvctl journal import|stats|prune` on a generated Ultravisor data dir and on JSONL files."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from uvctl.errors import UsageError
from uvctl.journal.importer import import_path


def source_rows(datadir, sql):
    conn = sqlite3.connect(datadir / "data" / "beacon" / "beacon-queue.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def fingerprint(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_json(cli_runner, args):
    result = cli_runner(args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# ---------------------------------------------------------------------- data dir
def test_data_dir_import_maps_every_row(cli_runner, example_datadir, journal):
    report = run_json(cli_runner, ["journal", "import", str(example_datadir), "--json"])
    items, events, attempts = (source_rows(example_datadir, f"SELECT COUNT(*) FROM {t}")[0][0]
                               for t in ("BeaconWorkItem", "BeaconWorkItemEvent", "BeaconWorkItemAttempt"))
    assert report["Read"] == {"WorkItems": items, "Events": events, "Attempts": attempts, "Manifests": 3}
    assert report["Journaled"] == items + events + attempts + 3 and report["FirstSeq"] == 1
    assert report["StagingRoot"] == str((example_datadir / "staging").resolve())

    stats = journal.stats()["State"]
    assert (stats["WorkItems"], stats["Events"], stats["Attempts"], stats["Manifests"]) == (items, events, attempts, 3)

    # work items: every source row, columns carried over, QueueMetadata stripped, Health parsed
    for hash_, status, health, settings, result in source_rows(
            example_datadir, "SELECT WorkItemHash, Status, Health, Settings, Result FROM BeaconWorkItem"):
        row = journal.get_work_item(hash_)
        assert row["Status"] == status and row["Health"] == (float(health) if health else 0.0)
        expected = json.loads(settings)
        expected.pop("QueueMetadata", None)
        assert json.loads(row["Settings"]) == expected
        assert row["Result"] == (result or "")
    # events: Seq = source id, deterministic GUID, EmittedAt from the timeline or the item
    source_events = source_rows(example_datadir, "SELECT IDBeaconWorkItemEvent, WorkItemHash, EventType FROM BeaconWorkItemEvent")
    for event_id, hash_, kind in source_events:
        got = [e for e in journal.get_events(hash_) if e["Seq"] == event_id]
        assert len(got) == 1 and got[0]["EventType"] == kind
        assert uuid.UUID(got[0]["EventGUID"]).version == 5
        assert got[0]["EmittedAt"].endswith("Z"), f"{kind} event has no time"
    timeline = dict(((h, k.lower()), at) for h, k, at in source_rows(
        example_datadir, "SELECT WorkItemHash, EventType, At FROM TimelineRecord"))
    hash_, kind = next((h, k) for _, h, k in source_events if k == "completed")
    assert [e["EmittedAt"] for e in journal.get_events(hash_) if e["EventType"] == kind] == [timeline[(hash_, kind)]]
    # attempts: DispatchedAt → StartedAt, CompletedAt → EndedAt, ErrorMessage → Error
    hash_, dispatched, completed, message = source_rows(
        example_datadir, "SELECT WorkItemHash, DispatchedAt, CompletedAt, ErrorMessage FROM BeaconWorkItemAttempt WHERE Outcome = 'Error'")[0]
    attempt = journal.get_attempts(hash_)[0]
    assert (attempt["StartedAt"], attempt["EndedAt"], attempt["Error"], attempt["Outcome"]) == (dispatched, completed, message, "Error")


def test_manifests_come_from_the_staging_root(example_datadir, journal):
    from uvctl.bridge import ManifestBridge

    import_path(journal, example_datadir)
    files = sorted((example_datadir / "staging").glob("*/Manifest_*.json"))
    with ManifestBridge(journal) as bridge:
        for file in files:
            sent = json.loads(file.read_text())
            got = bridge.get_manifest(sent["Hash"])["Manifest"]
            assert got["Status"] == sent["Status"] and got["TaskOutputs"] == sent["TaskOutputs"]
            assert got["StagingPath"] == str(file.parent.resolve()) and got["Live"] is False
        waiting = bridge.list_manifests({"Status": "Waiting"})["Manifests"]
        assert len(waiting) == 1


def test_reimport_adds_nothing_and_the_source_is_never_touched(cli_runner, example_datadir, journal):
    before = fingerprint(example_datadir)
    run_json(cli_runner, ["journal", "import", str(example_datadir), "--json"])
    last = journal.last_seq()
    again = run_json(cli_runner, ["journal", "import", str(example_datadir / "data"), "--json"])
    assert again["Journaled"] == 0 and again["Skipped"] == again["Read"]["WorkItems"] + again["Read"]["Events"] + \
        again["Read"]["Attempts"] + again["Read"]["Manifests"]
    assert journal.last_seq() == last
    assert fingerprint(example_datadir) == before
    text = cli_runner(["journal", "import", str(example_datadir)]).output
    assert "nothing new" in text


def test_rows_only_in_the_wal_are_imported_and_later_changes_are_picked_up(example_datadir, tmp_path, journal):
    import_path(journal, example_datadir)
    first_last = journal.last_seq()
    db = example_datadir / "data" / "beacon" / "beacon-queue.sqlite"
    live = sqlite3.connect(db)  # Ultravisor still running: its changes sit in the -wal file
    live.execute("PRAGMA wal_autocheckpoint = 0")
    with live:
        running = live.execute("SELECT WorkItemHash FROM BeaconWorkItem WHERE Status = 'Running'").fetchone()[0]
        live.execute("UPDATE BeaconWorkItem SET Status = 'Complete', CompletedAt = 'tEnd' WHERE WorkItemHash = ?", (running,))
        live.execute("UPDATE BeaconWorkItemAttempt SET Outcome = 'Complete', CompletedAt = 'tEnd' WHERE WorkItemHash = ?", (running,))
        live.execute("INSERT INTO BeaconWorkItemEvent (WorkItemHash, RunID, EventType, FromStatus, ToStatus, BeaconID, Payload) "
                     "VALUES (?, '', 'completed', 'Running', 'Complete', 'b', '{}')", (running,))
    copy = tmp_path / "copied"
    (copy / "beacon").mkdir(parents=True)
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{db}{suffix}", copy / "beacon" / f"beacon-queue.sqlite{suffix}")
    live.close()
    assert (copy / "beacon" / "beacon-queue.sqlite-wal").stat().st_size > 0

    report = import_path(journal, copy, manifests=False)
    assert report["Outcomes"] == {"applied": 3, "duplicate": report["Read"]["Events"] - 1 + report["Read"]["Attempts"] - 1,
                                  "unchanged": report["Read"]["WorkItems"] - 1}
    assert journal.get_work_item(running)["Status"] == "Complete"
    assert journal.get_attempts(running)[0]["Outcome"] == "Complete"
    assert [e["EventType"] for e in journal.get_events(running)][-1] == "completed"
    names = [a.name for a in journal.read("Queue", first_last, 10)]
    assert names == ["QP_UpsertWorkItem", "QP_AppendEvent", "QP_UpdateAttemptOutcome"]


@pytest.mark.parametrize("problem", ["empty", "no-tables", "not-sqlite", "bad-manifest", "manifest-without-hash"])
def test_bad_data_dirs_are_one_clear_error_and_import_nothing(cli_runner, example_datadir, tmp_path, journal, problem):
    target = example_datadir
    db = example_datadir / "data" / "beacon" / "beacon-queue.sqlite"
    manifest = sorted((example_datadir / "staging").glob("*/Manifest_*.json"))[-1]
    if problem == "empty":
        target = tmp_path / "empty"
        target.mkdir()
        expected = "is not an Ultravisor data directory"
    elif problem == "no-tables":
        db.unlink()
        sqlite3.connect(db).execute("CREATE TABLE Other (x)").connection.close()
        expected = "has no BeaconWorkItem, BeaconWorkItemEvent, BeaconWorkItemAttempt table(s)"
    elif problem == "not-sqlite":
        db.write_bytes(b"garbage" * 1000)
        expected = "is not a readable Ultravisor queue database"
    elif problem == "bad-manifest":
        manifest.write_text('{"Hash": "run-x", ')
        expected = f"manifest {manifest.resolve()} is not valid JSON"
    else:
        manifest.write_text('{"Status": "Complete"}')
        expected = "has no Hash"
    result = cli_runner(["journal", "import", str(target)])
    assert result.exit_code == 2
    assert expected in result.output and result.output.startswith("uvctl: error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert journal.last_seq() == 0


def test_no_manifests_and_explicit_staging(cli_runner, example_datadir, tmp_path, journal):
    report = run_json(cli_runner, ["journal", "import", str(example_datadir / "data"), "--no-manifests", "--json"])
    assert report["Read"]["Manifests"] == 0 and report["StagingRoot"] is None
    moved = tmp_path / "elsewhere"
    shutil.move(str(example_datadir / "staging"), moved)
    report = run_json(cli_runner, ["journal", "import", str(example_datadir), "--staging", str(moved), "--json"])
    assert report["Read"]["Manifests"] == 3 and report["Journaled"] == 3


_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 20")  # checkpoint often: the moments a file copy tears
item_cols = [r[1] for r in conn.execute("PRAGMA table_info(BeaconWorkItem)") if r[1] != "IDBeaconWorkItem"]
attempt_cols = [r[1] for r in conn.execute("PRAGMA table_info(BeaconWorkItemAttempt)") if r[1] != "IDBeaconWorkItemAttempt"]
def copy_row(table, cols, id_col, hash_):  # with a large Result: the file grows, a copy takes a while
    sel = ", ".join("?" if c == "WorkItemHash" else "zeroblob(0) || printf('%.40000c', 'r')" if c == "Result" else c
                    for c in cols)
    conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {sel} FROM {table} ORDER BY {id_col} LIMIT 1", (hash_,))
n = 0
print("ready", flush=True)
while True:
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    copy_row("BeaconWorkItem", item_cols, "IDBeaconWorkItem", f"wi-live-{n}")
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")  # an attempt is written after its work item, as Ultravisor does
    copy_row("BeaconWorkItemAttempt", attempt_cols, "IDBeaconWorkItemAttempt", f"wi-live-{n}")
    conn.execute("COMMIT")
"""


def test_a_data_dir_being_written_is_read_as_one_consistent_snapshot(example_datadir, tmp_path):
    from uvctl.journal.sources.datadir import DataDirSource, find_queue_db

    queue_db = find_queue_db(example_datadir)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(queue_db)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(25):
            with DataDirSource(example_datadir, manifests=False) as source:
                conn = source._conn
                orphans = conn.execute("SELECT COUNT(*) FROM BeaconWorkItemAttempt WHERE WorkItemHash LIKE 'wi-live-%' "
                                       "AND WorkItemHash NOT IN (SELECT WorkItemHash FROM BeaconWorkItem)").fetchone()[0]
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert orphans == 0, "the copy holds attempts of work items it does not hold: a torn copy"
    finally:
        writer.kill()
        writer.wait()
    assert not list(Path(tempfile.gettempdir()).glob(f"uvctl-import-{os.getpid()}-*")), "the copies are removed"


def test_copies_left_by_a_killed_import_are_removed_by_the_next_one(example_datadir):
    from uvctl.journal.sources.datadir import DataDirSource

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = Path(tempfile.gettempdir()) / f"uvctl-import-{dead.stdout.strip()}-abandoned"
    (left / "beacon-queue.sqlite").parent.mkdir(parents=True)
    (left / "beacon-queue.sqlite").write_bytes(b"x" * 1024)
    with DataDirSource(example_datadir, manifests=False):
        pass
    assert not left.exists()


def test_several_source_rows_of_one_key_import_as_the_latest_and_reimports_add_nothing(cli_runner, example_datadir, journal):
    from uvctl.journal.sources.datadir import find_queue_db

    conn = sqlite3.connect(find_queue_db(example_datadir))
    hash_, number = conn.execute("SELECT WorkItemHash, AttemptNumber FROM BeaconWorkItemAttempt ORDER BY 1 LIMIT 1").fetchone()
    for table, key, changed in (("BeaconWorkItem", "WorkItemHash = ?", "Status = 'Canceled'"),
                                ("BeaconWorkItemAttempt", "WorkItemHash = ? AND AttemptNumber = " + str(number), "Outcome = 'Timeout'")):
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != f"ID{table}"]
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {table} WHERE {key}", (hash_,))
        # the copy (a read-then-insert race upstream) is the one updated last
        conn.execute(f"UPDATE {table} SET {changed}, UpdateDate = '2099-01-01T00:00:00.000Z' WHERE ID{table} = "
                     f"(SELECT MAX(ID{table}) FROM {table})")
    conn.commit()
    conn.close()
    first = run_json(cli_runner, ["journal", "import", str(example_datadir), "--json"])
    assert journal.get_work_item(hash_)["Status"] == "Canceled"
    assert [a["Outcome"] for a in journal.get_attempts(hash_) if a["AttemptNumber"] == number] == ["Timeout"]
    for _ in range(2):
        assert run_json(cli_runner, ["journal", "import", str(example_datadir), "--json"])["Journaled"] == 0
    assert first["Journaled"] > 0


# ---------------------------------------------------------------------- JSONL
LINES = [
    {"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-1", "Settings": {"a": 1}, "Status": "Pending"}}},
    {"Action": "QP_AppendEvent", "Settings": {"Event": {"WorkItemHash": "wi-1", "RunID": "r", "EventType": "enqueued", "Payload": {}}}},
    {"Action": "QP_AppendEvent", "Settings": {"Event": {"WorkItemHash": "wi-1", "RunID": "r", "EventType": "enqueued", "Payload": {}}}},
    {"Action": "QP_UpdateWorkItem", "Settings": {"WorkItemHash": "wi-1", "Patch": {"Status": "Running", "StalledAt": "x"}}},
    {"Action": "QP_InsertAttempt", "Settings": {"Attempt": {"WorkItemHash": "wi-1", "AttemptNumber": 1, "DispatchedAt": "t1"}}},
    {"Action": "MS_UpsertManifest", "Settings": {"Manifest": {"Hash": "run-1", "Status": "Complete", "Output": {"x": 1}}}},
]


def write_jsonl(path, entries, extra=""):
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n" + extra)
    return path


def test_jsonl_import_is_idempotent_and_appends_only_new_lines(cli_runner, tmp_path, journal):
    file = write_jsonl(tmp_path / "actions.jsonl", LINES, extra="\n")
    report = run_json(cli_runner, ["journal", "import", str(file), "--json"])
    assert report["Kind"] == "jsonl" and report["Journaled"] == 6
    assert len(journal.get_events("wi-1")) == 2, "two identical events on two lines are two events"
    assert journal.get_work_item("wi-1")["Status"] == "Running"
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 0
    more = {"Action": "QP_AppendEvent", "Settings": {"Event": {"WorkItemHash": "wi-1", "EventType": "dispatched"}}}
    write_jsonl(file, LINES + [more])
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 1
    assert len(journal.get_events("wi-1")) == 3


def test_a_line_repeated_in_another_history_is_imported_and_a_copy_of_a_file_is_not(cli_runner, tmp_path, journal):
    upsert = {"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-b", "Status": "Pending"}}}
    running = {"Action": "QP_UpdateWorkItem", "Settings": {"WorkItemHash": "wi-b", "Patch": {"Status": "Running"}}}
    pending = {"Action": "QP_UpdateWorkItem", "Settings": {"WorkItemHash": "wi-b", "Patch": {"Status": "Pending"}}}
    beat = {"Action": "QP_AppendEvent", "Settings": {"Event": {"WorkItemHash": "wi-b", "EventType": "heartbeat"}}}
    day1 = write_jsonl(tmp_path / "day1.jsonl", [upsert, beat, running])
    day2 = write_jsonl(tmp_path / "day2.jsonl", [pending, beat, running])
    assert run_json(cli_runner, ["journal", "import", str(day1), "--json"])["Journaled"] == 3
    assert run_json(cli_runner, ["journal", "import", str(day2), "--json"])["Journaled"] == 3
    assert journal.get_work_item("wi-b")["Status"] == "Running"
    assert len(journal.get_events("wi-b")) == 2, "the heartbeat of each day is its own event"
    copy = tmp_path / "renamed.jsonl"
    shutil.copy(day2, copy)
    assert run_json(cli_runner, ["journal", "import", str(copy), "--json"])["Journaled"] == 0


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("{not json", "line 3: not valid JSON"),
        ('["QP_UpsertWorkItem"]', 'line 3: expected {"Action": "QP_...", "Settings": {...}}'),
        ('{"t": "2026", "op": "enqueue", "d": {}}', "looks like Ultravisor's queue-journal.jsonl"),
        ('{"Action": "QP_Nope", "Settings": {}}', "line 3: unknown bridge action 'QP_Nope'"),
        ('{"Action": "QP_GetEvents", "Settings": {"WorkItemHash": "wi-1"}}', "line 3: QP_GetEvents is a read action"),
        ('{"Action": "QP_InsertAttempt", "Settings": {"Attempt": {"WorkItemHash": "wi-1"}}}', "line 3: QP_InsertAttempt: AttemptNumber is required"),
    ],
)
def test_a_bad_jsonl_line_names_its_number_and_imports_nothing(cli_runner, tmp_path, journal, bad_line, expected):
    file = tmp_path / "actions.jsonl"
    file.write_text("\n".join([json.dumps(LINES[0]), json.dumps(LINES[1]), bad_line, json.dumps(LINES[5])]) + "\n")
    result = cli_runner(["journal", "import", str(file)])
    assert result.exit_code == 2 and expected in result.output and "nothing was imported" in result.output
    assert journal.last_seq() == 0 and journal.get_work_item("wi-1") is None


def test_other_bad_import_inputs(cli_runner, tmp_path, journal):
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"Action": "\xff\xfe"}\n')
    result = cli_runner(["journal", "import", str(binary)])
    assert result.exit_code == 2 and "is not UTF-8 text" in result.output
    result = cli_runner(["journal", "import", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output
    file = write_jsonl(tmp_path / "a.jsonl", LINES[:1])
    result = cli_runner(["journal", "import", str(file), "--staging", str(tmp_path)])
    assert result.exit_code == 2 and "--staging only applies" in result.output
    with pytest.raises(UsageError):
        import_path(journal, tmp_path / "nope")


# ---------------------------------------------------------------------- stats and prune
def test_stats_text_and_json(cli_runner, example_datadir):
    run_json(cli_runner, ["journal", "import", str(example_datadir), "--json"])
    stats = run_json(cli_runner, ["journal", "stats", "--json"])
    assert stats["Log"]["Manifest"]["Records"] == 3 and stats["State"]["Manifests"] == 3
    assert stats["Backends"]["Queue"]["HighWaterMark"] is None and stats["Backends"]["Queue"]["Reason"]
    text = cli_runner(["journal", "stats"]).output
    assert "3 log records" in text and "work items by status" in text


def test_prune_with_no_assignment_prunes_nothing_and_says_why(cli_runner, example_datadir, journal):
    import_path(journal, example_datadir)
    last = journal.last_seq()
    result = cli_runner(["journal", "prune"])
    assert result.exit_code == 0 and "pruned 0 log records" in result.output and "assign" in result.output
    assert journal.count_after("Queue", 0) + journal.count_after("Manifest", 0) == last


def test_prune_removes_only_what_the_assigned_backend_acknowledged(cli_runner, example_datadir, journal, sqlite_url):
    assignment = pytest.importorskip("uvctl.assignment")
    flush = pytest.importorskip("uvctl.flush")
    from uvctl import host

    import_path(journal, example_datadir)
    queue_last = journal.last_seq("Queue")
    assignment.assign("sql", {"Db": sqlite_url})
    identity = host.backend_info("sql").identity_of({"Db": sqlite_url})
    flush.HighWaterMarks().advance("Queue", identity, 10)

    dry = run_json(cli_runner, ["journal", "prune", "--dry-run", "--json"])
    assert dry["Bridges"]["Queue"]["Pruned"] == 10 and journal.count_after("Queue", 0) == queue_last
    done = run_json(cli_runner, ["journal", "prune", "--json"])
    assert done["Bridges"]["Queue"]["Pruned"] == 10 and done["Bridges"]["Manifest"]["Pruned"] == 0
    assert "acknowledged nothing" in done["Bridges"]["Manifest"]["Reason"]
    assert [a.seq for a in journal.read("Queue", 0, 1)] == [11]
    assert journal.count_after("Manifest", 0) == 3
    assert run_json(cli_runner, ["journal", "prune", "--json"])["Bridges"]["Queue"]["Pruned"] == 0


def test_imported_data_dir_flushes_to_sql_and_then_prunes_fully(example_datadir, journal, sqlite_url):
    assignment = pytest.importorskip("uvctl.assignment")
    flush = pytest.importorskip("uvctl.flush")
    from uvctl.journal.retention import prune_acknowledged

    import_path(journal, example_datadir)
    assignment.assign("sql", {"Db": sqlite_url})
    report = flush.flush(batch_size=40)
    assert report.ok, report.to_dict()
    pruned = prune_acknowledged(journal)
    assert pruned["Queue"]["Pruned"] == journal.last_seq("Queue") and pruned["Manifest"]["Pruned"] == 3
    assert journal.count_after("Queue", 0) == 0 and journal.stats()["State"]["WorkItems"] == 24


def test_progress_advances_once_per_source_record(example_datadir, journal, tmp_path):
    import contextlib

    seen = {}

    @contextlib.contextmanager
    def progress(total, label):
        seen["total"], seen["label"], seen["updates"] = total, label, 0

        class Bar:
            def update(self, n):
                seen["updates"] += n

        yield Bar()

    report = import_path(journal, example_datadir, progress=progress)
    assert seen["total"] == seen["updates"] == sum(report["Read"].values()) and seen["label"] == "importing"
    file = write_jsonl(tmp_path / "a.jsonl", LINES, extra="\n\n")
    import_path(journal, file, progress=progress)
    assert seen["total"] == seen["updates"] == len(LINES)


# ---------------------------------------------------------------------- long imports
def _big_jsonl(path, items: int):
    with path.open("w") as handle:
        for n in range(items):
            hash_ = f"wi-big-{n}"
            handle.write(json.dumps({"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": hash_, "Status": "Pending"}}}) + "\n")
            handle.write(json.dumps({"Action": "QP_AppendEvent", "Settings": {"Event": {"WorkItemHash": hash_, "EventType": "enqueued"}}}) + "\n")
            handle.write(json.dumps({"Action": "QP_UpdateWorkItem", "Settings": {"WorkItemHash": hash_, "Patch": {"Status": "Complete"}}}) + "\n")
    return path


def _start_import(path, data_dir):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "uvctl", "journal", "import", str(path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_records(journal, process, at_least: int = 1):
    while journal.count_after("Queue", 0) < at_least:
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)


def test_a_bridge_write_during_a_long_import_goes_in_between_its_commits(tmp_path, data_dir, journal):
    from uvctl.bridge import QueueBridge

    source = _big_jsonl(tmp_path / "big.jsonl", 12000)
    process = _start_import(source, data_dir)
    _wait_for_records(journal, process)
    with QueueBridge(journal) as bridge:
        written = bridge.upsert_work_item({"WorkItemHash": "wi-live", "Status": "Pending"})
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    report = json.loads(out)
    assert written["Success"] is True
    seq = journal.read("Queue", 0, 10**6)
    live = [a.seq for a in seq if a.name == "QP_UpsertWorkItem" and a.settings["WorkItem"]["WorkItemHash"] == "wi-live"]
    assert report["FirstSeq"] < live[0] < report["LastSeq"], "the write waited for the whole import"
    assert report["Journaled"] == 36000


def test_an_import_killed_half_way_is_finished_exactly_by_the_next_one(tmp_path, data_dir, journal, cli_runner):
    source = _big_jsonl(tmp_path / "big.jsonl", 8000)
    process = _start_import(source, data_dir)
    _wait_for_records(journal, process, at_least=6000)
    process.kill()
    process.wait()
    first = journal.count_after("Queue", 0)
    report = run_json(cli_runner, ["journal", "import", str(source), "--json"])
    assert first + report["Journaled"] == 24000 == journal.count_after("Queue", 0)
    assert len(journal.list_work_items({"Status": "Complete", "Limit": 5000})) == 5000
    assert sum(len(journal.get_events(f"wi-big-{n}")) for n in range(0, 8000, 97)) == len(range(0, 8000, 97))


def test_odd_jsonl_sources_are_one_line_errors_and_a_byte_order_mark_is_fine(cli_runner, tmp_path, example_datadir, journal):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(LINES[0]).encode() + b"\n")
    assert run_json(cli_runner, ["journal", "import", str(bom), "--json"])["Journaled"] == 1
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-s", "Result": "x\\ud800"}}}\n')
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, expected in ((surrogate, "line 1: holds a \\u escape of half a character"),
                           (fifo, "is not a regular file"),
                           (example_datadir / "data" / "beacon" / "beacon-queue.sqlite", "is a SQLite database, not a JSONL file")):
        result = cli_runner(["journal", "import", str(path)])
        assert result.exit_code == 2 and expected in result.output, result.output
        assert result.output.count("\n") == 1
    assert journal.count_after("Queue", 0) == 1


def test_bad_source_rows_stop_the_import_or_are_left_out_and_listed_when_asked(cli_runner, example_datadir, journal):
    from uvctl.journal.sources.datadir import find_queue_db

    conn = sqlite3.connect(find_queue_db(example_datadir))
    bad_id, bad_hash = conn.execute("SELECT IDBeaconWorkItem, WorkItemHash FROM BeaconWorkItem ORDER BY 1 LIMIT 1").fetchone()
    conn.execute("UPDATE BeaconWorkItem SET Priority = 'high' WHERE IDBeaconWorkItem = ?", (bad_id,))
    odd_hash = conn.execute("SELECT WorkItemHash FROM BeaconWorkItem ORDER BY 1 DESC LIMIT 1").fetchone()[0]
    conn.execute("UPDATE BeaconWorkItem SET LastError = CAST(X'6F6BFF' AS TEXT), Settings = X'7B7D' WHERE WorkItemHash = ?",
                 (odd_hash,))
    conn.commit()
    conn.close()
    stopped = cli_runner(["journal", "import", str(example_datadir)])
    assert stopped.exit_code == 2 and f"BeaconWorkItem row {bad_id}" in stopped.output
    assert "import with --skip-bad-rows" in stopped.output and journal.count_after("Queue", 0) == 0
    result = cli_runner(["journal", "import", str(example_datadir), "--skip-bad-rows", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["LeftOut"] == 1 and f"row {bad_id}" in report["LeftOutExamples"][0] and report["ReplacedText"] == 1
    assert "left out 1 bad records" in result.stderr
    assert journal.get_work_item(bad_hash) is None
    odd = journal.get_work_item(odd_hash)
    assert odd["LastError"] == "ok\ufffd" and odd["Settings"] == "{}"


def test_lines_imported_by_an_earlier_version_are_still_known(cli_runner, tmp_path, journal):
    # before 0.1 a line was keyed by its content and its occurrence in the file
    from uvctl.journal.sources import IMPORT_NAMESPACE

    file = write_jsonl(tmp_path / "old.jsonl", LINES)
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 6
    seen: dict = {}
    legacy = []
    for entry in LINES:
        canonical = json.dumps([entry["Action"], entry.get("Settings")], sort_keys=True, separators=(",", ":"), default=str)
        seen[canonical] = seen.get(canonical, 0) + 1
        legacy.append(f"jsonl|{uuid.uuid5(IMPORT_NAMESPACE, canonical)}|{seen[canonical]}")
    conn = journal._conn
    seqs = [seq for (seq,) in conn.execute("SELECT seq FROM imported ORDER BY seq")]
    with conn:
        conn.execute("DELETE FROM imported")
        conn.executemany("INSERT INTO imported VALUES (?, ?)", list(zip(legacy, seqs)))
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 0
    assert len(journal.get_events("wi-1")) == 2


def test_an_import_finished_later_still_folds_the_changes_its_first_run_brought(cli_runner, tmp_path, journal):
    update = {"Action": "QP_UpdateWorkItem", "Settings": {"WorkItemHash": "wi-x", "Patch": {"Status": "Complete"}}}
    upsert = {"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-x", "Status": "Pending"}}}
    file = write_jsonl(tmp_path / "history.jsonl", [update])
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 1  # the stopped run
    with journal._conn:  # ... two minutes ago: past the window that guards live bridge calls
        journal._conn.execute("UPDATE log SET recorded_at = '2000-01-01T00:00:00.000Z'")
    write_jsonl(file, [update, upsert])
    assert run_json(cli_runner, ["journal", "import", str(file), "--json"])["Journaled"] == 1
    assert journal.get_work_item("wi-x")["Status"] == "Complete", "as one undisturbed import gives"


# ---------------------------------------------------------------------- trust and bad input (issue 15)
def _manifest_files(datadir):
    return sorted((datadir / "staging").glob("*/Manifest_*.json"))


def test_a_data_dir_import_reads_no_file_that_leads_outside_it(cli_runner, example_datadir, tmp_path, journal):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"Hash": "stolen-run", "Status": "Complete"}))
    linked = _manifest_files(example_datadir)[0]
    linked.unlink()
    linked.symlink_to(outside)
    refused = cli_runner(["journal", "import", str(example_datadir)])
    assert refused.exit_code == 2 and "leads outside" in refused.stderr and str(outside) in refused.stderr
    assert refused.stderr.count("\n") == 1 and journal.last_seq() == 0
    garbled = _manifest_files(example_datadir)[1]
    garbled.write_text('{"Hash": ')
    result = cli_runner(["journal", "import", str(example_datadir), "--skip-bad-rows", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["LeftOut"] == 2 and report["Read"]["Manifests"] == len(_manifest_files(example_datadir)) - 2
    assert any("leads outside" in line for line in report["LeftOutExamples"])
    assert any("is not valid JSON" in line for line in report["LeftOutExamples"])
    assert journal.get_manifest("stolen-run") is None and journal.count_after("Queue", 0) > 0
    assert "left out 2 bad records" in result.stderr


def test_a_queue_database_or_run_folder_linked_from_elsewhere_is_refused(cli_runner, example_datadir, tmp_path, journal):
    runs = tmp_path / "runs" / "OPR-0099_1"
    runs.mkdir(parents=True)
    (runs / "Manifest_OPR-0099.json").write_text(json.dumps({"Hash": "stolen-folder"}))
    (example_datadir / "staging" / "OPR-0099_1").symlink_to(runs)
    result = cli_runner(["journal", "import", str(example_datadir), "--skip-bad-rows", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["LeftOut"] == 1
    assert journal.get_manifest("stolen-folder") is None
    db = example_datadir / "data" / "beacon" / "beacon-queue.sqlite"
    moved = tmp_path / "elsewhere.sqlite"
    shutil.move(db, moved)
    db.symlink_to(moved)
    refused = cli_runner(["journal", "import", str(example_datadir), "--skip-bad-rows"])
    assert refused.exit_code == 2 and "leads outside" in refused.stderr


def test_a_huge_integer_and_an_overlong_name_are_bad_input(cli_runner, example_datadir, tmp_path, journal):
    digits = "9" * 5000
    source = tmp_path / "huge.jsonl"
    source.write_text('{"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "h", "Priority": '
                      + digits + '}}}\n')
    long_name = "n" * 300
    for args, named in ((["journal", "import", str(source)], f"{source} line 1"),
                        (["journal", "import", str(tmp_path / long_name)], "PATH"),
                        (["journal", "import", str(example_datadir), "--staging", str(tmp_path / long_name)], "--staging"),
                        (["schema", "ddl", "--dialect", "sqlite", "--schema", str(tmp_path / long_name)], "--schema")):
        result = cli_runner(args)
        assert result.exit_code == 2 and named in result.stderr, result.output
        assert "unexpected" not in result.stderr and result.stderr.count("\n") == 1
    _manifest_files(example_datadir)[0].write_text('{"Hash": "run-huge", "Attempt": ' + digits + "}")
    result = cli_runner(["journal", "import", str(example_datadir)])
    assert result.exit_code == 2 and "more than 4300 digits" in result.stderr
    assert journal.last_seq() == 0


def test_values_stored_other_than_sent_are_kept_and_warned_never_silently(cli_runner, example_datadir, tmp_path,
                                                                          journal):
    source = tmp_path / "changed.jsonl"
    lines = [{"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "c-1", "Priority": 1.5}}},
             {"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "c-2", "Priority": True,
                                                                       "LastError": "a\u0000b"}}},
             {"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "c-3", "Priority": "3"}}}]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = cli_runner(["journal", "import", str(source), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["Journaled"] == 3 and report["ChangedValues"] == 3
    assert [line.split(": ", 2)[2] for line in report["ChangedExamples"]][:2] == [
        "Priority 1.5 was stored as 2 (its column holds whole numbers)",
        "Priority true was stored as 1 (its column holds whole numbers)"]
    assert "3 values were stored other than the source has them" in result.stderr
    assert (journal.get_work_item("c-1")["Priority"], journal.get_work_item("c-2")["LastError"]) == (2, "ab")
    attempt = tmp_path / "attempt.jsonl"
    attempt.write_text(json.dumps({"Action": "QP_InsertAttempt", "Settings": {"Attempt": {
        "WorkItemHash": "c-1", "AttemptNumber": 1.5}}}) + "\n")
    refused = cli_runner(["journal", "import", str(attempt)])
    assert refused.exit_code == 2 and "AttemptNumber must be a whole number, got 1.5" in refused.stderr
    conn = sqlite3.connect(example_datadir / "data" / "beacon" / "beacon-queue.sqlite")
    conn.execute("UPDATE BeaconWorkItem SET Priority = 2.5 WHERE IDBeaconWorkItem = (SELECT MIN(IDBeaconWorkItem) "
                 "FROM BeaconWorkItem)")
    conn.commit()
    conn.close()
    result = cli_runner(["journal", "import", str(example_datadir), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["ChangedValues"] == 1
    assert "BeaconWorkItem row" in result.stderr and "Priority 2.5 was stored as 2" in result.stderr


def test_a_bridge_write_says_what_it_stored_differently(data_dir):
    from uvctl.bridge import QueueBridge

    with QueueBridge() as bridge:
        answer = bridge.execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "b-1", "Priority": 1.5}})
    assert answer["Success"] and any("Priority 1.5 was stored as 2" in line for line in answer.get("Warnings", []))


def test_a_jsonl_line_is_read_up_to_a_bound_not_whole(cli_runner, tmp_path, journal, monkeypatch):
    import uvctl.journal.sources.jsonl as jsonl

    monkeypatch.setattr(jsonl, "MAX_DOCUMENT", 1000)
    source = tmp_path / "no-newlines.jsonl"
    source.write_bytes(b"x" * 5000)  # as a file without line breaks would be: never read whole
    result = cli_runner(["journal", "import", str(source)])
    assert result.exit_code == 2 and "line 1 is longer than 1000 bytes" in result.stderr
    assert journal.last_seq() == 0
