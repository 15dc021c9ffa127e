"""A pruned journal and the high-water marks: a mark that cannot be true is refused, and a
backend whose mark is below what was pruned is brought up to date from the current state."""

from __future__ import annotations

import json
import sqlite3

import pytest

from uvctl.journal.columns import table
from uvctl.testing.rows import TABLES, _typed_rows, database_rows, journal_rows

from .conftest import assert_database_equals_journal, record, traffic

HWM = "persistence-bridge-hwm.json"


def _log_rows(data_dir) -> int:
    conn = sqlite3.connect(f"file:{data_dir / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
    finally:
        conn.close()


def _flushed_and_pruned(journal, cli_runner, url, calls=None):
    """Journal traffic, flush it to the sql backend on ``url`` and prune the log."""
    record(journal, calls if calls is not None else traffic(30, manifests=9, seed=3))
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", url]).exit_code == 0
    assert cli_runner(["flush"]).exit_code == 0
    assert cli_runner(["journal", "prune"]).exit_code == 0
    assert journal.count_after("Queue", 0) == journal.count_after("Manifest", 0) == 0


def _mark_file(journal):
    return journal.path.parent / HWM


def _memory_rows(store) -> dict:
    """The memory store's four tables in the shape of ``journal_rows``."""
    rows = {"UVQueueWorkItem": store.work_items, "UVQueueWorkItemEvent": store.events,
            "UVQueueWorkItemAttempt": store.attempts, "UVManifest": store.manifests}
    return {name: _typed_rows(table(name), rows[name].values()) for name in TABLES}


# ---------------------------------------------------------------------------- a mark past the end
@pytest.mark.parametrize("args", [["flush"], ["flush", "--dry-run"], ["persistence", "status"],
                                  ["journal", "prune"], ["journal", "prune", "--dry-run"]])
def test_a_mark_past_the_journals_end_is_a_corrupt_file(args, journal, cli_runner, data_dir, sqlite_url):
    record(journal, traffic(5, manifests=2))
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    assert cli_runner(["flush"]).exit_code == 0
    marks = json.loads((data_dir / HWM).read_text())
    identity = next(iter(marks["Queue"]))
    marks["Queue"][identity] = 999999
    (data_dir / HWM).write_text(json.dumps(marks))
    record(journal, traffic(2, seed=9))  # records the bogus mark would hide (and prune would delete)
    rows = _log_rows(data_dir)

    result = cli_runner(args)

    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(data_dir / HWM) in lines[0] and "999999" in lines[0], lines[0]
    assert f"past the journal's last Queue record (seq {journal.last_seq('Queue')})" in lines[0], lines[0]
    assert "fix or remove it by hand" in lines[0]
    assert "up to date" not in result.stdout
    assert _log_rows(data_dir) == rows


# ---------------------------------------------------------------------------- after a prune
@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_backend_assigned_after_a_prune_gets_the_current_state_then_the_log(target, request, journal, cli_runner,
                                                                             tmp_path):
    first = f"sqlite:///{tmp_path / 'first.sqlite'}"
    second = request.getfixturevalue("pg_url" if target == "postgres" else "sqlite_url")
    _flushed_and_pruned(journal, cli_runner, first)
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", second]).exit_code == 0
    state = sum(len(rows) for rows in journal_rows(journal).values())
    # what a snapshot sends: every row, an attempt with its outcome, a removed manifest with its removal
    expected = state + len(journal.all_rows("UVQueueWorkItemAttempt")) + \
        sum(1 for row in journal.all_rows("UVManifest") if row["Deleted"])

    dry = json.loads(cli_runner(["flush", "--dry-run", "--json"]).stdout)["Bridges"]
    status = json.loads(cli_runner(["persistence", "status", "--json"]).stdout)
    assert dry["Queue"]["Pending"] + dry["Manifest"]["Pending"] == expected
    assert status["Queue"]["Pending"] + status["Manifest"]["Pending"] == expected

    result = cli_runner(["flush", "--batch-size", "40"])

    assert result.exit_code == 0, result.output
    assert "up to date" not in result.stdout and "the current state" in result.stdout, result.stdout
    assert_database_equals_journal(second, journal)
    # then the log as usual: what is written now follows the snapshot
    record(journal, traffic(4, manifests=2, seed=11))
    assert cli_runner(["flush"]).exit_code == 0
    assert_database_equals_journal(second, journal)
    assert "up to date" in cli_runner(["flush"]).stdout
    replay = cli_runner(["flush", "--replay"])  # from 0: the state again, then what the log still holds
    assert replay.exit_code == 0 and "the current state" in replay.stdout, replay.output
    assert_database_equals_journal(second, journal)


def test_the_memory_backend_gets_the_same_state_after_a_prune(journal, cli_runner, tmp_path):
    import uvctl_memory

    _flushed_and_pruned(journal, cli_runner, f"sqlite:///{tmp_path / 'first.sqlite'}")
    uvctl_memory.drop_store("after-prune")
    assert cli_runner(["persistence", "assign", "--backend", "memory", "--store", "after-prune"]).exit_code == 0
    try:
        assert cli_runner(["flush"]).exit_code == 0
        assert _memory_rows(uvctl_memory.get_store("after-prune")) == journal_rows(journal)
    finally:
        uvctl_memory.drop_store("after-prune")


def test_a_snapshot_cut_short_is_sent_again_from_its_start(journal, cli_runner, sqlite_url, tmp_path, monkeypatch):
    from uvctl import host
    from uvctl.errors import BackendUnavailable

    _flushed_and_pruned(journal, cli_runner, f"sqlite:///{tmp_path / 'first.sqlite'}")
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    real, calls = host.dispatch, []

    def cut_after_two_batches(handle, actions):
        calls.append(len(actions))
        if len(calls) == 3:
            raise BackendUnavailable("the link went down")
        return real(handle, actions)

    monkeypatch.setattr(host, "dispatch", cut_after_two_batches)
    stopped = cli_runner(["flush", "--batch-size", "20"])
    assert stopped.exit_code == 3, stopped.output
    marks = json.loads(_mark_file(journal).read_text())
    assert marks["Queue"].get(f"sql:{sqlite_url}", 0) == 0  # nothing counts until the whole snapshot did
    monkeypatch.setattr(host, "dispatch", real)

    assert cli_runner(["flush", "--batch-size", "20"]).exit_code == 0
    assert_database_equals_journal(sqlite_url, journal)


def test_a_write_through_after_a_prune_sends_the_state_first(journal, cli_runner, sqlite_url, tmp_path):
    from uvctl.bridge import QueueBridge

    _flushed_and_pruned(journal, cli_runner, f"sqlite:///{tmp_path / 'first.sqlite'}")
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0

    out = QueueBridge(journal).execute("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "after-prune", "Status": "Pending"}})

    assert out["Success"] and out["Pending"] is False, out
    queue = TABLES[:3]  # the Manifest bridge had no write
    assert database_rows(sqlite_url, queue) == journal_rows(journal, queue)


def test_prune_acknowledged_keeps_the_newest_rows_and_what_is_not_acknowledged(journal, cli_runner, sqlite_url):
    from uvctl.journal.retention import prune_acknowledged

    record(journal, traffic(6, manifests=4))
    assert cli_runner(["persistence", "assign", "--backend", "sql", "--db", sqlite_url]).exit_code == 0
    assert cli_runner(["flush"]).exit_code == 0
    mark = journal.last_seq("Queue")
    record(journal, [("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "not-yet-sent"}})])  # no backend has it

    report = prune_acknowledged(journal, keep=5)

    assert journal.count_after("Manifest", 0) == 5
    assert journal.count_after("Queue", 0) == 5 and journal.count_after("Queue", mark) == 1
    assert report["Queue"]["Pruned"] > 0 and report["Manifest"]["Pruned"] > 0
    again = prune_acknowledged(journal, keep=5)
    assert again["Queue"]["Pruned"] == again["Manifest"]["Pruned"] == 0
