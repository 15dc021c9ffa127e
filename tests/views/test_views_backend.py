"""The same answers from the journal and, after 'uvctl flush', from the sql backend on each engine."""

from __future__ import annotations

import pytest

from .conftest import ITEMS, RUNS, fill, work_item_hash

#: Every read of the views, each with options that exercise a filter or a page.
READS = [
    ("queue", "ls"),
    ("queue", "ls", "--status", "Error"),
    ("queue", "ls", "--run", RUNS[1], "--limit", "2"),
    ("queue", "ls", "--operation", "OPR-0001", "--since", "2026-11-26T22:03:00Z"),
    ("queue", "show", work_item_hash(3)),
    ("queue", "show", work_item_hash(4)),
    ("runs", "ls"),
    ("runs", "ls", "--status", "complete", "--limit", "1"),
    ("runs", "show", RUNS[0]),
    ("runs", "show", RUNS[1], "--limit", "3"),
]


def _without_sources(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("Source", "Sources")}


def _sources(answer: dict) -> set:
    return {answer["Source"]} if "Source" in answer else {v for k, v in answer["Sources"].items() if k != "Attempts"}


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def flushed(request, uv, filled, tmp_path):
    """The filled journal flushed to the sql backend on each engine (or, asked for by name, to
    the memory backend)."""
    if request.param == "memory":
        backend = ["--backend", "memory", "--store", f"views-{tmp_path.name}"]
    else:
        url = request.getfixturevalue({"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[request.param])
        backend = ["--backend", "sql", "--db", url]
    assigned = uv("persistence", "assign", *backend)
    assert assigned.exit_code == 0, assigned.output
    flushed = uv("flush")
    assert flushed.exit_code == 0, flushed.output
    return request.param


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_the_backend_answers_as_the_journal_does(uv, flushed, args):
    journal, backend = uv.json(*args), uv.json(*args, "--from-backend")
    assert _sources(journal) == {"journal"} and _sources(backend) == {"backend"}
    assert _without_sources(backend) == _without_sources(journal)
    assert any(journal.get(k) for k in ("WorkItems", "Runs", "Events"))  # the comparison is not of empty answers


def test_the_pages_of_the_backend_follow_the_cursor_of_the_journal(uv, flushed):
    first = uv.json("queue", "ls", "--limit", "4")
    rest = uv.json("queue", "ls", "--limit", "50", "--after", first["Next"], "--from-backend")
    assert rest["Source"] == "backend"
    assert f"{ITEMS} work items from the backend;" in uv("queue", "ls", "--from-backend").stdout
    assert [r["WorkItemHash"] for r in first["WorkItems"] + rest["WorkItems"]] == [
        work_item_hash(n) for n in reversed(range(ITEMS))]


def test_a_backend_behind_the_journal_is_answered_for_by_the_journal(uv, flushed):
    from uvctl import assignment
    from uvctl.journal import Journal

    assignment.mark_unreachable("Queue", "down for the test")  # the next write only journals
    with Journal.open() as journal:
        fill(journal, [("QP_UpdateWorkItem", {"WorkItemHash": work_item_hash(0), "Patch": {"Status": "Canceled"}})])
    page = uv.json("queue", "ls", "--status", "Canceled", "--from-backend")
    assert page["Source"] == "journal" and [r["WorkItemHash"] for r in page["WorkItems"]] == [work_item_hash(0)]
    text = uv("queue", "ls", "--from-backend").stdout
    assert f"{ITEMS} work items from the journal" in text
    assert uv.json("runs", "ls", "--from-backend")["Source"] == "backend"  # the Manifest bridge is caught up


def test_from_backend_without_a_journal_reads_the_backend_and_creates_no_journal(uv, flushed, data_dir):
    journal = data_dir / "journal.sqlite"
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"journal.sqlite{suffix}").unlink(missing_ok=True)
    page = uv.json("queue", "ls", "--from-backend")
    assert page["Source"] == "backend" and len(page["WorkItems"]) == ITEMS
    assert uv.json("queue", "ls")["WorkItems"] == []  # the journal's answer: it has nothing
    assert not journal.exists()


@pytest.mark.parametrize("flushed", ["memory"], indirect=True)
def test_the_memory_backend_lists_and_pages_as_the_journal_does(uv, flushed):
    """The reference plugin honours the filters' range keys too (its rows carry other
    bookkeeping columns, so only the keys and statuses are compared)."""
    def listed(*args):
        page = uv.json(*args)
        key = "WorkItems" if args[0] == "queue" else "Runs"
        rows = [(r.get("WorkItemHash") or r.get("Hash"), r["Status"]) for r in page[key]]
        return page["Source"], rows, page["Next"]

    from uvctl.views import WORK_ITEM, encode_cursor

    older = encode_cursor({"EnqueuedAt": "2026-11-26T22:06:00.000Z", "WorkItemHash": "wi"}, WORK_ITEM)
    for args in [r for r in READS if r[1] == "ls"] + [("queue", "ls", "--limit", "3", "--after", older)]:
        journal, backend = listed(*args), listed(*args, "--from-backend")
        assert journal[0] == "journal" and backend[0] == "backend"
        assert backend[1:] == journal[1:] and journal[1], args
