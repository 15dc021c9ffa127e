"""Seq numbering when several connections write one journal, and bounded reads of the log.

The journal numbers a write from what its own last commit left while no other connection
has committed since (``PRAGMA data_version``); these tests make another connection commit
in between and check that numbering, ``previous`` and reads stay exact.
"""

from __future__ import annotations

from uvctl.journal import Journal, normalize_action


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
