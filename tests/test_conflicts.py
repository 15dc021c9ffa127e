"""uvctl.conflicts: which database errors mean "this record is already stored"."""

import pytest

from uvctl.conflicts import is_key_conflict, is_unique_violation, violated_columns

EVENT_KEY = ("EventGUID",)
ATTEMPT_KEY = ("WorkItemHash", "AttemptNumber")


@pytest.mark.parametrize(
    ("message", "codes", "key", "expected"),
    [
        ("UNIQUE constraint failed: UVQueueWorkItemEvent.EventGUID", (), EVENT_KEY, True),
        ("UNIQUE constraint failed: UVQueueWorkItemEvent.EventGUID (SQLITE_CONSTRAINT_UNIQUE)", (), EVENT_KEY, True),
        ("UNIQUE constraint failed: UVQueueWorkItemAttempt.WorkItemHash, UVQueueWorkItemAttempt.AttemptNumber", (), ATTEMPT_KEY, True),
        ('duplicate key value violates unique constraint "ix" DETAIL: Key ("EventGUID")=(g) already exists.', (), EVENT_KEY, True),
        ("Duplicate entry 'g' for key 'IX_UVQueueWorkItemEvent_EventGUID'", (), EVENT_KEY, True),  # names an index only
        ("Cannot insert duplicate key row in object 'dbo.UVQueueWorkItemEvent'", (), EVENT_KEY, True),
        ("constraint failed", (2067,), EVENT_KEY, True),
        # the right kind of error, but on another column than the record's natural key
        ("UNIQUE constraint failed: UVQueueWorkItemEvent.GUIDUVQueueWorkItemEvent", (), EVENT_KEY, False),
        ("UNIQUE constraint failed: UVQueueWorkItemAttempt.WorkItemHash", (), ATTEMPT_KEY, False),
        # other constraint errors: nothing was stored
        ("SQLITE_CONSTRAINT: NOT NULL constraint failed: UVQueueWorkItemEvent.EventType", (), EVENT_KEY, False),
        ("SQLITE_CONSTRAINT: FOREIGN KEY constraint failed", (), EVENT_KEY, False),
        ("constraint failed", (787,), EVENT_KEY, False),
        ("Duplicate entry '7' for key 'UVQueueWorkItemEvent.PRIMARY'", (), EVENT_KEY, False),  # the row ID
        ('null value in column "EventType" violates not-null constraint DETAIL: Failing row contains '
         '(7, duplicate entry).', (), EVENT_KEY, False),
        ("connection reset by peer", (), EVENT_KEY, False),
        ("", (), EVENT_KEY, False),
    ],
)
def test_only_a_unique_violation_of_the_natural_key_is_a_key_conflict(message, codes, key, expected):
    assert is_key_conflict(message, key, codes) is expected


def test_columns_are_read_from_sqlite_and_postgresql_messages_only():
    assert violated_columns("UNIQUE constraint failed: T.A, T.B") == {"A", "B"}
    assert violated_columns('DETAIL:  Key ("A", "B")=(1, 2) already exists.') == {"A", "B"}
    assert violated_columns("Duplicate entry 'x' for key 'k'") is None
    assert is_unique_violation("Violation of PRIMARY KEY constraint 'PK_X'") is True
