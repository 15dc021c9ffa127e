"""``uvctl flush``: seq order, batches, the high-water mark file, failures, replay, the lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from uvctl.errors import UvctlError
from uvctl.flush import HighWaterMarks, flush

from .conftest import TcpProxy, assert_database_equals_journal, record, traffic, via_proxy


def _run_uvctl(args, data_dir, **kwargs):
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "uvctl", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _full_tables(url) -> dict:
    """Every column of every UV table except UpdateDate (it records when a row was last written)."""
    engine = sa.create_engine(url)
    md = sa.MetaData()
    with engine.connect() as conn:
        md.reflect(bind=conn)
        out = {}
        for name in ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest"):
            t = md.tables[name]
            cols = [c for c in t.columns if c.name != "UpdateDate"]
            out[name] = [tuple(r) for r in conn.execute(sa.select(*cols).order_by(t.primary_key.columns.values()[0]))]
    engine.dispose()
    return out


def test_flush_delivers_in_batches_and_keeps_a_mark_per_identity(db_url, journal, cli_runner, data_dir, sql_assigned):
    record(journal, traffic(25, manifests=6))
    handle = sql_assigned(db_url)
    result = cli_runner(["flush", "--batch-size", "7", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    queue = report["Bridges"]["Queue"]
    assert queue["State"] == "flushed" and queue["Pending"] == 0
    assert queue["Sent"] == journal.count_after("Queue", 0)
    assert queue["Batches"] == -(-queue["Sent"] // 7)
    assert_database_equals_journal(db_url, journal)
    hwm_file = data_dir / "persistence-bridge-hwm.json"
    assert stat.S_IMODE(hwm_file.stat().st_mode) == 0o600
    assert json.loads(hwm_file.read_text()) == {
        "Queue": {handle.identity: journal.last_seq("Queue")},
        "Manifest": {handle.identity: journal.last_seq("Manifest")},
        "Journal": journal.journal_id,
    }
    again = json.loads(cli_runner(["flush", "--json"]).output)
    assert again["Bridges"]["Queue"]["State"] == "up-to-date" and again["Bridges"]["Queue"]["Sent"] == 0


def test_replay_twice_gives_identical_tables(db_url, journal, sql_assigned):
    record(journal, traffic(20, manifests=9))
    sql_assigned(db_url)
    assert flush(batch_size=50, journal=journal).ok
    first = _full_tables(db_url)
    for _ in range(2):
        report = flush(replay=True, batch_size=13, journal=journal)
        assert report.ok
        assert report.Bridges[0].Sent == journal.count_after("Queue", 0)
        assert report.Bridges[0].AlreadyPresent > 0
        assert _full_tables(db_url) == first
    assert_database_equals_journal(db_url, journal)


class _Interrupt(BaseException):
    """Stands for the process dying mid-run (what was committed stays, nothing else runs)."""


def _stopping_after(batches: int):
    """A progress callback whose bar stops the run once ``batches`` batches are acknowledged."""
    import contextlib

    @contextlib.contextmanager
    def progress(total, label):
        class Bar:
            seen = 0

            def update(self, n):
                Bar.seen += 1
                if Bar.seen >= batches:
                    raise _Interrupt

        yield Bar()

    return progress


def test_a_replay_cut_short_is_resumed_by_the_next_flush(sqlite_url, journal, sql_assigned):
    # the replay re-sends old states first (an item goes back to Pending before its later
    # updates come again): cut short, the database is behind the journal until a flush resumes
    from uvctl.bridge import QueueBridge

    sql_assigned(sqlite_url)
    with QueueBridge(journal) as queue:
        for name, settings in traffic(6):
            assert queue.execute(name, settings)["Pending"] is False
    assert_database_equals_journal(sqlite_url, journal)
    with pytest.raises(_Interrupt):
        flush(replay=True, batch_size=2, journal=journal, progress=_stopping_after(1))
    assert HighWaterMarks().get("Queue", f"sql:{sqlite_url}") == 2
    with pytest.raises(AssertionError):
        assert_database_equals_journal(sqlite_url, journal)
    again = flush(journal=journal)
    assert again.ok and again.Bridges[0].State == "flushed" and again.Bridges[0].Pending == 0
    assert again.Bridges[0].Sent == journal.count_after("Queue", 2)
    assert_database_equals_journal(sqlite_url, journal)


def test_a_write_during_a_replay_is_never_overwritten_by_older_records(sqlite_url, journal, sql_assigned):
    from uvctl.bridge import QueueBridge

    sql_assigned(sqlite_url)
    calls = traffic(4)
    record(journal, calls)
    assert flush(journal=journal).ok
    # an item whose upsert the replay re-sends after the write (in a later batch than the first)
    item = next(settings["WorkItem"]["WorkItemHash"] for name, settings in calls[3:] if name == "QP_UpsertWorkItem")
    writes = []

    import contextlib

    @contextlib.contextmanager
    def write_meanwhile(total, label):
        class Bar:
            def update(self, n):
                if not writes:  # after the replay's first batch
                    with QueueBridge(journal) as queue:
                        writes.append(queue.update_work_item(item, {"Priority": 7}))

        yield Bar()

    report = flush(replay=True, batch_size=3, journal=journal, progress=write_meanwhile)
    assert report.ok and writes and writes[0]["Success"] is True
    assert journal.get_work_item(item)["Priority"] == 7
    assert_database_equals_journal(sqlite_url, journal)
    assert HighWaterMarks().get("Queue", f"sql:{sqlite_url}") == journal.last_seq("Queue")


def test_first_failing_batch_stops_the_run_and_the_next_run_resumes(pg_url, journal, cli_runner, sql_assigned):
    calls = traffic(12)
    bad_at = len(calls) // 2
    calls.insert(bad_at, ("QP_UpdateWorkItem", {"WorkItemHash": calls[0][1]["WorkItem"]["WorkItemHash"],
                                                 "Patch": {"Status": "Poison"}}))
    record(journal, calls)
    handle = sql_assigned(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # the database refuses that one record
        conn.execute(sa.text('ALTER TABLE "UVQueueWorkItem" ADD CONSTRAINT no_poison CHECK ("Status" <> \'Poison\')'))
    result = cli_runner(["flush", "--batch-size", "10"])
    assert result.exit_code == 1
    # the next batch was being read ahead when this one failed: that read ended with the run
    assert not [t for t in threading.enumerate() if t.name.startswith("uvctl-flush-read")]
    log = journal.read("Queue", 0, 10000)
    first = (bad_at // 10) * 10  # the failing batch starts here
    batch = f"seq {log[first].seq}..{log[min(first + 9, len(log) - 1)].seq} was refused"
    assert batch in result.output and "no_poison" in result.output
    assert "run 'uvctl flush' again" in result.output
    mark = HighWaterMarks().get("Queue", handle.identity)
    assert mark == log[first - 1].seq  # the last acknowledged batch
    assert journal.count_after("Queue", mark) == len(calls) - first
    assert cli_runner(["flush", "--batch-size", "10"]).exit_code == 1  # still refused: the mark stays
    assert HighWaterMarks().get("Queue", handle.identity) == mark

    with engine.begin() as conn:  # the operator lifts the constraint; the next run resumes
        conn.execute(sa.text('ALTER TABLE "UVQueueWorkItem" DROP CONSTRAINT no_poison'))
    engine.dispose()
    result = cli_runner(["flush", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["Bridges"]["Queue"]["FromSeq"] == mark
    assert_database_equals_journal(pg_url, journal)


def test_unreachable_backend_keeps_records_pending_until_it_is_back(pg_url, journal, cli_runner, sql_assigned):
    from sqlalchemy.engine import make_url

    proxy = TcpProxy(make_url(pg_url).port or 5432).start()
    url = via_proxy(pg_url, proxy)
    sql_assigned(url)
    record(journal, traffic(5, manifests=2))
    proxy.stop()
    try:
        result = cli_runner(["flush"])
        assert result.exit_code == 3
        assert "cannot reach database" in result.output
        assert json.loads(cli_runner(["persistence", "status", "--json", "--no-bootstrap"]).output)["Queue"]["Pending"] \
            == journal.count_after("Queue", 0)
    finally:
        proxy.start()
    result = cli_runner(["flush"])
    assert result.exit_code == 0, result.output
    assert_database_equals_journal(pg_url, journal)
    proxy.stop()


def test_a_bridge_whose_backend_is_down_does_not_hold_back_the_other(pg_url, sqlite_url, journal, cli_runner):
    from sqlalchemy.engine import make_url

    from uvctl import assignment

    proxy = TcpProxy(make_url(pg_url).port or 5432).start()
    assignment.assign("sql", {"Db": via_proxy(pg_url, proxy)}, ("Queue",))
    assignment.assign("sql", {"Db": sqlite_url}, ("Manifest",))
    assert assignment.backend_for("Queue", bootstrap=True) and assignment.backend_for("Manifest", bootstrap=True)
    record(journal, traffic(3, manifests=2))
    proxy.stop()
    try:
        result = cli_runner(["flush", "--json"])
    finally:
        proxy.start()
    assert result.exit_code == 3
    bridges = json.loads(result.stdout)["Bridges"]
    assert bridges["Queue"]["State"] == "failed" and bridges["Queue"]["Pending"] == journal.count_after("Queue", 0)
    assert bridges["Manifest"]["State"] == "flushed" and bridges["Manifest"]["Pending"] == 0
    proxy.stop()


def test_write_through_with_the_backend_stopped_then_flush_delivers(pg_url, journal, cli_runner, sql_assigned):
    bridge_module = pytest.importorskip("uvctl.bridge")
    from sqlalchemy.engine import make_url

    proxy = TcpProxy(make_url(pg_url).port or 5432).start()
    url = via_proxy(pg_url, proxy)
    handle = sql_assigned(url)
    queue = bridge_module.QueueBridge(journal)
    manifests = bridge_module.ManifestBridge(journal)
    answer = queue.upsert_work_item({"WorkItemHash": "wi-1", "Status": "Pending", "Settings": {"a": 1}})
    assert answer["Success"] and not answer.get("Pending")
    assert HighWaterMarks().get("Queue", handle.identity) == journal.last_seq("Queue")

    proxy.stop()  # the database goes away: writes still succeed, pending in the journal
    try:
        answers = [
            queue.update_work_item("wi-1", {"Status": "Running"}),
            queue.append_event({"WorkItemHash": "wi-1", "EventType": "dispatched", "Payload": {"x": 1}}),
            queue.insert_attempt({"WorkItemHash": "wi-1", "AttemptNumber": 1, "DispatchedAt": "2026-11-26T10:00:00.000Z"}),
            queue.upsert_work_item({"WorkItemHash": "wi-2", "Status": "Pending"}),
            manifests.upsert_manifest({"Hash": "run-1", "Status": "Complete", "Output": {"ok": True}}),
        ]
        assert all(a["Success"] and a["Pending"] for a in answers)
        status = json.loads(cli_runner(["persistence", "status", "--json", "--no-bootstrap"]).output)
        assert status["Queue"]["Pending"] == 4 and status["Manifest"]["Pending"] == 1
    finally:
        proxy.start()
    result = cli_runner(["flush", "--json"])
    assert result.exit_code == 0, result.output
    assert_database_equals_journal(pg_url, journal)
    later = queue.update_work_item("wi-2", {"Status": "Complete"})  # write-through works again
    assert later["Success"] and not later.get("Pending")
    assert_database_equals_journal(pg_url, journal)
    proxy.stop()


def test_dry_run_sends_nothing_and_unassigned_bridges_stay_pending(journal, cli_runner, sqlite_url, sql_assigned):
    record(journal, traffic(3, manifests=2))
    result = cli_runner(["flush", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["Bridges"]["Queue"] == {**report["Bridges"]["Queue"], "State": "unassigned",
                                           "Pending": journal.count_after("Queue", 0)}
    sql_assigned(sqlite_url)
    result = cli_runner(["flush", "--dry-run", "--json"])
    report = json.loads(result.output)
    assert report["Bridges"]["Queue"]["State"] == "dry-run"
    assert report["Bridges"]["Queue"]["Pending"] == journal.count_after("Queue", 0)
    assert flush(journal=journal, dry_run=True).Bridges[1].Pending == journal.count_after("Manifest", 0)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text('SELECT COUNT(*) FROM "UVQueueWorkItem"')).scalar() == 0
    engine.dispose()
    text = cli_runner(["flush", "--dry-run"]).output
    assert "would send" in text
    for bad in (["--batch-size", "0"], ["--batch-size", "100001"]):
        result = cli_runner(["flush", *bad])
        assert result.exit_code == 2 and "--batch-size" in result.output


def test_high_water_marks_only_move_forward_but_for_a_rewind(data_dir):
    marks = HighWaterMarks()
    assert marks.get("Queue", "sql:x") == 0
    assert marks.advance("Queue", "sql:x", 10) == 10
    assert marks.advance("Queue", "sql:x", 4) == 10
    assert marks.rewind("Queue", "sql:x", 12) == 10, "a rewind never moves a mark forward"
    assert marks.rewind("Queue", "sql:x", 3) == 3
    assert marks.advance("Queue", "sql:x", 11) == 11
    assert marks.get("Queue", "sql:x") == 11 and marks.get("Manifest", "sql:x") == 0
    marks.path.write_text('{"Queue": {"sql:x": "2026-11-26T10:00:00.000Z"}}')
    with pytest.raises(UvctlError, match="persistence-bridge-hwm.json is corrupt"):
        marks.get("Queue", "sql:x")
    marks.path.write_text("{nope")
    with pytest.raises(UvctlError, match="persistence-bridge-hwm.json is corrupt"):
        marks.advance("Queue", "sql:x", 12)
    assert marks.path.read_text() == "{nope"


def test_a_second_flush_is_refused_and_says_who_holds_the_lock(journal, cli_runner, data_dir, sqlite_url, sql_assigned):
    record(journal, traffic(2))
    sql_assigned(sqlite_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from uvctl.flush import FlushLock\n"
                               "with FlushLock():\n    print('held', flush=True); time.sleep(60)"],
        env={**os.environ, "UVCTL_DATA_DIR": str(data_dir)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli_runner(["flush"])
        assert result.exit_code == 1
        assert "another flush is running" in result.output and f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    result = cli_runner(["flush"])  # the killed holder's lock is gone with it
    assert result.exit_code == 0, result.output
    assert_database_equals_journal(sqlite_url, journal)


def test_two_flushes_started_together_never_deliver_twice(journal, data_dir, sqlite_url, sql_assigned):
    record(journal, traffic(150, manifests=20))
    sql_assigned(sqlite_url)
    runs = [_run_uvctl(["flush", "--batch-size", "20", "--json"], data_dir) for _ in range(2)]
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in runs]
    for code, out, err in outcomes:
        assert code == 0 or "another flush is running" in err, err
    delivered = [json.loads(out)["Bridges"]["Queue"]["Sent"] for code, out, _ in outcomes if code == 0]
    assert sum(delivered) == journal.count_after("Queue", 0)
    assert_database_equals_journal(sqlite_url, journal)


def test_a_journal_moved_away_and_started_anew_does_not_inherit_the_old_marks(sqlite_url, data_dir, cli_runner, sql_assigned):
    # the advice for an unusable journal is to move it away: the new journal's seqs start at 1
    # again, and the old marks (far above them) must not hide its records from flush and prune
    from uvctl.journal import Journal

    with Journal.open() as old:
        record(old, traffic(5))
        sql_assigned(sqlite_url)
        assert flush(journal=old).ok
        old_last = old.last_seq("Queue")
    (data_dir / "journal.sqlite").rename(data_dir / "journal.old.sqlite")
    for suffix in ("-wal", "-shm"):
        (data_dir / f"journal.sqlite{suffix}").unlink(missing_ok=True)
    with Journal.open() as new:
        record(new, [("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "after-the-move", "Status": "Pending"}})])
        assert new.last_seq("Queue") == 1 < old_last
        pruned = cli_runner(["journal", "prune", "--dry-run", "--json"])
        assert pruned.exit_code == 0 and "after-the-move" not in pruned.output
        assert json.loads(pruned.output)["Bridges"]["Queue"]["HighWaterMark"] == 0, pruned.output
        report = flush(journal=new)
        assert report.ok and report.Bridges[0].Sent == 1
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        hashes = {row[0] for row in conn.execute(sa.text('SELECT "WorkItemHash" FROM "UVQueueWorkItem"'))}
    engine.dispose()
    assert "after-the-move" in hashes and len(hashes) == 6


@pytest.mark.parametrize("text", ["null", "[]", '{"Queue": null}', '{"Queue": {}, "Journal": 5}'])
def test_a_mark_file_that_is_not_an_object_of_marks_is_corrupt(data_dir, text):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "persistence-bridge-hwm.json").write_text(text)
    with pytest.raises(UvctlError, match="persistence-bridge-hwm.json is corrupt"):
        HighWaterMarks().get("Queue", "sql:x")


def test_changes_that_arrive_before_their_record_are_kept_and_replays_change_nothing(db_url, journal, sql_assigned):
    # Ultravisor's bridge calls race: an attempt's outcome (or an item's update) can arrive
    # before the insert it patches. Upstream loses such a change; here it is folded into the
    # record when that arrives, and replaying the log leaves the tables as the first flush did.
    from uvctl.bridge import QueueBridge

    with QueueBridge(journal) as queue:
        early = queue.update_attempt_outcome("wi-race", 1, {"CompletedAt": "t3", "Outcome": "Complete", "DurationMs": 3})
        assert early["Success"] and "NotFound" not in early, "journaled as the attempt; its insert fills the rest"
        queue.insert_attempt({"WorkItemHash": "wi-race", "AttemptNumber": 1, "BeaconID": "a", "DispatchedAt": "t1",
                              "Outcome": "Dispatched"})
        queue.update_work_item("wi-race", {"Status": "Running", "AssignedBeaconID": "a"})
        queue.upsert_work_item({"WorkItemHash": "wi-race", "Status": "Pending", "Capability": "Shell"})
        queue.insert_attempt({"WorkItemHash": "wi-race", "AttemptNumber": 2, "Outcome": "Dispatched"})
    attempt = journal.get_attempts("wi-race")[0]
    assert (attempt["Outcome"], attempt["EndedAt"], attempt["StartedAt"]) == ("Complete", "t3", "t1")
    item = journal.get_work_item("wi-race")
    assert (item["Status"], item["AssignedBeaconID"], item["Capability"]) == ("Running", "a", "Shell")
    sql_assigned(db_url)
    assert flush(journal=journal).ok
    assert_database_equals_journal(db_url, journal)
    first = _full_tables(db_url)
    for _ in range(2):
        assert flush(replay=True, batch_size=2, journal=journal).ok
        assert _full_tables(db_url) == first
    assert_database_equals_journal(db_url, journal)


def test_an_old_change_for_a_record_this_journal_never_held_does_not_override_a_fresh_one(sqlite_url, journal,
                                                                                         sql_assigned, monkeypatch):
    # an update for a record only the backend holds (a journal started anew) is NotFound here;
    # when the item is enqueued again long after, that old change must not be folded into it
    from uvctl.bridge import QueueBridge
    from uvctl.journal import store

    sql_assigned(sqlite_url)
    with QueueBridge(journal) as queue:
        assert queue.update_work_item("wi-old", {"Status": "Complete"})["NotFound"] is True
        monkeypatch.setattr(store, "EARLY_PATCH_WINDOW", 0.0)  # the update is now older than the window
        assert queue.upsert_work_item({"WorkItemHash": "wi-old", "Status": "Pending", "Priority": 9})["Pending"] is False
    assert (journal.get_work_item("wi-old")["Status"], journal.get_work_item("wi-old")["Priority"]) == ("Pending", 9)
    assert_database_equals_journal(sqlite_url, journal)
    assert flush(replay=True, journal=journal).ok
    assert_database_equals_journal(sqlite_url, journal)


def test_a_table_locked_by_another_session_fails_the_batch_in_bounded_time(pg_url, journal, cli_runner, sql_assigned, monkeypatch):
    from uvctl.plugins.sql import connect

    monkeypatch.setattr(connect, "LOCK_WAIT_SECONDS", 1)
    sql_assigned(pg_url)
    record(journal, traffic(3))
    holder = sa.create_engine(pg_url)
    with holder.connect() as conn:
        conn.exec_driver_sql('LOCK TABLE "UVQueueWorkItem" IN ACCESS EXCLUSIVE MODE')
        result = cli_runner(["flush"])
        assert result.exit_code == 1 and "lock timeout" in result.output, result.output
        conn.rollback()
    holder.dispose()
    assert cli_runner(["flush"]).exit_code == 0
    assert_database_equals_journal(pg_url, journal)
