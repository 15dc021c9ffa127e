"""QueueBridge / ManifestBridge: every action on the journal alone, then write-through to a test backend."""

import json

import pytest

from uvctl import host
from uvctl.actions import envelope
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec
from uvctl.bridge import ManifestBridge, QueueBridge, execute
from uvctl.errors import BackendUnavailable, UsageError
from uvctl.hookspecs import hookimpl

from .conftest import run_threads

ITEM = {"WorkItemHash": "wi-1", "RunID": "rn-1", "Capability": "Shell", "Settings": {"Command": "true"},
        "Status": "Pending", "CreatedAt": "2026-11-26T22:00:00.000Z", "RequireAffinityMatch": False,
        "EnqueuedAt": "2026-11-26T22:00:00.000Z"}


@pytest.fixture
def queue(journal):
    with QueueBridge(journal) as bridge:
        yield bridge


@pytest.fixture
def manifests(journal):
    with ManifestBridge(journal) as bridge:
        yield bridge


# ---------------------------------------------------------------------- journal only
def test_queue_actions_on_the_journal_alone(queue):
    up = queue.upsert_work_item(ITEM)
    assert up == {"Available": True, "Success": True, "JournalSeq": 1, "Pending": True}
    assert queue.update_work_item("wi-1", {"Status": "Dispatched", "AssignedBeaconID": "bcn-1", "Settings": {"x": 1}})["Success"]
    ev = queue.append_event({"WorkItemHash": "wi-1", "RunID": "rn-1", "EventType": "dispatched", "FromStatus": "Pending",
                             "ToStatus": "Dispatched", "BeaconID": "bcn-1", "Payload": {"QueueWaitMs": 5}})
    assert ev["Success"] and ev["Event"]["Seq"] == 1 and ev["Event"]["EventGUID"]
    assert queue.insert_attempt({"WorkItemHash": "wi-1", "AttemptNumber": 1, "BeaconID": "bcn-1",
                                 "DispatchedAt": "t1", "Outcome": "Dispatched"})["JournalSeq"] == 4
    assert queue.update_attempt_outcome("wi-1", 1, {"CompletedAt": "t2", "Outcome": "Complete", "DurationMs": 9})["Success"]

    got = queue.get_work_item("wi-1")
    assert got["Success"] and got["Source"] == "journal"
    assert (got["WorkItem"]["Status"], got["WorkItem"]["AssignedBeaconID"], got["WorkItem"]["Settings"]) == ("Dispatched", "bcn-1", '{"x":1}')
    assert [w["WorkItemHash"] for w in queue.list_work_items({"Status": ["Dispatched"]})["WorkItems"]] == ["wi-1"]
    assert queue.list_work_items()["WorkItems"][0]["WorkItemHash"] == "wi-1"
    events = queue.get_events("wi-1")
    assert events["Success"] and [e["EventType"] for e in events["Events"]] == ["dispatched"]
    assert queue.journal.get_attempts("wi-1")[0]["EndedAt"] == "t2"


def test_missing_work_item_reads_and_patches(queue):
    missing = queue.get_work_item("wi-none")
    assert missing["Success"] is False and missing["WorkItem"] is None and "wi-none" in missing["Reason"]
    patched = queue.update_work_item("wi-none", {"Status": "Running"})
    assert patched["Success"] is True and patched["NotFound"] is True and patched["JournalSeq"] == 1
    assert "not in the journal" in patched["Warning"]
    assert queue.get_work_item("wi-none")["Success"] is False


def test_replayed_events_and_attempts_are_already_present(queue):
    first = queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g-1", "EventType": "x"})
    again = queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g-1", "EventType": "x"})
    assert first["JournalSeq"] == 1 and again["AlreadyPresent"] is True and "JournalSeq" not in again
    attempt = {"WorkItemHash": "wi-1", "AttemptNumber": 1}
    queue.insert_attempt(attempt)
    assert queue.insert_attempt(attempt)["AlreadyPresent"] is True


def test_manifest_actions_on_the_journal_alone(manifests):
    run = {"Hash": "run-1", "OperationHash": "OPR-1", "Status": "Waiting", "StartTime": "t1",
           "TaskOutputs": {"n": {"ExitCode": 0}}, "WaitingTasks": {"n": {"PromptMessage": "ok?"}}, "StagingPath": "/s/1"}
    assert manifests.upsert_manifest(run)["Success"]
    done = {**run, "Status": "Complete", "StopTime": "t2"}
    done.pop("WaitingTasks")
    second = manifests.upsert_manifest(done)
    assert second["Success"] and second["JournalSeq"] == 2, "a second upsert of the same Hash updates it"
    got = manifests.get_manifest("run-1")
    assert got["Success"] and got["Source"] == "journal"
    assert got["Manifest"]["Status"] == "Complete" and got["Manifest"]["TaskOutputs"] == {"n": {"ExitCode": 0}}
    assert "WaitingTasks" not in got["Manifest"] and "ManifestJSON" not in got["Manifest"]
    assert got["Manifest"]["StagingPath"] == "/s/1" and got["Manifest"]["Live"] is False
    manifests.upsert_manifest({"Hash": "run-2", "OperationHash": "OPR-2", "Status": "Complete", "StartTime": "t3"})
    listed = manifests.list_manifests({"OperationHash": "OPR-1"})["Manifests"]
    assert [m["Hash"] for m in listed] == ["run-1"] and "ManifestJSON" not in listed[0]
    assert [m["Hash"] for m in manifests.list_manifests()["Manifests"]] == ["run-2", "run-1"]
    assert manifests.remove_manifest("run-1")["Success"]
    gone = manifests.get_manifest("run-1")
    assert gone["Success"] is False and "removed" in gone["Reason"]
    assert manifests.remove_manifest("run-1")["AlreadyAbsent"] is True
    assert [m["Hash"] for m in manifests.list_manifests()["Manifests"]] == ["run-2"]
    assert manifests.upsert_manifest(done)["Success"] and manifests.get_manifest("run-1")["Success"], "re-upsert revives"


def test_execute_runs_any_action_by_name(journal):
    assert execute("QP_UpsertWorkItem", {"WorkItem": ITEM}, journal=journal)["Success"]
    assert execute("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"}, journal=journal)["WorkItem"]["RunID"] == "rn-1"
    assert execute("MS_ListManifests", {}, journal=journal)["Manifests"] == []
    for name in ("QP_DropEverything", None):
        out = execute(name, {}, journal=journal)
        assert out["Available"] is True and out["Success"] is False and "unknown bridge action" in out["Reason"]
    wrong = QueueBridge(journal).execute("MS_GetManifest", {"RunHash": "x"})
    assert wrong["Success"] is False and "belongs to the Manifest bridge" in wrong["Reason"]


def test_bad_input_answers_success_false_with_the_reason_and_journals_nothing(queue, manifests):
    # as Ultravisor's bridges do: a bridge call is never an exception, its envelope says why
    for out, reason in ((queue.upsert_work_item({"Status": "Pending"}), "WorkItemHash is required"),
                        (queue.append_event({"EventType": "x"}), "WorkItemHash is required"),
                        (queue.insert_attempt({"WorkItemHash": "k"}), "AttemptNumber"),
                        (manifests.upsert_manifest({"Status": "Complete"}), "Hash is required"),
                        (queue.get_work_item(None), "WorkItemHash"),
                        (queue.list_work_items({"Stat": "x"}), "unknown filter key"),
                        (manifests.execute("MS_UpsertManifest", {}), "Manifest")):
        assert out["Available"] is True and out["Success"] is False and reason in out["Reason"], (reason, out)
    assert queue.journal.last_seq() == 0


def test_bridge_opens_the_data_dir_journal_by_default(data_dir):
    with QueueBridge() as bridge:
        bridge.upsert_work_item(ITEM)
    assert (data_dir / "journal.sqlite").exists()
    with QueueBridge() as bridge:
        assert bridge.get_work_item("wi-1")["Success"]


# ---------------------------------------------------------------------- write-through
class FakeBackend:
    """An in-test plugin: one backend, ``fake``, whose behaviour the test switches."""

    def __init__(self):
        self.mode = "ok"
        self.rows = {}  # (table key) → row; enough to answer reads
        self.dispatched = []

    @hookimpl
    def uvctl_register_backends(self, register):
        register(BackendInfo(name="fake", summary="in-test backend",
                             options=(OptionSpec("Name", "--name", "instance name"),),
                             identity=lambda options: f"fake:{options.get('Name')}"))

    @hookimpl
    def uvctl_bootstrap(self, backend):
        if backend.name != "fake":
            return None
        if self.mode == "down":
            return BootstrapResult("waiting-for-beacon", reason="fake backend is down")
        return BootstrapResult("bootstrapped")

    @hookimpl
    def uvctl_dispatch(self, backend, actions):
        if backend.name != "fake":
            return None
        if self.mode == "down":
            raise BackendUnavailable("fake backend is down (password=hunter2)")
        out = []
        for action in actions:
            self.dispatched.append(action)
            if self.mode == "needs-bootstrap":
                out.append({"Success": False, "NeedsBootstrap": True, "Reason": "tables vanished"})
            elif self.mode == "reject":
                out.append({"Success": False, "Reason": "constraint failed"})
            elif action.name == "QP_UpsertWorkItem":
                self.rows[action.settings["WorkItem"]["WorkItemHash"]] = action.settings["WorkItem"]
                out.append(envelope(True))
            elif action.name == "QP_GetWorkItemByHash":
                row = self.rows.get(action.settings["WorkItemHash"])
                out.append(envelope(row is not None, WorkItem=row))
            else:
                out.append(envelope(True))
        return out


@pytest.fixture
def fake(data_dir):
    assignment = pytest.importorskip("uvctl.assignment")
    plugin = FakeBackend()
    host.register_plugin(plugin, name="test-fake-backend")
    try:
        assignment.assign("fake", {"Name": "one"})
        assert assignment.backend_for("Queue", bootstrap=True) is not None
        yield plugin
    finally:
        host.unregister_plugin("test-fake-backend")


def marks():
    from uvctl.flush import HighWaterMarks

    return HighWaterMarks()


def test_write_through_delivers_and_advances_the_mark(fake, queue):
    first = queue.upsert_work_item(ITEM)
    assert first["Pending"] is False and "PendingReason" not in first
    assert [a.seq for a in fake.dispatched] == [1]
    assert fake.rows["wi-1"]["Settings"] == '{"Command":"true"}', "the backend gets the projected record"
    queue.append_event({"WorkItemHash": "wi-1", "EventType": "enqueued"})
    assert marks().get("Queue", "fake:one") == 2


def test_reads_come_from_the_backend_only_when_it_has_every_record(fake, queue):
    queue.upsert_work_item(ITEM)
    assert queue.get_work_item("wi-1")["Source"] == "backend"
    fake.mode = "down"
    down = queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-2"})
    assert down["Success"] is True and down["Pending"] is True
    assert "fake backend is down" in down["PendingReason"] and "hunter2" not in down["PendingReason"]
    fake.mode = "ok"
    got = queue.get_work_item("wi-2")
    assert got["Success"] and got["Source"] == "journal", "a pending record makes the journal answer"


def test_backend_failure_leaves_the_record_pending_until_a_later_write_delivers_it_first(fake, queue):
    fake.mode = "reject"
    out = queue.upsert_work_item(ITEM)
    assert out["Success"] is True and out["Pending"] is True and out["PendingReason"] == "constraint failed"
    assert marks().get("Queue", "fake:one") == 0
    fake.mode = "ok"
    fake.dispatched.clear()
    later = queue.update_work_item("wi-1", {"Status": "Running"})
    assert later["Pending"] is False, later
    assert [a.seq for a in fake.dispatched] == [1, 2], "the pending record goes first, in order"
    assert marks().get("Queue", "fake:one") == 2
    flush = pytest.importorskip("uvctl.flush")
    assert flush.flush(bridges=("Queue",)).Bridges[0].State == "up-to-date"


def test_a_refused_record_keeps_every_later_one_pending_in_order(fake, queue):
    fake.mode = "reject"
    queue.upsert_work_item(ITEM)
    later = queue.update_work_item("wi-1", {"Status": "Running"})
    assert later["Pending"] is True and "refused at seq 1" in later["PendingReason"]
    assert [a.seq for a in fake.dispatched] == [1, 1, 2], "retried in order, never overtaken"
    assert marks().get("Queue", "fake:one") == 0


def test_write_through_catches_up_a_backlog_a_bounded_chunk_at_a_time(fake, queue, monkeypatch):
    from uvctl.bridge import base

    monkeypatch.setattr(base, "CATCH_UP", 3)
    fake.mode = "reject"
    for n in range(7):
        queue.upsert_work_item({**ITEM, "WorkItemHash": f"wi-{n}"})
    fake.mode = "ok"
    fake.dispatched.clear()
    first = queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-7"})
    assert first["Pending"] is True and "8 records of this bridge" not in first["PendingReason"]
    assert "5 records of this bridge, this one among them, are still pending" in first["PendingReason"]
    assert [a.seq for a in fake.dispatched] == [1, 2, 3] and marks().get("Queue", "fake:one") == 3
    second = queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-8"})
    assert second["Pending"] is True and marks().get("Queue", "fake:one") == 6
    assert queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-9"})["Pending"] is True
    last = queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-10"})
    assert last["Pending"] is False and marks().get("Queue", "fake:one") == 11
    assert [a.seq for a in fake.dispatched] == list(range(1, 12)), "each record once, in order"


def test_concurrent_writers_never_stall_write_through(fake, journal):
    # two threads race: whichever delivers second finds its record sent by the first or sends
    # the other's first; nothing is left pending and the backend sees each record once, in order
    from uvctl.bridge import QueueBridge

    answers = []

    def work(k):
        bridge = QueueBridge(journal)
        for n in range(40):
            answers.append(bridge.upsert_work_item({**ITEM, "WorkItemHash": f"wi-{k}-{n}"}))

    errors = run_threads(work, 3)
    assert not errors
    assert journal.last_seq("Queue") == 120 and marks().get("Queue", "fake:one") == 120
    assert [a.seq for a in fake.dispatched] == list(range(1, 121))
    # a write that waited too long for the lock says so; a later write delivered it (mark == 120)
    assert all("another delivery" in a["PendingReason"] for a in answers if a["Pending"]), answers


def test_needs_bootstrap_marks_the_assignment_and_the_next_write_bootstraps_again(fake, queue):
    from uvctl import assignment

    fake.mode = "needs-bootstrap"
    out = queue.upsert_work_item(ITEM)
    assert out["Pending"] is True and "tables vanished" in out["PendingReason"]
    assert assignment.load()["Queue"]["State"] == "waiting-for-beacon"
    fake.dispatched.clear()
    fake.mode = "ok"
    assert queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-2"})["Pending"] is False
    assert [a.seq for a in fake.dispatched] == [1, 2]
    assert assignment.load()["Queue"]["State"] == "bootstrapped"


def test_an_unreachable_backend_is_demoted_and_retried_after_the_interval(fake, queue, monkeypatch):
    from uvctl import assignment
    from uvctl.assignment import service

    fake.mode = "down"
    down = queue.upsert_work_item(ITEM)
    assert down["Pending"] is True and "fake backend is down" in down["PendingReason"]
    entry = assignment.load()["Queue"]
    assert entry["State"] == "waiting-for-beacon" and "fake backend is down" in entry["LastError"]
    assert "hunter2" not in json.dumps(entry)
    assert assignment.status()["Queue"]["State"] == "waiting-for-beacon", "status bootstraps, but it is still down"
    fake.mode = "ok"
    fake.dispatched.clear()
    waiting = queue.update_work_item("wi-1", {"Status": "Running"})
    assert waiting["Pending"] is True and "waiting-for-beacon" in waiting["PendingReason"]
    assert fake.dispatched == [], "no attempt before the retry interval is over"
    monkeypatch.setattr(service, "RETRY_SECONDS", 0.0)
    back = queue.update_work_item("wi-1", {"Status": "Complete"})
    assert back["Pending"] is False and [a.seq for a in fake.dispatched] == [1, 2, 3]
    assert assignment.load()["Queue"]["State"] == "bootstrapped" and assignment.load()["Queue"]["LastError"] is None


def test_manifest_bridge_writes_through_on_its_own_mark(fake, queue, manifests):
    queue.upsert_work_item(ITEM)
    out = manifests.upsert_manifest({"Hash": "run-1", "Status": "Complete"})
    assert out["Pending"] is False and out["JournalSeq"] == 2
    assert marks().get("Manifest", "fake:one") == 2 and marks().get("Queue", "fake:one") == 1


def test_a_corrupt_assignment_file_never_loses_a_write(fake, queue, data_dir):
    (data_dir / "persistence-assignment.json").write_text("{not json")
    out = queue.upsert_work_item(ITEM)
    assert out["Success"] is True and out["Pending"] is True
    assert "persistence-assignment.json is corrupt" in out["PendingReason"]
    assert json.loads(queue.journal.read("Queue", 0, 1)[0].settings["WorkItem"]["Settings"]) == {"Command": "true"}


def test_reads_fall_back_to_the_journal_when_the_backend_fails(fake, queue):
    queue.upsert_work_item(ITEM)
    fake.mode = "down"
    got = queue.get_work_item("wi-1")
    assert got["Success"] and got["Source"] == "journal"
    fake.mode = "ok"
    fake.rows.clear()  # the backend lost the row: its "not found" is checked against the journal
    got = queue.get_work_item("wi-1")
    assert got["Success"] and got["Source"] == "journal" and got["WorkItem"]["RunID"] == "rn-1"


def test_an_unusable_field_is_dropped_with_a_warning_and_the_write_kept(queue):
    out = queue.upsert_work_item({**ITEM, "Priority": "high", "HealthLabel": "x" * 5000})
    assert out["Success"] is True and out["JournalSeq"] == 1
    assert any("Priority must be a number" in w for w in out["Warnings"])
    assert any("HealthLabel is 5000 characters long" in w for w in out["Warnings"])
    row = queue.get_work_item("wi-1")["WorkItem"]
    assert row["Priority"] == 0 and row["HealthLabel"] == "Unknown" and row["RunID"] == "rn-1"
    patched = queue.update_work_item("wi-1", {"Status": "Running", "QueueWaitMs": "soon"})
    assert patched["Success"] and "QueueWaitMs" in patched["Warnings"][0]
    assert queue.journal.read("Queue", 1, 1)[0].settings["Patch"] == {"Status": "Running"}
    refused = queue.upsert_work_item({**ITEM, "WorkItemHash": "w" * 300})
    assert refused["Success"] is False and "WorkItemHash is 300 characters long" in refused["Reason"]


def test_an_integer_beyond_int_range_is_dropped_with_a_warning(queue):
    # the journal's SQLite would hold 2**40, but every engine's INT column refuses it, so
    # keeping it would stop every later flush at this record
    out = queue.upsert_work_item({**ITEM, "Priority": 2**40, "TimeoutMs": 2**31 - 1})
    assert out["Success"] is True
    assert any("Priority is 1099511627776, outside the range of its INT column" in w for w in out["Warnings"])
    row = queue.get_work_item("wi-1")["WorkItem"]
    assert row["Priority"] == 0 and row["TimeoutMs"] == 2**31 - 1
    patched = queue.update_work_item("wi-1", {"QueueWaitMs": -(2**31) - 1, "Status": "Running"})
    assert any("QueueWaitMs is -2147483649" in w for w in patched["Warnings"])
    assert queue.journal.read("Queue", 1, 1)[0].settings["Patch"] == {"Status": "Running"}
    refused = queue.insert_attempt({"WorkItemHash": "wi-1", "AttemptNumber": 2**32})
    assert refused["Success"] is False and "AttemptNumber is 4294967296, outside the range" in refused["Reason"]


def test_a_reused_event_guid_answers_with_the_stored_event_and_says_it_differs(queue):
    first = queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g-1", "EventType": "enqueued"})
    again = queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g-1", "EventType": "enqueued"})
    assert again["AlreadyPresent"] is True and "Warning" not in again
    reused = queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g-1", "EventType": "completed",
                                 "Payload": {"ExitCode": 1}})
    assert reused["Success"] is True and reused["AlreadyPresent"] is True
    assert reused["Event"]["EventType"] == "enqueued" and reused["Event"]["Seq"] == first["Event"]["Seq"]
    assert "other EventType, Payload" in reused["Warning"]
    assert queue.journal.last_seq() == 1


def test_a_bootstrap_cut_short_is_retried_by_a_later_write(fake, queue, monkeypatch):
    # a process killed while bootstrapping leaves the state 'bootstrapping': writes retry it
    # once it is clearly stale, instead of staying journal-only until someone runs status
    from uvctl import assignment
    from uvctl.assignment import service, store

    with store.editing() as doc:
        doc["Queue"]["State"] = "bootstrapping"
    assert queue.upsert_work_item(ITEM)["Pending"] is True and fake.dispatched == []
    monkeypatch.setattr(service, "RETRY_SECONDS", 0.0)
    assert queue.upsert_work_item({**ITEM, "WorkItemHash": "wi-2"})["Pending"] is False
    assert [a.seq for a in fake.dispatched] == [1, 2] and assignment.load()["Queue"]["State"] == "bootstrapped"


def test_a_natural_key_with_a_tilde_is_refused_at_the_door(queue, manifests):
    # meadow's filters split on '~': journaled, it would stall a databeacon backend for good
    for out in (queue.upsert_work_item({**ITEM, "WorkItemHash": "bad~key"}),
                queue.append_event({"WorkItemHash": "wi-1", "EventGUID": "g~1"}),
                manifests.upsert_manifest({"Hash": "run~1"})):
        assert out["Success"] is False and "contains '~'" in out["Reason"], out
    assert queue.journal.last_seq() == 0


def test_status_says_when_a_bootstrap_was_left_by_a_process_that_stopped(fake, queue, monkeypatch):
    from uvctl import assignment
    from uvctl.assignment import service, store

    with store.editing() as doc:
        doc["Queue"]["State"] = "bootstrapping"
    fresh = assignment.status(queue.journal, bootstrap=False)["Queue"]
    assert fresh["State"] == "bootstrapping" and not fresh["LastError"]  # may still be running
    monkeypatch.setattr(service, "RETRY_SECONDS", 0.0)
    stale = assignment.status(queue.journal, bootstrap=False)["Queue"]
    assert stale["State"] == "bootstrapping" and "never finished (its process stopped)" in stale["LastError"]
