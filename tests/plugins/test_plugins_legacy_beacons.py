"""The legacy_beacons backend against a protocol-faithful coordinator and legacy beacons."""

from __future__ import annotations

import json

import pytest
from uvctl_legacy_beacons import translate

from uvctl import host
from uvctl.actions import Action
from uvctl.errors import BackendUnavailable
from uvctl.testing import BackendConformance, records


def legacy_backend(url: str, beacon: str = "persist-1", **options):
    return host.open_backend("legacy_beacons", {"Url": url, "Beacon": beacon, **options})


@pytest.fixture
def beacon(coordinator):
    return coordinator.add_beacon("persist-1")


@pytest.fixture
def backend(coordinator):
    """A legacy_beacons handle routed to the beacon ``persist-1`` (add it with ``beacon``)."""
    handle = legacy_backend(coordinator.url)
    yield handle
    host.close(handle)


class TestLegacyBeaconsConformance(BackendConformance):
    @pytest.fixture
    def backend(self, coordinator):
        coordinator.add_beacon("persist-1")
        handle = legacy_backend(coordinator.url, TimeoutMs=2000)
        yield handle
        host.close(handle)

    @pytest.fixture(autouse=True)
    def _remember(self, coordinator):
        self.coordinator = coordinator

    def stored_attempts(self, backend, work_item_hash):
        store = self.coordinator.beacons["persist-1"].store
        return [row for (h, _), row in sorted(store.attempts.items()) if h == work_item_hash]


class TestLegacyBeaconsReportingDuplicatesAsErrors(TestLegacyBeaconsConformance):
    """The same kit against beacons that answer a duplicate with a UNIQUE-constraint error."""

    @pytest.fixture
    def backend(self, coordinator):
        coordinator.add_beacon("persist-1", duplicates_as_errors=True)
        handle = legacy_backend(coordinator.url, TimeoutMs=2000)
        yield handle
        host.close(handle)


def test_every_action_goes_to_the_named_beacon_with_upstreams_settings(coordinator, beacon, backend):
    item = records.work_item("wi-1", 1)
    actions = [
        Action("QP_UpsertWorkItem", {"WorkItem": item}),
        Action("QP_UpdateWorkItem", {"WorkItemHash": "wi-1", "Patch": {"Status": "Running"}}),
        Action("QP_AppendEvent", {"Event": records.event("wi-1", 1)}),
        Action("QP_InsertAttempt", {"Attempt": records.attempt("wi-1", 1)}),
        Action("QP_UpdateAttemptOutcome", {"WorkItemHash": "wi-1", "AttemptNumber": 1, "Patch": {"Outcome": "Complete"}}),
        Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"}),
        Action("QP_ListWorkItems", {}),
        Action("QP_GetEvents", {"WorkItemHash": "wi-1"}),
        Action("MS_UpsertManifest", {"Manifest": records.manifest("run-1")}),
        Action("MS_GetManifest", {"RunHash": "run-1"}),
        Action("MS_ListManifests", {"Filter": {"Status": "Running"}}),
        Action("MS_RemoveManifest", {"RunHash": "run-1"}),
    ]
    results = host.dispatch(backend, actions)
    assert all(r["Success"] and r["Available"] for r in results), results
    sent = coordinator.dispatches
    assert [(d["Capability"], d["Action"]) for d in sent] == [
        ("QueuePersistence" if a.name.startswith("QP_") else "ManifestStore", a.name) for a in actions
    ]
    assert {(d["AffinityKey"], d["RequireAffinityMatch"]) for d in sent} == {("persist-1", True)}
    assert [d["Settings"] for d in sent] == [
        {"WorkItem": item},
        {"WorkItemHash": "wi-1", "Patch": {"Status": "Running"}},
        {"Event": records.event("wi-1", 1)},
        {"Attempt": records.attempt("wi-1", 1)},
        {"WorkItemHash": "wi-1", "AttemptNumber": 1, "Patch": {"Outcome": "Complete"}},
        {"WorkItemHash": "wi-1"},
        {"Filter": {}},
        {"WorkItemHash": "wi-1", "Limit": 0},
        {"Manifest": records.manifest("run-1")},
        {"RunHash": "run-1"},
        {"Filter": {"Status": "Running"}},
        {"RunHash": "run-1"},
    ]
    assert results[5]["WorkItem"]["Status"] == "Running"
    assert [m["Hash"] for m in results[10]["Manifests"]] == ["run-1"]


def test_duplicate_reported_as_a_unique_error_counts_as_already_present(coordinator, backend):
    coordinator.add_beacon("persist-1", duplicates_as_errors=True)
    event = Action("QP_AppendEvent", {"Event": records.event("wi-1", 1)})
    first, replay = host.dispatch(backend, [event, event])
    assert first == {"Available": True, "Success": True}
    assert replay["Success"] is True and replay["AlreadyPresent"] is True


def test_a_failure_the_beacon_reports_keeps_its_reason(coordinator, beacon, backend):
    (result,) = host.dispatch(backend, [Action("QP_ListWorkItems", {"Filter": {"OrderBy": "Bogus DESC"}})])
    assert result["Success"] is False and "Bogus" in result["Reason"]
    assert result["WorkItems"] == []


def test_beacon_errors_become_failed_envelopes_with_the_message(coordinator, backend):
    coordinator.add_beacon("persist-1", error="SQLITE_FULL: database or disk is full")
    (result,) = host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])
    assert result["Success"] is False
    assert "persist-1" in result["Reason"] and "disk is full" in result["Reason"]


def test_status_is_waiting_for_beacon_until_the_beacon_is_online(coordinator, backend):
    result = host.bootstrap(backend)
    assert result.state == "waiting-for-beacon"
    assert "persist-1" in result.reason
    coordinator.add_beacon("persist-1", status="Offline")
    assert host.bootstrap(backend).state == "waiting-for-beacon"
    coordinator.beacons["persist-1"].status = "Online"
    done = host.bootstrap(backend)
    assert done.state == "bootstrapped"
    assert done.details["Capabilities"] == ["QueuePersistence", "ManifestStore"]


def test_unreachable_coordinator_is_waiting_with_a_masked_reason(unused_url):
    backend = legacy_backend(unused_url.replace("http://", "http://admin:hunter2@"))
    result = host.bootstrap(backend)
    assert result.state == "waiting-for-beacon"
    assert "hunter2" not in result.reason and "hunter2" not in backend.identity


def test_beacon_without_a_persistence_capability_is_an_error(coordinator, backend):
    coordinator.add_beacon("persist-1", capabilities=["MeadowProxy", "Shell"])
    result = host.bootstrap(backend)
    assert result.state == "error"
    assert "QueuePersistence" in result.reason


def test_action_for_a_capability_the_beacon_lacks_is_refused_without_sending(coordinator, backend):
    coordinator.add_beacon("persist-1", capabilities=["QueuePersistence"])
    assert host.bootstrap(backend).state == "bootstrapped"
    (result,) = host.dispatch(backend, [Action("MS_UpsertManifest", {"Manifest": records.manifest("run-1")})])
    assert result["Success"] is False and "ManifestStore" in result["Reason"]
    assert coordinator.dispatches == []


def test_vanished_beacon_asks_for_bootstrap_and_sends_nothing(coordinator, beacon):
    backend = legacy_backend(coordinator.url)
    del coordinator.beacons["persist-1"]
    (result,) = host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])
    assert result["NeedsBootstrap"] is True and result["Success"] is False
    assert coordinator.dispatches == []


def test_a_beacon_that_never_answers_is_unavailable(coordinator, backend):
    coordinator.add_beacon("persist-1", hang=True)
    with pytest.raises(BackendUnavailable, match="persist-1"):
        host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])


def test_a_timeout_on_a_single_slot_beacon_names_the_coordinators_pitfall(coordinator, backend):
    coordinator.add_beacon("persist-1", hang=True, max_concurrent=1)  # as the coordinator then behaves (§6.1)
    with pytest.raises(BackendUnavailable, match="registered with MaxConcurrent 1.*MaxConcurrent 2 or more"):
        host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])


def test_plugins_command_labels_the_backend_legacy(cli_runner):
    text = cli_runner(["plugins"]).output
    assert "backend legacy_beacons [legacy]" in text
    rows = {row["name"]: row for row in json.loads(cli_runner(["plugins", "--json"]).output)}
    assert rows["legacy_beacons"]["backends"][0]["legacy"] is True
    assert host.backend_info("legacy_beacons").summary.startswith("(legacy)")


@pytest.mark.parametrize(
    "action, outputs, expected",
    [
        ("QP_GetWorkItemByHash", {}, {"Available": True, "Success": False, "WorkItem": None}),
        ("QP_GetWorkItemByHash", {"WorkItem": {"WorkItemHash": "a"}}, {"Available": True, "Success": True, "WorkItem": {"WorkItemHash": "a"}}),
        ("QP_ListWorkItems", {"Success": True}, {"Available": True, "Success": True, "WorkItems": []}),
        ("MS_ListManifests", {}, {"Available": True, "Success": True, "Manifests": []}),
        ("QP_UpsertWorkItem", {"Success": False, "Reason": "disk full"}, {"Available": True, "Success": False, "Reason": "disk full"}),
    ],
)
def test_outputs_are_normalized_into_envelopes(action, outputs, expected):
    assert translate.from_outputs(action, outputs) == expected


@pytest.mark.parametrize(
    ("action", "message", "duplicate"),
    [
        ("QP_InsertAttempt", "ER_DUP_ENTRY: Duplicate entry 'x' for key 'IX_UVQueueAttempt_HashNum'", True),
        ("QP_InsertAttempt", "UNIQUE constraint failed: UVQueueWorkItemAttempt.WorkItemHash, UVQueueWorkItemAttempt.AttemptNumber", True),
        ("QP_AppendEvent", 'duplicate key value violates unique constraint "ix" DETAIL: Key ("EventGUID")=(g) already exists.', True),
        # an upsert conflict is not an append-only duplicate
        ("QP_UpsertWorkItem", "ER_DUP_ENTRY: Duplicate entry 'x' for key 'WorkItemHash'", False),
        # other constraints share words with a unique violation: the record was not stored
        ("QP_AppendEvent", "SQLITE_CONSTRAINT: NOT NULL constraint failed: UVQueueWorkItemEvent.EventType", False),
        ("QP_InsertAttempt", "SQLITE_CONSTRAINT: FOREIGN KEY constraint failed", False),
        ("QP_InsertAttempt", "CHECK constraint failed: AttemptNumber > 0", False),
        # a unique violation of another column is not this record already stored
        ("QP_AppendEvent", "UNIQUE constraint failed: UVQueueWorkItemEvent.GUIDUVQueueWorkItemEvent", False),
    ],
)
def test_only_a_natural_key_violation_of_an_append_only_record_is_a_duplicate(action, message, duplicate):
    assert translate.is_duplicate(action, message) is duplicate
    assert translate.from_error(action, message, "b")["Success"] is False  # an error alone is never a success


def test_a_constraint_error_that_is_not_a_duplicate_leaves_the_records_pending(coordinator, backend):
    beacon = coordinator.add_beacon("persist-1")
    beacon.error = "SQLITE_CONSTRAINT: NOT NULL constraint failed: UVQueueWorkItemEvent.EventType"
    event = Action("QP_AppendEvent", {"Event": records.event("wi-1", 1)})
    attempt = Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "wi-1", "AttemptNumber": 1}})
    for result in host.dispatch(backend, [event, attempt]):
        assert result["Success"] is False and "NOT NULL" in result["Reason"]


def test_a_duplicate_event_the_beacon_does_not_return_stays_pending(coordinator, backend):
    beacon = coordinator.add_beacon("persist-1")
    beacon.error = "UNIQUE constraint failed: UVQueueWorkItemEvent.EventGUID"  # but nothing was ever stored
    beacon.error_actions = ("QP_AppendEvent",)
    (result,) = host.dispatch(backend, [Action("QP_AppendEvent", {"Event": records.event("wi-1", 1)})])
    assert result["Success"] is False and "stays pending" in result["Reason"]
    assert [sent[1] for sent in beacon.received] == ["QP_AppendEvent", "QP_GetEvents"]


@pytest.fixture
def unused_url():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_assign_reports_waiting_for_beacon_until_the_coordinator_lists_it(cli_runner, coordinator):
    assign = ["persistence", "assign", "--backend", "legacy_beacons", "--url", coordinator.url, "--beacon", "persist-1", "--json"]
    result = cli_runner(assign)
    assert result.exit_code == 0, result.output
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert {status[b]["State"] for b in ("Queue", "Manifest")} == {"waiting-for-beacon"}
    assert "persist-1" in status["Queue"]["LastError"]
    coordinator.add_beacon("persist-1")
    status = json.loads(cli_runner(["persistence", "status", "--json"]).output)
    assert {status[b]["State"] for b in ("Queue", "Manifest")} == {"bootstrapped"}


def test_flush_delivers_the_journal_to_the_legacy_beacon(cli_runner, coordinator, tmp_path):
    beacon = coordinator.add_beacon("persist-1")
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"Action": n, "Settings": s}) + "\n" for n, s in BackendConformance().history()))
    assert cli_runner(["journal", "import", str(history)]).exit_code == 0
    assigned = cli_runner(["persistence", "assign", "--backend", "legacy_beacons", "--url", coordinator.url, "--beacon", "persist-1"])
    assert assigned.exit_code == 0, assigned.output
    flushed = cli_runner(["flush", "--json"])
    assert flushed.exit_code == 0, flushed.output
    assert {h: row["Status"] for h, row in beacon.store.work_items.items()} == {"wi-1": "Complete", "wi-2": "Pending"}
    assert sorted(h for h, m in beacon.store.manifests.items() if not m["Deleted"]) == ["run-1"]
    assert {d["AffinityKey"] for d in coordinator.dispatches} == {"persist-1"}


def test_help_labels_the_backend_legacy(cli_runner):
    text = cli_runner(["persistence", "assign", "--help"]).output
    assert "(legacy)" in text


def test_bad_timeout_is_one_clear_line(cli_runner, coordinator):
    result = cli_runner(["persistence", "assign", "--backend", "legacy_beacons", "--url", coordinator.url,
                         "--beacon", "persist-1", "--timeout-ms", "soon"])
    assert result.exit_code == 2
    assert "--timeout-ms" in result.output and "Traceback" not in result.output


def test_writes_go_through_to_the_beacon_as_they_happen(cli_runner, coordinator):
    from uvctl.bridge import QueueBridge

    beacon = coordinator.add_beacon("persist-1")
    assigned = cli_runner(["persistence", "assign", "--backend", "legacy_beacons", "--url", coordinator.url, "--beacon", "persist-1"])
    assert assigned.exit_code == 0, assigned.output
    result = QueueBridge().upsert_work_item(records.work_item("wi-live", 1))
    assert result["Success"] is True and not result.get("Pending")
    assert beacon.store.work_items["wi-live"]["Status"] == "Pending"
