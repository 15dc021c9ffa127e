"""The meadowproxy backend at the hook level, direct transport, against a real meadow server."""

import pytest

from uvctl import host
from uvctl.actions import Action
from uvctl.errors import BackendUnavailable

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)


class Recorder:
    """Wraps a backend's transport and records every request it sends."""

    def __init__(self, inner):
        self.inner, self.sent = inner, []

    def request(self, method, path, body=None):
        self.sent.append((method, path))
        return self.inner.request(method, path, body)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def sent(direct_backend):
    recorder = Recorder(direct_backend.state["transport"])
    direct_backend.state["transport"] = recorder
    return recorder.sent


def work_item(hash_, **extra):
    return Action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": hash_, "Status": "Pending", **extra}})


def event(guid, hash_="w1", seq=1):
    return Action("QP_AppendEvent", {"Event": {"EventGUID": guid, "WorkItemHash": hash_, "EventType": "enqueued", "Seq": seq}})


def run(backend, *actions):
    return host.dispatch(backend, list(actions))


def test_every_action_round_trips(direct_backend, db_rows):
    answers = run(
        direct_backend,
        work_item("w1", Settings='{"a":1}', Priority=5),
        Action("QP_UpdateWorkItem", {"WorkItemHash": "w1", "Patch": {"Status": "Running", "Result": ""}}),
        event("g1"), event("g2", seq=2),
        Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "w1", "AttemptNumber": 1, "Outcome": "Dispatched"}}),
        Action("QP_UpdateAttemptOutcome", {"WorkItemHash": "w1", "AttemptNumber": 1, "Patch": {"Outcome": "Complete"}}),
        Action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Waiting", "Live": True}}),
    )
    assert all(a["Success"] for a in answers), answers
    got = run(
        direct_backend,
        Action("QP_GetWorkItemByHash", {"WorkItemHash": "w1"}),
        Action("QP_ListWorkItems", {"Filter": {"Status": ["Running"]}}),
        Action("QP_GetEvents", {"WorkItemHash": "w1", "Limit": 0}),
        Action("MS_GetManifest", {"RunHash": "run-1"}),
        Action("MS_ListManifests", {"Filter": {}}),
    )
    assert got[0]["WorkItem"]["Status"] == "Running" and got[0]["WorkItem"]["Priority"] == 5
    assert got[0]["WorkItem"]["Settings"] == '{"a":1}'
    assert [w["WorkItemHash"] for w in got[1]["WorkItems"]] == ["w1"]
    assert [e["EventGUID"] for e in got[2]["Events"]] == ["g1", "g2"]
    assert got[3]["Manifest"]["Status"] == "Waiting" and got[3]["Manifest"]["Live"] is True
    assert [m["Hash"] for m in got[4]["Manifests"]] == ["run-1"]
    assert db_rows("UVQueueWorkItemAttempt")[0]["Outcome"] == "Complete"

    # the terminal manifest lands (a real upsert), then removal is a soft delete
    assert run(direct_backend, Action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Complete"}}))[0]["Success"]
    removed = run(direct_backend, Action("MS_RemoveManifest", {"RunHash": "run-1"}), Action("MS_GetManifest", {"RunHash": "run-1"}))
    assert removed[0]["Success"] and removed[1]["Success"] is False and removed[1]["Manifest"] is None
    row = db_rows("UVManifest")[0]
    assert (row["Status"], row["Deleted"]) == ("Complete", 1)
    again = run(direct_backend, Action("MS_RemoveManifest", {"RunHash": "run-1"}))
    assert again[0] == {"Available": True, "Success": True, "AlreadyAbsent": True}
    # re-upserting a removed manifest brings it back instead of failing on its unique Hash
    assert run(direct_backend, Action("MS_UpsertManifest", {"Manifest": {"Hash": "run-1", "Status": "Again"}}))[0]["Success"]
    assert [(r["Status"], r["Deleted"]) for r in db_rows("UVManifest")] == [("Again", 0)]


def test_duplicate_event_guid_and_attempt_are_already_present(direct_backend, db_rows):
    first = run(direct_backend, event("dup"))
    second = run(direct_backend, event("dup"))
    assert first[0] == {"Available": True, "Success": True}
    assert second[0] == {"Available": True, "Success": True, "AlreadyPresent": True}
    attempt = Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "w1", "AttemptNumber": 1}})
    assert run(direct_backend, attempt, attempt) == [
        {"Available": True, "Success": True},
        {"Available": True, "Success": True, "AlreadyPresent": True},
    ]
    assert len(db_rows("UVQueueWorkItemEvent")) == 1 and len(db_rows("UVQueueWorkItemAttempt")) == 1


def test_duplicate_work_item_upsert_updates_instead_of_failing(direct_backend, db_rows):
    assert run(direct_backend, work_item("w1", Priority=1))[0]["Success"]
    other = host.open_backend("meadowproxy", dict(direct_backend.options))  # empty ID cache
    try:
        assert run(other, work_item("w1", Priority=9, Status="Complete"))[0]["Success"]
    finally:
        host.close(other)
    assert [(r["Priority"], r["Status"]) for r in db_rows("UVQueueWorkItem")] == [(9, "Complete")]


def test_lists_page_past_meadows_250_row_default(direct_backend):
    items = [work_item(f"w{i:04d}", EnqueuedAt=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z") for i in range(600)]
    assert all(a["Success"] for a in run(direct_backend, *items))
    listed = run(direct_backend, Action("QP_ListWorkItems", {"Filter": {"Limit": 5000}}))[0]["WorkItems"]
    assert [w["WorkItemHash"] for w in listed] == [f"w{i:04d}" for i in range(600)]
    newest = run(direct_backend, Action("QP_ListWorkItems", {"Filter": {"Limit": 300, "OrderBy": "EnqueuedAt DESC"}}))
    assert [w["WorkItemHash"] for w in newest[0]["WorkItems"]] == [f"w{i:04d}" for i in range(599, 299, -1)]
    events = [event(f"g{i}", "big", seq=i) for i in range(1, 401)]
    assert all(a["Success"] for a in run(direct_backend, *events))
    got = run(direct_backend, Action("QP_GetEvents", {"WorkItemHash": "big", "Limit": 400}))[0]["Events"]
    assert [e["Seq"] for e in got] == list(range(1, 401))


@pytest.mark.parametrize("hash_", ["a/b", "a b", "100%", "a+b", "Üñí€ode", "a,b;c&d=e", "q?x#y"])
def test_hashes_with_special_characters_round_trip(direct_backend, hash_):
    answers = run(
        direct_backend,
        work_item(hash_),
        event(f"e-{hash_}", hash_),
        Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": hash_, "AttemptNumber": 1}}),
    )
    assert all(a["Success"] for a in answers), answers
    other = host.open_backend("meadowproxy", dict(direct_backend.options))  # forces real lookups
    try:
        got = run(
            other,
            Action("QP_UpdateWorkItem", {"WorkItemHash": hash_, "Patch": {"Status": "Done"}}),
            Action("QP_UpdateAttemptOutcome", {"WorkItemHash": hash_, "AttemptNumber": 1, "Patch": {"Outcome": "Complete"}}),
            Action("QP_GetWorkItemByHash", {"WorkItemHash": hash_}),
            Action("QP_GetEvents", {"WorkItemHash": hash_}),
        )
    finally:
        host.close(other)
    assert got[0]["Success"] and got[1]["Success"], got
    assert got[2]["WorkItem"]["WorkItemHash"] == hash_ and got[2]["WorkItem"]["Status"] == "Done"
    assert [e["EventGUID"] for e in got[3]["Events"]] == [f"e-{hash_}"]


def test_tilde_is_refused_before_any_request(direct_backend, sent, db_rows):
    answers = run(
        direct_backend,
        work_item("a~b"),
        Action("QP_UpdateWorkItem", {"WorkItemHash": "x~y", "Patch": {"Status": "Done"}}),
        Action("QP_GetWorkItemByHash", {"WorkItemHash": "a~b"}),
    )
    assert sent == []
    assert all(not a["Success"] and "contains '~'" in a["Reason"] for a in answers)
    assert db_rows("UVQueueWorkItem") == []


def test_updates_cost_one_round_trip_once_the_id_is_known(direct_backend, sent):
    run(direct_backend, work_item("w1"))
    sent.clear()
    for status in ("Dispatched", "Running", "Complete"):
        assert run(direct_backend, Action("QP_UpdateWorkItem", {"WorkItemHash": "w1", "Patch": {"Status": status}}))[0]["Success"]
    assert [m for m, _ in sent] == ["PUT", "PUT", "PUT"]


def test_a_flush_batch_uses_bulk_create_and_folds_updates(direct_backend, sent, db_rows):
    batch = []
    for i in range(50):
        batch += [work_item(f"w{i}"), event(f"g{i}", f"w{i}"),
                  Action("QP_UpdateWorkItem", {"WorkItemHash": f"w{i}", "Patch": {"Status": "Complete"}})]
    answers = run(direct_backend, *batch)
    assert all(a["Success"] for a in answers)
    assert sent == [("POST", "/1.0/uv-test-persistence/UVQueueWorkItems"),
                    ("POST", "/1.0/uv-test-persistence/UVQueueWorkItemEvents")]
    assert {r["Status"] for r in db_rows("UVQueueWorkItem")} == {"Complete"}
    # replaying the same batch (a resumed flush) changes nothing and reports no failure
    replay = run(direct_backend, *batch)
    assert all(a["Success"] for a in replay)
    assert [bool(a.get("AlreadyPresent")) for a in replay[1::3]] == [True] * 50
    assert len(db_rows("UVQueueWorkItem")) == 50 and len(db_rows("UVQueueWorkItemEvent")) == 50


def test_a_missing_route_marks_the_backend_for_rebootstrap(meadow):
    backend = host.open_backend("meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": "not-served"})
    try:
        boot = host.bootstrap(backend)
        assert boot.state == "error" and "not served at /1.0/not-served/UVQueueWorkItem (404)" in boot.reason
        answers = run(backend, work_item("w1"), event("g1"))
        assert all(a["Success"] is False and a["NeedsBootstrap"] for a in answers)
        assert backend.state["needs_bootstrap"]
    finally:
        host.close(backend)


def test_a_non_json_200_is_not_reported_as_done(direct_backend):
    from uvctl_meadowproxy.transport import HttpAnswer

    class Html:
        def request(self, method, path, body=None):
            return HttpAnswer(200, "<html>proxy login</html>", {})

        def close(self):
            pass

    direct_backend.state["transport"] = Html()
    answers = run(direct_backend, work_item("w1"), work_item("w2"))
    assert [a["Success"] for a in answers] == [False, False]
    assert all(a["NeedsBootstrap"] for a in answers) and "not JSON" in answers[0]["Reason"]


def test_server_down_means_pending_and_waiting(meadow):
    backend = host.open_backend("meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash})
    meadow.stop()
    try:
        backend.state  # noqa: B018 - the handle exists before the server is gone
        boot = host.bootstrap(backend)
        assert boot.state == "waiting-for-beacon" and "cannot reach" in boot.reason
        with pytest.raises(BackendUnavailable, match="records stay pending"):
            run(backend, work_item("w1"))
    finally:
        host.close(backend)
        meadow.start()


def test_lookup_hook_resolves_natural_keys(direct_backend):
    run(direct_backend, work_item("w1"), Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "w1", "AttemptNumber": 3}}))
    other = host.open_backend("meadowproxy", dict(direct_backend.options))
    try:
        assert host.lookup(other, "UVQueueWorkItem", {"WorkItemHash": "w1"}) == 1
        assert host.lookup(other, "UVQueueWorkItemAttempt", {"WorkItemHash": "w1", "AttemptNumber": 3}) == 1
        assert host.lookup(other, "UVQueueWorkItem", {"WorkItemHash": "nope"}) is None
    finally:
        host.close(other)


def test_unknown_columns_and_server_owned_columns_are_never_sent(direct_backend, sent, db_rows):
    item = work_item("w1", Bogus="x", Deleted=True, CreateDate="1999", IDUVQueueWorkItem=77)
    assert run(direct_backend, item)[0]["Success"]
    row = db_rows("UVQueueWorkItem")[0]
    assert (row["IDUVQueueWorkItem"], row["Deleted"]) == (1, 0) and row["CreateDate"] != "1999"


def test_bulk_attempts_with_their_own_error_column_are_stored(direct_backend, db_rows):
    # UVQueueWorkItemAttempt has a column called Error: a stored row is not a failed one
    attempts = [Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": f"w{i}", "AttemptNumber": 1, "Error": f"boom {i}"}})
                for i in range(3)]
    assert run(direct_backend, *attempts) == [{"Available": True, "Success": True}] * 3
    assert [r["Error"] for r in db_rows("UVQueueWorkItemAttempt")] == ["boom 0", "boom 1", "boom 2"]


def test_a_single_attempt_lookup_uses_both_key_columns(direct_backend, sent):
    run(direct_backend, Action("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "w 1", "AttemptNumber": 2}}))
    direct_backend.state["ids"].clear()
    sent.clear()
    patch = Action("QP_UpdateAttemptOutcome", {"WorkItemHash": "w 1", "AttemptNumber": 2, "Patch": {"Outcome": "Complete"}})
    assert run(direct_backend, patch)[0]["Success"]
    assert sent == [
        ("GET", "/1.0/uv-test-persistence/UVQueueWorkItemAttempts/FilteredTo/"
                "FBV~WorkItemHash~EQ~w%201~FBV~AttemptNumber~EQ~2~FSF~IDUVQueueWorkItemAttempt~ASC~0/0/1000"),
        ("PUT", "/1.0/uv-test-persistence/UVQueueWorkItemAttempt"),
    ]
