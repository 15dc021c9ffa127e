"""The journal store: ordered log, current state, filters, pruning, concurrent writers."""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from uvctl.errors import UsageError, UvctlError
from uvctl.journal import Journal, normalize_action


def upsert(hash_, **cols):
    return normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": hash_, **cols}})


def event(hash_, **cols):
    return normalize_action("QP_AppendEvent", {"Event": {"WorkItemHash": hash_, "EventType": "enqueued", **cols}})


def test_journal_file_is_wal_sqlite_in_the_data_dir(journal, data_dir):
    assert journal.path == data_dir / "journal.sqlite"
    conn = sqlite3.connect(journal.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'log'").fetchone()[0].count("AUTOINCREMENT") == 1


def test_log_is_ordered_by_seq_and_read_per_bridge(journal):
    journal.record_many([upsert("wi-1"), normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1"}}),
                         event("wi-1"), upsert("wi-2")])
    queue = journal.read("Queue", 0, 10)
    assert [(a.seq, a.name) for a in queue] == [(1, "QP_UpsertWorkItem"), (3, "QP_AppendEvent"), (4, "QP_UpsertWorkItem")]
    assert [a.seq for a in journal.read("Queue", 1, 1)] == [3]
    assert [a.seq for a in journal.read("Manifest", 0, 10)] == [2]
    assert (journal.last_seq(), journal.last_seq("Queue"), journal.last_seq("Manifest")) == (4, 4, 2)
    assert journal.count_after("Queue", 1) == 2


def test_the_log_row_and_the_state_change_commit_together(journal, data_dir):
    journal.record(upsert("wi-1", Status="Pending"))
    with pytest.raises(UsageError):
        journal.record_many([upsert("wi-2"), normalize_action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"})])
    assert journal.get_work_item("wi-2") is None and journal.last_seq() == 1
    with Journal.open() as other:  # another connection sees what record() committed
        assert other.get_work_item("wi-1")["Status"] == "Pending"


def test_upsert_replaces_and_update_patches(journal):
    journal.record(upsert("wi-1", Status="Pending", Priority=3, Settings={"a": 1}))
    journal.record(normalize_action("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": {"Status": "Running"}}))
    row = journal.get_work_item("wi-1")
    assert (row["Status"], row["Priority"], row["Settings"]) == ("Running", 3, '{"a":1}')
    journal.record(upsert("wi-1", Status="Complete"))
    row = journal.get_work_item("wi-1")
    assert (row["Status"], row["Priority"], row["Settings"]) == ("Complete", 0, "{}")


def test_identical_writes_are_not_logged_twice(journal):
    first = journal.apply([upsert("wi-1", Status="Pending")])[0]
    again = journal.apply([upsert("wi-1", Status="Pending")])[0]
    same_patch = journal.apply([normalize_action("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": {"Status": "Pending"}})])[0]
    assert (first.outcome, again.outcome, same_patch.outcome) == ("applied", "unchanged", "unchanged")
    assert again.action.seq is None and journal.last_seq() == 1


def test_events_get_per_item_seq_and_duplicates_are_skipped(journal):
    done = journal.apply([event("wi-1"), event("wi-2"), event("wi-1"), event("wi-1", Seq=10), event("wi-1")])
    assert [r.action.settings["Event"]["Seq"] for r in done] == [1, 1, 2, 10, 11]
    twice = event("wi-4")
    assert [r.outcome for r in journal.apply([twice, twice])] == ["applied", "duplicate"], "same batch"
    journal.record(event("wi-3", Seq=20))
    later = journal.apply([event("wi-3", Seq=5), event("wi-3"), event("wi-3")])
    assert [r.action.settings["Event"]["Seq"] for r in later] == [5, 21, 22]
    again = journal.apply([event("wi-1", EventGUID=done[0].action.settings["Event"]["EventGUID"])])[0]
    assert again.outcome == "duplicate" and not again.logged
    assert [e["Seq"] for e in journal.get_events("wi-1")] == [1, 2, 10, 11]
    assert [e["Seq"] for e in journal.get_events("wi-1", 2)] == [1, 2]
    logged = journal.read("Queue", 0, 10)
    assert [a.settings["Event"]["Seq"] for a in logged] == [1, 1, 2, 10, 11, 1, 20, 5, 21, 22], "the log carries the assigned Seq"


def test_attempts_insert_or_ignore_and_outcome_updates(journal):
    attempt = {"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "b", "DispatchedAt": "t1", "Outcome": "Dispatched"}
    journal.record(normalize_action("QP_InsertAttempt", {"Attempt": attempt}))
    dup = journal.apply([normalize_action("QP_InsertAttempt", {"Attempt": {**attempt, "BeaconID": "other"}})])[0]
    assert dup.outcome == "duplicate"
    journal.record(normalize_action("QP_UpdateAttemptOutcome", {"WorkItemHash": "wi-1", "AttemptNumber": 1, "Patch": {
        "CompletedAt": "t2", "Outcome": "Error", "ErrorMessage": "boom", "DurationMs": 5}}))
    assert journal.get_attempts("wi-1") == [{"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "b", "StartedAt": "t1",
                                              "EndedAt": "t2", "Outcome": "Error", "Error": "boom", "Deleted": False,
                                              # the fields as sent are kept beside the columns
                                              "DispatchedAt": "t1", "CompletedAt": "t2", "ErrorMessage": "boom",
                                              "DurationMs": 5}]


def test_patches_of_missing_records_are_logged_but_change_no_state(journal):
    done = journal.apply([
        normalize_action("QP_UpdateWorkItem", {"WorkItemHash": "wi-ghost", "Patch": {"Status": "Running"}}),
        normalize_action("MS_RemoveManifest", {"RunHash": "run-ghost"}),
    ])
    assert [(r.outcome, r.action.seq) for r in done] == [("not-found", 1), ("not-found", 2)]
    assert journal.get_work_item("wi-ghost") is None and journal.get_manifest("run-ghost") is None
    # an attempt's outcome without its insert is the attempt itself (test_journal_live_rules.py)


def test_log_texts_read_back_exactly_whatever_wrote_them(journal):
    # non-ASCII and 32-bit limits as this version writes them; a 64-bit integer, NaN and a
    # lone surrogate only as an older journal could have left them (each in its own batch:
    # a batch orjson refuses is decoded by the json module)
    journal.record(normalize_action("QP_UpsertWorkItem", {"WorkItem": {
        "WorkItemHash": "wi-ü", "Status": "Läuft ✓", "Priority": 2**31 - 1, "QueueWaitMs": -(2**31), "Health": 0.1}}))
    conn = sqlite3.connect(journal.path)
    for text in ('{"WorkItemHash":"c","Patch":{"Priority":9223372036854775807}}',
                 '{"WorkItemHash":"a","Patch":{"Health":NaN}}', '{"WorkItemHash":"b","Patch":{"Status":"\\ud800"}}'):
        conn.execute("INSERT INTO log (bridge, action, settings, recorded_at) VALUES ('Queue', 'QP_UpdateWorkItem', ?, '')", (text,))
    conn.commit()
    conn.close()
    [first, big] = journal.read("Queue", 0, 2)
    nan, surrogate = journal.read("Queue", 2, 10)
    item = first.settings["WorkItem"]
    assert (item["WorkItemHash"], item["Status"], item["Priority"], item["QueueWaitMs"], item["Health"]) == (
        "wi-ü", "Läuft ✓", 2**31 - 1, -(2**31), 0.1)
    assert nan.settings["Patch"]["Health"] != nan.settings["Patch"]["Health"]  # NaN
    assert surrogate.settings["Patch"]["Status"] == "\ud800"
    assert big.settings["Patch"]["Priority"] == 2**63 - 1


def test_manifest_upsert_updates_and_removal_is_soft(journal):
    journal.record(normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Waiting"}}))
    journal.record(normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Complete"}}))
    assert journal.get_manifest("run-1")["Status"] == "Complete"
    journal.record(normalize_action("MS_RemoveManifest", {"RunHash": "run-1"}))
    assert journal.get_manifest("run-1")["Deleted"] is True and journal.list_manifests() == []
    assert journal.apply([normalize_action("MS_RemoveManifest", {"RunHash": "run-1"})])[0].outcome == "already-absent"
    journal.record(normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Complete"}}))
    assert [m["Hash"] for m in journal.list_manifests()] == ["run-1"]


def test_list_filters_as_ultravisor_local_store(journal):
    rows = [("wi-1", "Pending", "b1", "r1", "Shell", "op1", 1, "t3"), ("wi-2", "Running", "b2", "r1", "Shell", "op2", 5, "t1"),
            ("wi-3", "Complete", "b1", "r2", "Http", "op1", 3, "t2"), ("wi-4", "Error", "", "r2", "Shell", "op1", 2, "t4")]
    journal.record_many([upsert(h, Status=s, AssignedBeaconID=b, RunID=r, Capability=c, OperationHash=o, Priority=p, EnqueuedAt=e)
                         for h, s, b, r, c, o, p, e in rows])

    def listed(**flt):
        return [row["WorkItemHash"] for row in journal.list_work_items(flt)]

    assert listed() == ["wi-2", "wi-3", "wi-1", "wi-4"]  # default EnqueuedAt ASC
    assert listed(Status="Pending") == ["wi-1"]
    assert listed(Status=["Complete", "Error"]) == ["wi-3", "wi-4"]
    assert listed(Status=[]) == []
    assert listed(AssignedBeaconID="b1") == ["wi-3", "wi-1"]
    assert listed(RunID="r2", Capability="Shell") == ["wi-4"]
    assert listed(OperationHash="op1", OrderBy="-Priority") == ["wi-3", "wi-4", "wi-1"]
    assert listed(OrderBy="Priority DESC", Limit=2) == ["wi-2", "wi-3"]
    assert listed(OrderBy="EnqueuedAt descending") == ["wi-4", "wi-1", "wi-3", "wi-2"]
    with pytest.raises(UsageError, match="cannot order by 'Bogus'"):
        journal.list_work_items({"OrderBy": "Bogus"})


def test_prune_deletes_only_up_to_the_mark_and_never_lowers_last_seq(journal):
    journal.record_many([upsert(f"wi-{i}") for i in range(5)])
    journal.record(normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1"}}))
    assert journal.prune("Queue", 3) == 3
    assert [a.seq for a in journal.read("Queue", 0, 10)] == [4, 5]
    assert journal.prune("Queue", 99) == 2
    assert journal.last_seq("Queue") == 5 and journal.last_seq() == 6
    assert journal.get_work_item("wi-0") is not None, "state survives pruning"
    journal.record(upsert("wi-9"))
    assert journal.read("Queue", 0, 10)[0].seq == 7, "AUTOINCREMENT never reuses a pruned seq"
    with pytest.raises(UsageError):
        journal.prune("Nope", 1)


def test_stats_count_log_and_state(journal):
    journal.record_many([upsert("wi-1", Status="Pending"), event("wi-1"), upsert("wi-2", Status="Complete")])
    stats = journal.stats()
    assert stats["LastSeq"] == 3 and stats["Log"]["Queue"] == {"Records": 3, "FirstSeq": 1, "LastSeq": 3}
    assert stats["State"]["WorkItems"] == 2 and stats["State"]["Events"] == 1
    assert stats["WorkItemsByStatus"] == {"Complete": 1, "Pending": 1}
    assert stats["Synchronous"] == "FULL"


def test_a_file_that_is_not_a_journal_is_a_clear_error(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "journal.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UvctlError, match="journal.sqlite is not usable"):
        Journal.open()


def test_bad_sync_mode_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("UVCTL_JOURNAL_SYNC", "sometimes")
    with pytest.raises(UsageError, match="UVCTL_JOURNAL_SYNC"):
        Journal.open()


WRITER = textwrap.dedent("""
    import sys
    from uvctl.journal import Journal, normalize_action
    worker, count = sys.argv[1], int(sys.argv[2])
    with Journal.open() as journal:
        for i in range(count):
            if i % 10 == 9:  # some batches too
                journal.record_many([normalize_action("QP_AppendEvent", {"Event": {
                    "WorkItemHash": "wi-shared", "EventType": "batch", "Payload": {"w": worker, "i": i, "k": k}}}) for k in range(3)])
            else:
                journal.record(normalize_action("QP_AppendEvent", {"Event": {
                    "WorkItemHash": "wi-shared", "EventType": "single", "Payload": {"w": worker, "i": i}}}))
""")


def test_four_processes_append_without_lost_or_duplicate_seq(journal, data_dir):
    count = 120
    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir), "UVCTL_JOURNAL_SYNC": "normal"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(count)], env=env, stderr=subprocess.PIPE)
             for w in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    per_worker = count + 2 * (count // 10)  # every 10th call writes 3 records instead of 1
    log = journal.read("Queue", 0, 100000)
    assert [a.seq for a in log] == list(range(1, 4 * per_worker + 1))
    events = journal.get_events("wi-shared", 5000)
    assert sorted(e["Seq"] for e in events) == list(range(1, 4 * per_worker + 1)), "per-item Seq has no gap or duplicate"
    assert len({e["EventGUID"] for e in events}) == 4 * per_worker
    for worker in range(4):  # each process's records appear in the order it wrote them
        mine = [json.loads(a.settings["Event"]["Payload"]) for a in log]
        mine = [(p["i"], p.get("k", 0)) for p in mine if p["w"] == str(worker)]
        assert mine == sorted(mine) and len(mine) == per_worker
    seq_order = [a.settings["Event"]["Seq"] for a in log]
    assert seq_order == sorted(seq_order), "event Seq follows commit order"


def test_a_read_only_journal_is_a_clear_error_and_journals_nothing(journal):
    journal.record(upsert("wi-1"))
    journal._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(UvctlError, match="cannot write the journal .*journal.sqlite.*nothing was journaled"):
        journal.record(upsert("wi-2"))
    journal._conn.execute("PRAGMA query_only = OFF")
    assert journal.last_seq() == 1 and journal.get_work_item("wi-2") is None
    journal.record(upsert("wi-3"))
    assert journal.last_seq() == 2, "the connection is usable again after the failure"


KILLED_WRITER = textwrap.dedent("""
    import sys
    from uvctl.journal import Journal, normalize_action
    with Journal.open() as journal:
        i = 0
        while True:
            done = journal.record_many([
                normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": f"wi-{i}", "Status": "Pending"}}),
                normalize_action("QP_AppendEvent", {"Event": {"WorkItemHash": f"wi-{i}", "EventType": "enqueued"}}),
            ])
            print(done[-1].seq, flush=True)  # the call returned: both records must survive
            i += 1
""")


@pytest.mark.parametrize("stop_after", [5, 40, 120])
def test_kill_9_loses_no_returned_write_and_leaves_log_and_state_consistent(data_dir, stop_after):
    import signal

    env = {**os.environ, "UVCTL_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER], env=env, stdout=subprocess.PIPE, text=True)
    returned = [int(proc.stdout.readline()) for _ in range(stop_after)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with Journal.open() as journal:
        log = journal.read("Queue", 0, 100000)
        assert set(returned) <= {a.seq for a in log}, "a write whose call returned was lost"
        assert [a.seq for a in log] == list(range(1, len(log) + 1)) and len(log) % 2 == 0, "a half-written batch"
        upserted = {a.settings["WorkItem"]["WorkItemHash"] for a in log if a.name == "QP_UpsertWorkItem"}
        assert {r["WorkItemHash"] for r in journal.list_work_items({"Limit": 5000})} == upserted
        assert journal.stats()["State"]["Events"] == len(log) // 2


def test_a_format_1_journal_is_upgraded_in_place_and_keeps_its_records(tmp_path):
    import sqlite3

    from uvctl.journal import Journal, normalize_action
    from uvctl.journal.store import FORMAT_VERSION

    path = tmp_path / "old.sqlite"
    with Journal.open(path) as journal:
        journal.record(normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "kept"}}))
    conn = sqlite3.connect(path)  # what a journal of format 1 looked like: no early_patch table
    conn.execute("DROP TABLE early_patch")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'format'")
    conn.commit()
    conn.close()
    with Journal.open(path) as journal:
        assert journal.get_work_item("kept") is not None and journal.last_seq() == 1
        journal.record(normalize_action("QP_UpdateAttemptOutcome", {"WorkItemHash": "kept", "AttemptNumber": 1,
                                                                    "Patch": {"Outcome": "Complete"}}))
        journal.record(normalize_action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "kept", "AttemptNumber": 1}}))
        assert journal.get_attempts("kept")[0]["Outcome"] == "Complete"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()[0] == str(FORMAT_VERSION)
    conn.close()
