"""Seq numbering when several connections write one journal, and bounded reads of the log.

The journal numbers a write from what its own last commit left while no other connection
has committed since (``PRAGMA data_version``); these tests make another connection commit
in between and check that numbering, ``previous`` and reads stay exact.
"""

from __future__ import annotations

import pytest

from uvctl.journal import Journal, normalize_action

from .conftest import run_threads


def _event(n: int):
    return normalize_action("QP_AppendEvent", {"Event": {"WorkItemHash": f"wi-{n % 2}", "EventType": "x"}})


def _manifest(n: int):
    return normalize_action("MS_UpsertManifest", {"Manifest": {"Hash": f"run-{n}", "Status": "Running"}})


def test_two_connections_interleaved_get_increasing_seqs_and_exact_previous(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as one, Journal.open(path) as two:
        seen = []
        for n in range(12):
            writer = (one, two, one, one)[n % 4]
            action = _event(n) if n % 3 else _manifest(n)
            bridge = action.bridge
            expected_previous = writer.last_seq(bridge)
            done = writer.apply([action])[0]
            assert done.previous == expected_previous
            seen.append(done.action.seq)
        assert seen == list(range(1, 13))
        assert one.last_seq() == two.last_seq() == 12
        queue = [a.seq for a in two.read("Queue", 0, 100)]
        assert queue == [s for n, s in enumerate(seen) if n % 3]
        # per-item event Seq continues across connections too
        assert [e["Seq"] for e in one.get_events("wi-1")] == list(range(1, len(one.get_events("wi-1")) + 1))


def test_numbering_after_a_prune_and_after_a_rolled_back_write(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        journal.record_many([_event(n) for n in range(5)])
        journal.prune("Queue", 5)
        done = journal.apply([_event(5)])[0]
        assert (done.action.seq, done.previous) == (6, 5)
        bad = normalize_action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-0"})
        try:
            journal.record_many([_event(6), bad])
        except Exception:
            pass
        else:
            raise AssertionError("a read action must not be journaled")
        done = journal.apply([_event(7)])[0]
        assert (done.action.seq, done.previous) == (7, 6)


def test_read_stops_at_upto_seq_and_decodes_every_settings(tmp_path):
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        written = journal.record_many([_event(n) for n in range(6)] + [_manifest(9)])
        assert [a.seq for a in journal.read("Queue", 1, 100, upto_seq=4)] == [2, 3, 4]
        assert [a.seq for a in journal.read("Queue", 0, 2, upto_seq=6)] == [1, 2]
        assert journal.read("Queue", 6, 100) == []
        assert [(a.name, a.settings) for a in journal.read("Queue", 0, 100)] == [(a.name, a.settings) for a in written[:6]]
        assert journal.read("Manifest", 0, 100)[0].settings == written[6].settings


@pytest.mark.parametrize("synchronous", ["full", "normal"])  # group commit, and calls taking turns
def test_threads_sharing_one_journal_all_commit_with_distinct_contiguous_seqs(tmp_path, synchronous):
    """Bridges in several threads may share one Journal: no write may fail or reuse a seq."""
    with Journal.open(tmp_path / "journal.sqlite", synchronous=synchronous) as journal:
        done = []

        def writer(k: int) -> None:
            for n in range(150):
                action = normalize_action("QP_AppendEvent", {"Event": {"WorkItemHash": f"wi-{n % 3}", "EventType": f"t{k}"}})
                done.append(journal.apply([action])[0])

        errors = run_threads(writer, 4)
        assert errors == []
        assert sorted(r.action.seq for r in done) == list(range(1, 601))
        assert sorted(r.previous for r in done) == list(range(0, 600))  # each record's previous is the seq before it
        assert [a.seq for a in journal.read("Queue", 0, 1000)] == list(range(1, 601))
        for item in ("wi-0", "wi-1", "wi-2"):
            assert [e["Seq"] for e in journal.get_events(item, 1000)] == list(range(1, 201))


def test_calls_waiting_for_a_commit_are_written_together_and_fail_alone(tmp_path):
    """Calls queued behind a commit in progress share the next one (group commit); a call
    that fails there leaves the others of its group journaled, with contiguous seqs."""
    import threading
    import time

    with Journal.open(tmp_path / "journal.sqlite", synchronous="full") as journal:  # group commit is FULL's
        outcome: dict = {}

        def call(name: str, actions: list) -> None:
            try:
                outcome[name] = [r.action.seq for r in journal.apply(actions)]
            except Exception as exc:
                outcome[name] = exc

        bad = [_event(1), normalize_action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-0"})]
        journal._lock.acquire()  # holds the first caller inside its commit
        try:
            first = threading.Thread(target=call, args=("first", [_event(0)]))
            first.start()
            deadline = time.monotonic() + 10
            while not journal._leading and time.monotonic() < deadline:
                time.sleep(0.01)
            others = [threading.Thread(target=call, args=(name, actions))
                      for name, actions in (("bad", bad), ("good", [_event(2), _manifest(3)]))]
            for thread in others:
                thread.start()
            while len(journal._queue) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(journal._queue) == 2  # both wait for the next commit
        finally:
            journal._lock.release()
        for thread in [first, *others]:
            thread.join(10)
        assert outcome["first"] == [1]
        assert "only write actions can be journaled" in str(outcome["bad"])
        assert outcome["good"] == [2, 3]
        assert journal.last_seq() == 3
        assert [e["EventType"] for e in journal.get_events("wi-0")] == ["x", "x"]  # events 0 and 2, not 1
        assert journal.get_events("wi-1") == []
        assert journal.get_manifest("run-3") is not None


def test_a_call_interrupted_while_waiting_for_a_commit_is_not_written_and_blocks_nobody(tmp_path):
    """Ctrl-C (here a signal whose handler raises) while a call waits behind another thread's
    commit: that call is dropped from the queue, and later calls still commit."""
    import signal
    import threading
    import time

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted()

    with Journal.open(tmp_path / "journal.sqlite", synchronous="full") as journal:  # group commit is FULL's
        outcome: dict = {}
        journal._lock.acquire()  # holds another thread's commit until the interrupt is over
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            leader = threading.Thread(target=lambda: outcome.setdefault("leader", journal.apply([_event(0)])))
            leader.start()
            deadline = time.monotonic() + 10
            while not journal._leading and time.monotonic() < deadline:
                time.sleep(0.01)
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            try:
                journal.apply([_event(1)])  # waits behind the leader until the signal
            except Interrupted:
                outcome["main"] = "interrupted"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            journal._lock.release()
        leader.join(10)
        assert outcome["main"] == "interrupted"
        assert [r.action.seq for r in outcome["leader"]] == [1]
        later = threading.Thread(target=lambda: outcome.setdefault("later", journal.apply([_event(2)])), daemon=True)
        later.start()
        later.join(10)
        assert [r.action.seq for r in outcome.get("later", [])] == [2]  # not blocked, and event 1 never written
        assert journal.get_events("wi-1") == []
