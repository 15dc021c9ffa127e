"""The range keys the views page with (``Since`` / ``Before``), as every reader of the filters sees them."""

from __future__ import annotations

import pytest

from .conftest import ITEMS, RUNS, enqueued_at, work_item_hash


def test_the_bridges_take_the_range_keys_and_RunHash(filled):
    from uvctl.bridge import execute
    from uvctl.journal import Journal

    with Journal.open() as journal:
        answer = execute("QP_ListWorkItems", {"Filter": {"RunHash": RUNS[0], "Since": enqueued_at(2),
                                                         "Before": [enqueued_at(8), ""], "OrderBy": "EnqueuedAt ASC"}},
                         journal=journal)
    assert answer["Success"], answer
    assert [r["WorkItemHash"] for r in answer["WorkItems"]] == [work_item_hash(n) for n in (2, 4, 6)]


@pytest.mark.parametrize("flt, says", [
    ({"Since": 5}, "Filter.Since must be a time as text"),
    ({"Before": "2026-11-26"}, "Filter.Before must be [time, key]"),
    ({"Before": ["2026-11-26", 3]}, "Filter.Before must be [time, key]"),
    ({"Until": "x"}, "unknown filter key(s) Until"),
])
def test_bad_range_keys_are_refused_before_any_sql(filled, flt, says):
    from uvctl.bridge import execute
    from uvctl.journal import Journal

    with Journal.open() as journal:
        answer = execute("MS_ListManifests", {"Filter": flt}, journal=journal)
    assert answer["Success"] is False and says in answer["Reason"]


def test_views_name_the_journal_tables_and_statuses_are_canonical():
    from uvctl.journal import columns
    from uvctl.views import MANIFEST, WORK_ITEM, parse_statuses

    assert (WORK_ITEM, MANIFEST) == (columns.WORK_ITEM, columns.MANIFEST)
    assert parse_statuses(["error", "COMPLETE,error"], WORK_ITEM) == ["Error", "Complete"]
    assert parse_statuses([], MANIFEST) is None
    assert parse_statuses(["in progress"], MANIFEST) == ["In Progress"]  # Ultravisor writes it with a space


def test_a_cursor_is_the_last_rows_sort_key(uv, filled):
    from uvctl.views import decode_cursor

    page = uv.json("queue", "ls", "--limit", str(ITEMS - 1))
    last = page["WorkItems"][-1]
    assert decode_cursor(page["Next"]) == [last["EnqueuedAt"], last["WorkItemHash"]]
    assert uv.json("queue", "ls", "--after", page["Next"])["WorkItems"][0]["WorkItemHash"] == work_item_hash(0)
