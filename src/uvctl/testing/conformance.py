"""The conformance suite every uvctl backend runs against itself.

Subclass :class:`BackendConformance` and provide a ``backend`` fixture yielding a
:class:`uvctl.backend.Backend` for an empty target (see the package docstring). Everything
goes through the same plugin host calls uvctl itself makes (``host.bootstrap``,
``host.dispatch``, ``host.lookup``), so passing the kit means uvctl can use the backend.

The contract it checks (docs/plugins.md has it in prose):

- every ``QP_*`` / ``MS_*`` action, with Ultravisor's Settings shapes and envelopes;
- upserts by natural key: a second upsert updates, never duplicates, never fails;
- events and attempts are append-only: a replay answers ``Success`` + ``AlreadyPresent``
  and changes nothing; replaying a whole history leaves every read unchanged;
- list filters: ``Status`` (a string or a list), ``RunID``, ``Capability``,
  ``AssignedBeaconID``, ``OperationHash``; ``OrderBy`` one or more comma-separated
  ``"Column ASC|DESC"`` or ``"-Column"`` terms; ``Limit`` clamped to 1..5000. The defaults
  (a missing ``Limit`` or 0, a missing ``OrderBy``) are the journal's: work items 500 rows
  by ``EnqueuedAt ASC``, manifests 100 rows by ``StartTime DESC``, so 600 work items need
  an explicit ``Limit`` to be read in full;
- manifest removal is a soft delete: gone from reads, a repeated removal still succeeds,
  and a later upsert brings the manifest back;
- bad input (a missing natural key, an unknown action, an ``OrderBy`` that is not a
  column, a ``Limit`` that is not a number) is answered with a failed envelope carrying a
  ``Reason`` (or a :class:`uvctl.errors.UvctlError` raised by the plugin) and writes nothing;
- an update of a row the backend does not have succeeds and creates nothing (the journal
  keeps such updates; failing them would stop every later flush at that record);
- ``uvctl.flush`` interrupted by a backend failure resumes where it stopped and ends with
  the backend equal to the journal.

Optional hooks a subclass may override for deeper checks:

- :meth:`stored_attempts` — the attempt rows the backend holds (there is no read action for
  attempts, so without it the kit checks outcomes through the envelopes only).
"""

from __future__ import annotations

import pytest

from uvctl import host
from uvctl.actions import MANIFEST, QUEUE, Action
from uvctl.errors import UvctlError

from . import records as r

#: How many rows the paging tests write: more than the default list size of 500.
PAGING_ROWS = 600


def _same(actual, expected) -> bool:
    """Equal as UV column values: booleans may come back as 0/1, integers as strings of digits."""
    if isinstance(expected, bool):
        return actual in (expected, int(expected), str(int(expected)))
    if isinstance(expected, int) and actual is not None and not isinstance(actual, bool):
        try:
            return int(actual) == expected
        except (TypeError, ValueError):
            return False
    if expected == "" and actual is None:
        return True
    return actual == expected


def assert_row(actual: dict | None, expected: dict) -> None:
    """``actual`` carries every column of ``expected`` with the same value (extra columns allowed)."""
    assert actual, f"expected a row like {expected}, got {actual!r}"
    wrong = {k: (actual.get(k), v) for k, v in expected.items() if not _same(actual.get(k), v)}
    assert not wrong, f"columns differ (got, expected): {wrong}"


def is_rejected(outcome) -> bool:
    """True for a failed envelope with a Reason, or a UvctlError the plugin raised."""
    if isinstance(outcome, UvctlError):
        return True
    return isinstance(outcome, dict) and outcome.get("Success") is False and bool(outcome.get("Reason"))


class BackendConformance:
    """Inherit this in a ``Test...`` class and provide a ``backend`` fixture."""

    paging_rows = PAGING_ROWS

    # --- plumbing -----------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _uvctl_kit_isolation(self, uvctl_data_dir):
        """Every kit test gets its own data dir (journal, assignment, high-water marks)."""
        return uvctl_data_dir

    @pytest.fixture
    def ready(self, backend):
        """The ``backend`` fixture, bootstrapped."""
        result = host.bootstrap(backend)
        assert result.state == "bootstrapped", f"bootstrap did not finish: {result.state} ({result.reason})"
        return backend

    def run(self, backend, name: str, **settings) -> dict:
        """Dispatch one action; its envelope."""
        (result,) = host.dispatch(backend, [Action(name, settings)])
        assert isinstance(result, dict) and "Success" in result, f"{name} answered {result!r}, not an envelope"
        assert result["Success"] is not True or result.get("Available") is True, f"{name} succeeded without Available: {result!r}"
        return result

    def run_all(self, backend, actions: list[tuple[str, dict]]) -> list[dict]:
        """Dispatch a batch of ``(name, settings)``; the envelopes, each checked for success."""
        results = host.dispatch(backend, [Action(name, settings) for name, settings in actions])
        failed = [(a[0], res) for a, res in zip(actions, results) if not res.get("Success")]
        assert not failed, f"writes failed: {failed[:3]}"
        return results

    def attempt_outcome(self, outcome) -> dict | Exception:
        """An envelope, or the UvctlError a plugin raised instead."""
        try:
            return outcome()
        except UvctlError as exc:
            return exc

    def stored_attempts(self, backend, work_item_hash: str) -> list[dict] | None:
        """Override to return the attempt rows the backend holds; ``None`` skips those checks."""
        return None

    def hashes(self, envelope: dict, key: str = "WorkItems", column: str = "WorkItemHash") -> list[str]:
        assert envelope["Success"] is True, envelope
        return [row[column] for row in envelope[key]]

    def upsert_items(self, backend, items: list[dict]) -> None:
        self.run_all(backend, [("QP_UpsertWorkItem", {"WorkItem": item}) for item in items])

    # --- bootstrap ----------------------------------------------------------------------

    def test_bootstrap_is_idempotent(self, backend):
        first = host.bootstrap(backend)
        second = host.bootstrap(backend)
        assert (first.state, second.state) == ("bootstrapped", "bootstrapped"), (first, second)

    def test_batch_answers_one_result_per_action_in_order(self, ready):
        results = host.dispatch(
            ready,
            [
                Action("QP_UpsertWorkItem", {"WorkItem": r.work_item("wi-a", 1)}),
                Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-a"}),
                Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-missing"}),
            ],
        )
        assert [res["Success"] for res in results] == [True, True, False]
        assert results[1]["WorkItem"]["WorkItemHash"] == "wi-a"

    # --- work items ---------------------------------------------------------------------

    def test_upserted_work_item_reads_back(self, ready):
        item = r.work_item("wi-1", 1, Priority=3)
        assert self.run(ready, "QP_UpsertWorkItem", WorkItem=item)["Success"] is True
        got = self.run(ready, "QP_GetWorkItemByHash", WorkItemHash="wi-1")
        assert got["Success"] is True
        assert_row(got["WorkItem"], item)

    def test_second_upsert_updates_the_same_row(self, ready):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        again = r.work_item("wi-1", 1, Status="Complete", Priority=7, Result='{"ok": true}')
        assert self.run(ready, "QP_UpsertWorkItem", WorkItem=again)["Success"] is True
        assert_row(self.run(ready, "QP_GetWorkItemByHash", WorkItemHash="wi-1")["WorkItem"], again)
        assert self.hashes(self.run(ready, "QP_ListWorkItems", Filter={})) == ["wi-1"]

    def test_update_work_item_patches_only_the_given_columns(self, ready):
        item = r.work_item("wi-1", 1)
        self.run(ready, "QP_UpsertWorkItem", WorkItem=item)
        patch = {"Status": "Dispatched", "AssignedBeaconID": "bcn-w1", "DispatchedAt": r.timestamp(5), "AttemptNumber": 1}
        assert self.run(ready, "QP_UpdateWorkItem", WorkItemHash="wi-1", Patch=patch)["Success"] is True
        assert_row(self.run(ready, "QP_GetWorkItemByHash", WorkItemHash="wi-1")["WorkItem"], {**item, **patch})

    def test_missing_work_item_is_not_found(self, ready):
        got = self.run(ready, "QP_GetWorkItemByHash", WorkItemHash="wi-nope")
        assert got["Success"] is False
        assert not got.get("WorkItem")

    # --- events and attempts ------------------------------------------------------------

    def test_events_read_back_in_seq_order_for_their_work_item_only(self, ready):
        self.upsert_items(ready, [r.work_item("wi-1", 1), r.work_item("wi-2", 2)])
        events = [r.event("wi-1", 3), r.event("wi-2", 4), r.event("wi-1", 1), r.event("wi-1", 2, EventType="dispatched")]
        self.run_all(ready, [("QP_AppendEvent", {"Event": e}) for e in events])
        got = self.run(ready, "QP_GetEvents", WorkItemHash="wi-1", Limit=0)
        assert [e["EventGUID"] for e in got["Events"]] == [r.event_guid(1), r.event_guid(2), r.event_guid(3)]
        assert_row(got["Events"][1], events[3])
        limited = self.run(ready, "QP_GetEvents", WorkItemHash="wi-1", Limit=2)
        assert [e["Seq"] for e in limited["Events"]] == [1, 2]

    def test_replayed_event_is_already_present_and_unchanged(self, ready):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        first = self.run(ready, "QP_AppendEvent", Event=r.event("wi-1", 1))
        assert first["Success"] is True and not first.get("AlreadyPresent")
        replay = self.run(ready, "QP_AppendEvent", Event=r.event("wi-1", 1, EventType="changed"))
        assert replay["Success"] is True and replay.get("AlreadyPresent") is True
        got = self.run(ready, "QP_GetEvents", WorkItemHash="wi-1", Limit=0)["Events"]
        assert len(got) == 1 and got[0]["EventType"] == "enqueued"

    def test_replayed_attempt_is_already_present(self, ready):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        assert not self.run(ready, "QP_InsertAttempt", Attempt=r.attempt("wi-1", 1)).get("AlreadyPresent")
        replay = self.run(ready, "QP_InsertAttempt", Attempt=r.attempt("wi-1", 1, BeaconID="other"))
        assert replay["Success"] is True and replay.get("AlreadyPresent") is True
        assert not self.run(ready, "QP_InsertAttempt", Attempt=r.attempt("wi-1", 2)).get("AlreadyPresent")
        stored = self.stored_attempts(ready, "wi-1")
        if stored is not None:
            assert sorted(int(a["AttemptNumber"]) for a in stored) == [1, 2]
            assert {a["BeaconID"] for a in stored} == {"bcn-worker-1"}

    def test_attempt_outcome_updates_the_attempt(self, ready):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        self.run(ready, "QP_InsertAttempt", Attempt=r.attempt("wi-1", 1))
        patch = {"Outcome": "Error", "EndedAt": r.timestamp(9), "Error": "exit 2"}
        done = self.run(ready, "QP_UpdateAttemptOutcome", WorkItemHash="wi-1", AttemptNumber=1, Patch=patch)
        assert done["Success"] is True
        stored = self.stored_attempts(ready, "wi-1")
        if stored is not None:
            assert_row(stored[0], {**r.attempt("wi-1", 1), **patch})

    # --- lists --------------------------------------------------------------------------

    def _filter_fixture(self, ready) -> None:
        self.upsert_items(
            ready,
            [
                r.work_item("wi-1", 4, Status="Pending", RunID="run-a", Capability="Shell", OperationHash="op-x"),
                r.work_item("wi-2", 2, Status="Running", RunID="run-a", Capability="Shell", AssignedBeaconID="bcn-1"),
                r.work_item("wi-3", 3, Status="Complete", RunID="run-b", Capability="MeadowProxy", AssignedBeaconID="bcn-1"),
                r.work_item("wi-4", 1, Status="Error", RunID="run-b", Capability="Shell", Priority=9, OperationHash="op-x"),
            ],
        )

    def test_list_default_order_is_enqueued_at_ascending(self, ready):
        self._filter_fixture(ready)
        assert self.hashes(self.run(ready, "QP_ListWorkItems", Filter={})) == ["wi-4", "wi-2", "wi-3", "wi-1"]
        assert self.hashes(self.run(ready, "QP_ListWorkItems")) == ["wi-4", "wi-2", "wi-3", "wi-1"], "no Filter at all"

    @pytest.mark.parametrize(
        "flt, expected",
        [
            ({"Status": "Running"}, ["wi-2"]),
            ({"Status": ["Pending", "Error"]}, ["wi-4", "wi-1"]),
            ({"RunID": "run-b"}, ["wi-4", "wi-3"]),
            ({"Capability": "MeadowProxy"}, ["wi-3"]),
            ({"AssignedBeaconID": "bcn-1"}, ["wi-2", "wi-3"]),
            ({"OperationHash": "op-x"}, ["wi-4", "wi-1"]),
            ({"AssignedBeaconID": "bcn-1", "Status": "Complete"}, ["wi-3"]),
            ({"Status": "Canceled"}, []),
            ({"OrderBy": "Priority DESC", "Status": ["Error", "Running"]}, ["wi-4", "wi-2"]),
            ({"OrderBy": "EnqueuedAt DESC"}, ["wi-1", "wi-3", "wi-2", "wi-4"]),
            ({"OrderBy": "WorkItemHash ASC", "Limit": 2}, ["wi-1", "wi-2"]),
            ({"OrderBy": "-EnqueuedAt"}, ["wi-1", "wi-3", "wi-2", "wi-4"]),
            ({"OrderBy": "RunID DESC, EnqueuedAt ASC"}, ["wi-4", "wi-3", "wi-2", "wi-1"]),
            ({"OrderBy": "Capability, -EnqueuedAt"}, ["wi-3", "wi-1", "wi-2", "wi-4"]),
        ],
    )
    def test_list_filters_and_ordering(self, ready, flt, expected):
        self._filter_fixture(ready)
        assert self.hashes(self.run(ready, "QP_ListWorkItems", Filter=flt)) == expected

    def test_list_limit_defaults_to_500_and_pages_past_it(self, ready):
        n = self.paging_rows
        self.upsert_items(ready, [r.work_item(f"wi-{i:04d}", i) for i in range(n)])
        default = self.hashes(self.run(ready, "QP_ListWorkItems", Filter={}))
        assert default == [f"wi-{i:04d}" for i in range(500)]
        assert len(self.hashes(self.run(ready, "QP_ListWorkItems", Filter={"Limit": 0}))) == 500
        everything = self.hashes(self.run(ready, "QP_ListWorkItems", Filter={"Limit": 5000}))
        assert everything == [f"wi-{i:04d}" for i in range(n)]
        clamped = self.hashes(self.run(ready, "QP_ListWorkItems", Filter={"Limit": 100000}))
        assert len(clamped) == n
        assert len(self.hashes(self.run(ready, "QP_ListWorkItems", Filter={"Limit": -5}))) == 1
        tail = self.hashes(self.run(ready, "QP_ListWorkItems", Filter={"OrderBy": "EnqueuedAt DESC", "Limit": n - 500}))
        assert sorted(default + tail) == everything

    def test_events_limit_defaults_to_500(self, ready):
        n = self.paging_rows
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        self.run_all(ready, [("QP_AppendEvent", {"Event": r.event("wi-1", i + 1)}) for i in range(n)])
        assert len(self.run(ready, "QP_GetEvents", WorkItemHash="wi-1", Limit=0)["Events"]) == 500
        assert len(self.run(ready, "QP_GetEvents", WorkItemHash="wi-1", Limit=5000)["Events"]) == n

    # --- manifests ----------------------------------------------------------------------

    def test_manifest_upsert_get_and_update(self, ready):
        running = r.manifest("run-1", 1)
        assert self.run(ready, "MS_UpsertManifest", Manifest=running)["Success"] is True
        assert_row(self.run(ready, "MS_GetManifest", RunHash="run-1")["Manifest"], running)
        done = r.manifest("run-1", 1, Status="Complete", StopTime=r.timestamp(60), ElapsedMs=59000)
        assert self.run(ready, "MS_UpsertManifest", Manifest=done)["Success"] is True
        assert_row(self.run(ready, "MS_GetManifest", RunHash="run-1")["Manifest"], done)
        assert self.hashes(self.run(ready, "MS_ListManifests", Filter={}), "Manifests", "Hash") == ["run-1"]

    def test_missing_manifest_is_not_found(self, ready):
        got = self.run(ready, "MS_GetManifest", RunHash="run-nope")
        assert got["Success"] is False and not got.get("Manifest")

    def test_manifest_list_filters(self, ready):
        rows = [
            r.manifest("run-1", 1, OperationHash="op-a", Status="Complete"),
            r.manifest("run-2", 2, OperationHash="op-b", Status="Running"),
            r.manifest("run-3", 3, OperationHash="op-a", Status="Error"),
        ]
        self.run_all(ready, [("MS_UpsertManifest", {"Manifest": m}) for m in rows])

        def listed(**flt):
            return sorted(self.hashes(self.run(ready, "MS_ListManifests", Filter=flt), "Manifests", "Hash"))

        assert listed() == ["run-1", "run-2", "run-3"]
        assert listed(OperationHash="op-a") == ["run-1", "run-3"]
        assert listed(Status="Running") == ["run-2"]
        assert listed(Status=["Complete", "Error"]) == ["run-1", "run-3"]
        assert len(listed(Limit=2)) == 2
        ordered = self.run(ready, "MS_ListManifests", Filter={"OrderBy": "StartTime DESC"})
        assert self.hashes(ordered, "Manifests", "Hash") == ["run-3", "run-2", "run-1"]

    def test_manifest_list_defaults_to_100_newest_first(self, ready):
        n = 120
        self.run_all(ready, [("MS_UpsertManifest", {"Manifest": r.manifest(f"run-{i:03d}", i)}) for i in range(n)])
        newest_first = [f"run-{i:03d}" for i in reversed(range(n))]
        for flt in ({}, {"Limit": 0}):
            assert self.hashes(self.run(ready, "MS_ListManifests", Filter=flt), "Manifests", "Hash") == newest_first[:100], (
                f"Filter {flt}: manifests default to StartTime DESC and Limit 100"
            )
        everything = self.run(ready, "MS_ListManifests", Filter={"Limit": 5000})
        assert self.hashes(everything, "Manifests", "Hash") == newest_first
        oldest = self.run(ready, "MS_ListManifests", Filter={"OrderBy": "StartTime ASC, Hash DESC", "Limit": 3})
        assert self.hashes(oldest, "Manifests", "Hash") == ["run-000", "run-001", "run-002"]

    def test_removed_manifest_is_soft_deleted_and_can_come_back(self, ready):
        self.run_all(ready, [("MS_UpsertManifest", {"Manifest": r.manifest(h, i)}) for i, h in enumerate(["run-1", "run-2"])])
        assert self.run(ready, "MS_RemoveManifest", RunHash="run-1")["Success"] is True
        assert self.run(ready, "MS_GetManifest", RunHash="run-1")["Success"] is False
        assert self.hashes(self.run(ready, "MS_ListManifests", Filter={}), "Manifests", "Hash") == ["run-2"]
        assert self.run(ready, "MS_RemoveManifest", RunHash="run-1")["Success"] is True, "a replayed removal must succeed"
        back = r.manifest("run-1", 5, Status="Complete")
        assert self.run(ready, "MS_UpsertManifest", Manifest=back)["Success"] is True
        assert_row(self.run(ready, "MS_GetManifest", RunHash="run-1")["Manifest"], back)
        listed = self.hashes(self.run(ready, "MS_ListManifests", Filter={}), "Manifests", "Hash")
        assert sorted(listed) == ["run-1", "run-2"]

    def test_removing_an_unknown_manifest_succeeds(self, ready):
        assert self.run(ready, "MS_RemoveManifest", RunHash="run-never")["Success"] is True

    # --- replay -------------------------------------------------------------------------

    def history(self) -> list[tuple[str, dict]]:
        """A small but complete history of both bridges, in journal order."""
        return [
            ("QP_UpsertWorkItem", {"WorkItem": r.work_item("wi-1", 1)}),
            ("QP_AppendEvent", {"Event": r.event("wi-1", 1)}),
            ("QP_UpsertWorkItem", {"WorkItem": r.work_item("wi-2", 2)}),
            ("QP_AppendEvent", {"Event": r.event("wi-2", 2)}),
            ("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": {"Status": "Dispatched", "AssignedBeaconID": "bcn-1"}}),
            ("QP_InsertAttempt", {"Attempt": r.attempt("wi-1", 1)}),
            ("QP_AppendEvent", {"Event": r.event("wi-1", 3, EventType="dispatched", ToStatus="Dispatched")}),
            ("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": {"Status": "Complete", "CompletedAt": r.timestamp(9)}}),
            ("QP_UpdateAttemptOutcome", {"WorkItemHash": "wi-1", "AttemptNumber": 1, "Patch": {"Outcome": "Complete", "EndedAt": r.timestamp(9)}}),
            ("MS_UpsertManifest", {"Manifest": r.manifest("run-1", 1)}),
            ("MS_UpsertManifest", {"Manifest": r.manifest("run-2", 2)}),
            ("MS_UpsertManifest", {"Manifest": r.manifest("run-1", 1, Status="Complete", StopTime=r.timestamp(30))}),
            ("MS_RemoveManifest", {"RunHash": "run-2"}),
        ]

    def snapshot(self, backend) -> dict:
        """Everything the read actions show about the history's rows."""
        items = self.run(backend, "QP_ListWorkItems", Filter={"Limit": 5000})["WorkItems"]
        return {
            "WorkItems": items,
            "Events": {i["WorkItemHash"]: self.run(backend, "QP_GetEvents", WorkItemHash=i["WorkItemHash"], Limit=5000)["Events"] for i in items},
            "Attempts": {i["WorkItemHash"]: self.stored_attempts(backend, i["WorkItemHash"]) for i in items},
            "Manifests": self.run(backend, "MS_ListManifests", Filter={"Limit": 5000, "OrderBy": "Hash ASC"})["Manifests"],
        }

    def assert_history_applied(self, backend) -> None:
        """The reads show exactly the end state of :meth:`history`."""
        snap = self.snapshot(backend)
        assert [i["WorkItemHash"] for i in snap["WorkItems"]] == ["wi-1", "wi-2"]
        assert_row(snap["WorkItems"][0], {"Status": "Complete", "AssignedBeaconID": "bcn-1", "RunID": "run-1"})
        assert_row(snap["WorkItems"][1], {"Status": "Pending"})
        assert [e["EventGUID"] for e in snap["Events"]["wi-1"]] == [r.event_guid(1), r.event_guid(3)]
        assert [e["EventGUID"] for e in snap["Events"]["wi-2"]] == [r.event_guid(2)]
        if snap["Attempts"]["wi-1"] is not None:
            assert [a["Outcome"] for a in snap["Attempts"]["wi-1"]] == ["Complete"]
        assert [m["Hash"] for m in snap["Manifests"]] == ["run-1"]
        assert_row(snap["Manifests"][0], {"Status": "Complete", "StopTime": r.timestamp(30)})

    def test_replaying_a_whole_history_changes_nothing(self, ready):
        self.run_all(ready, self.history())
        before = self.snapshot(ready)
        self.assert_history_applied(ready)
        replay = self.run_all(ready, self.history())
        appended = [res for (name, _), res in zip(self.history(), replay) if name in ("QP_AppendEvent", "QP_InsertAttempt")]
        assert all(res.get("AlreadyPresent") for res in appended), appended
        assert self.snapshot(ready) == before

    # --- bad input ----------------------------------------------------------------------

    @pytest.mark.parametrize(
        "name, settings",
        [
            ("QP_UpsertWorkItem", {"WorkItem": {"Status": "Pending"}}),
            ("QP_UpsertWorkItem", {}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": "wi-1", "EventType": "enqueued"}}),
            ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-1"}}),
            ("MS_UpsertManifest", {"Manifest": {"Status": "Running"}}),
        ],
    )
    def test_missing_natural_key_is_rejected_and_writes_nothing(self, ready, name, settings):
        outcome = self.attempt_outcome(lambda: self.run(ready, name, **settings))
        assert is_rejected(outcome), f"{name} without its natural key answered {outcome!r}"
        assert self.run(ready, "QP_ListWorkItems", Filter={})["WorkItems"] == []
        assert self.run(ready, "MS_ListManifests", Filter={})["Manifests"] == []

    @pytest.mark.parametrize(
        "name, settings",
        [
            ("QP_UpsertWorkItem", {"WorkItem": "wi-1"}),
            ("QP_AppendEvent", {"Event": {"EventGUID": ["g"], "WorkItemHash": "wi-1", "EventType": "enqueued"}}),
            ("MS_RemoveManifest", {"RunHash": ["run-1"]}),
            ("QP_GetWorkItemByHash", {}),
            ("QP_GetEvents", {}),
        ],
    )
    def test_settings_of_the_wrong_shape_are_rejected_and_write_nothing(self, ready, name, settings):
        outcome = self.attempt_outcome(lambda: self.run(ready, name, **settings))
        assert is_rejected(outcome), f"{name} {settings} answered {outcome!r}"
        assert self.run(ready, "QP_ListWorkItems", Filter={})["WorkItems"] == []

    @pytest.mark.parametrize("name", ["QP_DropEverything", "MS_Nope"])
    def test_unknown_action_is_rejected(self, ready, name):
        outcome = self.attempt_outcome(lambda: self.run(ready, name, WorkItemHash="wi-1"))
        assert is_rejected(outcome), f"{name} answered {outcome!r}"

    @pytest.mark.parametrize("flt", [{"OrderBy": "NoSuchColumn DESC"}, {"OrderBy": "Status; DROP TABLE x"}, {"Limit": "many"}])
    def test_bad_list_filter_is_rejected(self, ready, flt):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        outcome = self.attempt_outcome(lambda: self.run(ready, "QP_ListWorkItems", Filter=flt))
        assert is_rejected(outcome), f"Filter {flt} answered {outcome!r}"

    def test_update_of_a_missing_row_succeeds_and_creates_nothing(self, ready):
        # The journal keeps updates of rows it never saw created; failing them would stop
        # every later flush at that record, so they must be harmless no-ops.
        patched = self.run(ready, "QP_UpdateWorkItem", WorkItemHash="wi-ghost", Patch={"Status": "Running"})
        assert patched["Success"] is True, patched
        assert self.run(ready, "QP_GetWorkItemByHash", WorkItemHash="wi-ghost")["Success"] is False
        assert self.run(ready, "QP_ListWorkItems", Filter={})["WorkItems"] == []
        outcome = self.run(ready, "QP_UpdateAttemptOutcome", WorkItemHash="wi-ghost", AttemptNumber=1, Patch={"Outcome": "Complete"})
        assert outcome["Success"] is True, outcome
        assert self.stored_attempts(ready, "wi-ghost") in (None, [])

    # --- lookup -------------------------------------------------------------------------

    def test_lookup_resolves_natural_keys_when_implemented(self, ready):
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-1", 1))
        self.run(ready, "QP_UpsertWorkItem", WorkItem=r.work_item("wi-2", 2))
        first = host.lookup(ready, "UVQueueWorkItem", {"WorkItemHash": "wi-1"})
        if first is None:
            pytest.skip("this backend upserts natively and does not implement uvctl_lookup")
        assert host.lookup(ready, "UVQueueWorkItem", {"WorkItemHash": "wi-1"}) == first
        assert host.lookup(ready, "UVQueueWorkItem", {"WorkItemHash": "wi-2"}) not in (None, first)
        assert host.lookup(ready, "UVQueueWorkItem", {"WorkItemHash": "wi-none"}) is None

    # --- flush --------------------------------------------------------------------------

    def _journal_history(self):
        journal_mod = pytest.importorskip("uvctl.journal", reason="uvctl.journal is not available")
        with journal_mod.Journal.open() as journal:
            journal.record_many([journal_mod.normalize_action(name, settings) for name, settings in self.history()])
            return {bridge: journal.last_seq(bridge) for bridge in (QUEUE, MANIFEST)}

    def _flush(self, **kwargs):
        from uvctl import flush

        try:
            return flush.flush(**kwargs)
        except UvctlError as exc:  # a stopped flush may raise or report; both are fine
            return exc

    def test_flush_resumes_after_a_backend_failure(self, ready, uvctl_fault):
        pytest.importorskip("uvctl.flush", reason="uvctl.flush is not available")
        assignment = pytest.importorskip("uvctl.assignment", reason="uvctl.assignment is not available")
        from uvctl.flush import HighWaterMarks

        last = self._journal_history()
        assignment.assign(ready.name, ready.options)
        uvctl_fault.fail_after(2, bridge=QUEUE)
        self._flush(bridges=(QUEUE, MANIFEST), batch_size=2)
        assert uvctl_fault.failures >= 1, "the injected failure never fired: did flush dispatch?"
        stopped_at = HighWaterMarks().get(QUEUE, ready.identity)
        assert 0 < stopped_at < last[QUEUE], f"the mark should stop at the last acknowledged batch, not {stopped_at}"

        uvctl_fault.heal()
        self._flush(bridges=(QUEUE, MANIFEST), batch_size=2)
        marks = HighWaterMarks()
        assert (marks.get(QUEUE, ready.identity), marks.get(MANIFEST, ready.identity)) == (last[QUEUE], last[MANIFEST])
        self.assert_history_applied(ready)
        self.assert_equal_to_journal(ready)

    def assert_equal_to_journal(self, backend) -> None:
        """Every row the journal holds reads back from the backend with the same values.

        Compared on the columns both sides return (a backend may leave out columns it was
        never given, and row IDs and timestamps it stamps itself differ by nature).
        """
        from uvctl.journal import Journal

        own = {"CreateDate", "UpdateDate", "Deleted"}
        snap = self.snapshot(backend)
        with Journal.open() as journal:
            expected = {
                "WorkItems": journal.list_work_items({"Limit": 5000}),
                "Events": {i["WorkItemHash"]: journal.get_events(i["WorkItemHash"], 5000) for i in snap["WorkItems"]},
                "Manifests": journal.list_manifests({"Limit": 5000, "OrderBy": "Hash ASC"}),
            }
        assert [i["WorkItemHash"] for i in snap["WorkItems"]] == [i["WorkItemHash"] for i in expected["WorkItems"]]
        assert [m["Hash"] for m in snap["Manifests"]] == [m["Hash"] for m in expected["Manifests"]]
        pairs = list(zip(snap["WorkItems"], expected["WorkItems"])) + list(zip(snap["Manifests"], expected["Manifests"]))
        for item in snap["WorkItems"]:
            got, want = snap["Events"][item["WorkItemHash"]], expected["Events"][item["WorkItemHash"]]
            assert [e["EventGUID"] for e in got] == [e["EventGUID"] for e in want]
            pairs += list(zip(got, want))
        for got, want in pairs:
            common = {k: v for k, v in want.items() if k in got and k not in own and not k.startswith("ID")}
            assert_row(got, common)

    def test_flush_replay_twice_leaves_the_backend_unchanged(self, ready):
        pytest.importorskip("uvctl.flush", reason="uvctl.flush is not available")
        assignment = pytest.importorskip("uvctl.assignment", reason="uvctl.assignment is not available")

        self._journal_history()
        assignment.assign(ready.name, ready.options)
        self._flush(bridges=(QUEUE, MANIFEST))
        before = self.snapshot(ready)
        self.assert_history_applied(ready)
        report = self._flush(bridges=(QUEUE, MANIFEST), replay=True)
        assert not isinstance(report, Exception), report
        assert self.snapshot(ready) == before
