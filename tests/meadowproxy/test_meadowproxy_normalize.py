"""Raw meadow answers → envelopes: duplicates, re-bootstrap triggers, read shapes."""

import pytest

from uvctl.actions import Action
from uvctl_meadowproxy.normalize import is_unique_violation, needs_bootstrap, to_envelope

EVENT = Action("QP_AppendEvent", {})
UPSERT = Action("QP_UpsertWorkItem", {})


@pytest.mark.parametrize(
    "status, body",
    [
        (409, {}),
        (500, {"Error": "UNIQUE constraint failed: UVQueueWorkItemEvent.EventGUID", "Code": "SQLITE_CONSTRAINT_UNIQUE"}),
        (500, {"Error": "Duplicate entry 'g1' for key 'IX_UVQueueEvent_GUID'", "Code": "ER_DUP_ENTRY"}),
        (500, {"Error": "duplicate key value violates unique constraint \"IX\"", "Code": "23505"}),
        (400, {"error": "SQLITE_CONSTRAINT_UNIQUE: something"}),
        (500, {"Error": "constraint failed", "errcode": 2067}),
        (500, {"Error": "unique constraint failed ({\"code\": \"ERR_SQLITE_ERROR\", \"errcode\": 2067})"}),
    ],
)
def test_unique_violations_of_every_engine(status, body):
    assert is_unique_violation(status, body)
    assert to_envelope(EVENT, {"Status": status, "Body": body}) == {"Available": True, "Success": True, "AlreadyPresent": True}


@pytest.mark.parametrize(
    "status, body",
    [
        (500, {"Error": "NOT NULL constraint failed: UVQueueWorkItem.Status", "Code": "SQLITE_CONSTRAINT_NOTNULL"}),
        (500, {"Error": "table UVQueueWorkItem has no column named Bogus"}),
        # other constraints share words with a unique violation; the row was not stored
        (500, {"Error": "FOREIGN KEY constraint failed", "Code": "SQLITE_CONSTRAINT_FOREIGNKEY"}),
        (400, {"error": "SQLITE_CONSTRAINT: CHECK constraint failed: Seq >= 0"}),
        (500, {"Error": "constraint failed", "errcode": 787}),
        (404, {"Error": "Record not Found", "StatusCode": 404}),
        (200, {}),
    ],
)
def test_other_answers_are_not_duplicates(status, body):
    assert not is_unique_violation(status, body)


def test_a_unique_violation_of_another_column_is_not_the_event_already_stored():
    body = {"Error": "UNIQUE constraint failed: UVQueueWorkItemEvent.GUIDUVQueueWorkItemEvent"}
    assert to_envelope(EVENT, {"Status": 500, "Body": body})["Success"] is False


def test_a_duplicate_on_a_non_append_only_action_is_an_error():
    answer = to_envelope(UPSERT, {"Status": 500, "Body": {"Error": "UNIQUE constraint failed: X.Y\n    at stack"},
                                  "Method": "POST", "Path": "/1.0/h/UVQueueWorkItem"})
    assert answer["Success"] is False
    assert answer["Reason"] == "meadow answered 500 to POST /1.0/h/UVQueueWorkItem: UNIQUE constraint failed: X.Y"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"WorkError": "MeadowProxy: path is not in the allowlist."}, "allowlist"),
        ({"WorkError": "Connection is not live. Connect first."}, "not live"),
        ({"Status": 200, "Body": None, "Text": "<html>"}, "not JSON"),
        ({"Status": 404, "Body": {"code": "ResourceNotFound", "message": "x"}}, "route missing"),
        ({"Status": 404, "Body": None, "Text": "<pre>Cannot GET</pre>"}, "route missing"),
    ],
)
def test_answers_that_mean_rebootstrap(raw, expected):
    assert expected in needs_bootstrap(raw)
    envelope = to_envelope(UPSERT, raw)
    assert envelope["Success"] is False and envelope["NeedsBootstrap"] is True


@pytest.mark.parametrize(
    "raw",
    [
        {"Status": 404, "Body": {"Error": "Record not Found", "StatusCode": 404}},
        {"WorkError": "MeadowProxy: writes are disabled on this beacon."},
        {"Status": 500, "Body": {"Error": "boom"}},
    ],
)
def test_ordinary_failures_do_not_ask_for_a_bootstrap(raw):
    assert needs_bootstrap(raw) is None
    assert "NeedsBootstrap" not in to_envelope(UPSERT, raw)


def test_bare_arrays_are_wrapped_into_the_bridge_envelopes():
    rows = [{"IDUVQueueWorkItem": 3, "WorkItemHash": "w1", "CancelRequested": 1, "Priority": "2", "CreateDate": "x"}]
    listed = to_envelope(Action("QP_ListWorkItems", {}), {"Status": 200, "Rows": rows})
    assert listed["Success"] is True and listed["WorkItems"][0]["WorkItemHash"] == "w1"
    row = listed["WorkItems"][0]
    assert row["CancelRequested"] is True and row["Priority"] == 2 and "IDUVQueueWorkItem" not in row and "CreateDate" not in row
    one = to_envelope(Action("QP_GetWorkItemByHash", {}), {"Status": 200, "Rows": []})
    assert one == {"Available": True, "Success": False, "WorkItem": None}
    failed = to_envelope(Action("QP_GetEvents", {}), {"Status": 500, "Body": {"Error": "no such column"}})
    assert failed["Success"] is False and failed["Events"] == [] and "no such column" in failed["Reason"]
