"""uvctl queue ls/show and runs ls/show on the journal: filters, paging, shapes, errors, output."""

from __future__ import annotations

import time

import pytest

from .conftest import ITEMS, RUNS, enqueued_at, fill, work_item_hash


# ---------------------------------------------------------------------- no journal, no data
@pytest.mark.parametrize("args", [["queue", "ls"], ["runs", "ls"], ["queue", "ls", "--from-backend"]])
def test_an_empty_data_dir_lists_nothing_and_creates_no_file(uv, data_dir, args):
    page = uv.json(*args)
    assert page["Source"] == "journal" and page["Next"] is None
    assert page.get("WorkItems", page.get("Runs")) == []
    text = uv(*args)
    assert text.exit_code == 0 and text.stdout.startswith("0 ")
    assert not data_dir.exists()  # a read-only command made no journal (nor the data dir)


def test_options_are_checked_with_no_journal_too(uv, data_dir):
    for args in (["queue", "ls", "--since", "soon"], ["runs", "ls", "--status", "Faild"], ["queue", "ls", "--after", "x"]):
        result = uv(*args)
        assert result.exit_code == 2 and result.stderr.startswith("uvctl: error: "), args
    assert not data_dir.exists()


@pytest.mark.parametrize("args", [["queue", "show", "wi-nope"], ["runs", "show", "run-nope"]])
def test_an_unknown_hash_is_one_line_and_exit_1(uv, filled, args):
    result = uv(*args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("uvctl: error: no ")
    assert "nope" in result.stderr and result.stdout == ""


# ---------------------------------------------------------------------- lists and filters
def test_queue_ls_is_newest_first_with_every_column(uv, filled):
    page = uv.json("queue", "ls")
    hashes = [row["WorkItemHash"] for row in page["WorkItems"]]
    assert hashes == [work_item_hash(n) for n in reversed(range(ITEMS))]
    first = page["WorkItems"][0]
    assert first["EnqueuedAt"] == enqueued_at(ITEMS - 1) and first["RunHash"] == RUNS[(ITEMS - 1) % 2]
    assert {"Settings", "Result", "LastError", "AssignedBeaconID"} <= set(first)
    assert page["Limit"] == 50 and page["Next"] is None


def test_queue_ls_filters(uv, filled):
    failed = [work_item_hash(n) for n in reversed(range(ITEMS)) if n % 3 == 0]
    assert [r["WorkItemHash"] for r in uv.json("queue", "ls", "--status", "error")["WorkItems"]] == failed
    both = uv.json("queue", "ls", "--status", "Error,Complete")["WorkItems"]
    assert len(both) == ITEMS
    of_run = uv.json("queue", "ls", "--run", RUNS[1])["WorkItems"]
    assert [r["WorkItemHash"] for r in of_run] == [work_item_hash(n) for n in reversed(range(ITEMS)) if n % 2 == 1]
    of_op = uv.json("queue", "ls", "--operation", "OPR-0001", "--status", "Error")["WorkItems"]
    assert [r["WorkItemHash"] for r in of_op] == [work_item_hash(n) for n in reversed(range(ITEMS)) if n % 2 == 0 and n % 3 == 0]
    since = uv.json("queue", "ls", "--since", "2026-11-26T22:07:00Z")["WorkItems"]
    assert [r["EnqueuedAt"] for r in since] == [enqueued_at(n) for n in (9, 8, 7)]


def test_since_takes_a_duration_back_from_now(uv, data_dir):
    from uvctl.journal import Journal
    from uvctl.timestamps import now_iso

    with Journal.open() as journal:
        fill(journal, [("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": f"wi-{ago}", "Status": "Pending",
                                                           "EnqueuedAt": now_iso(ago=ago)}}) for ago in (7200, 1800, 60)])
    assert [r["WorkItemHash"] for r in uv.json("queue", "ls", "--since", "1h")["WorkItems"]] == ["wi-60", "wi-1800"]
    assert [r["WorkItemHash"] for r in uv.json("queue", "ls", "--since", "90s")["WorkItems"]] == ["wi-60"]
    assert len(uv.json("queue", "ls", "--since", "1d")["WorkItems"]) == 3
    from datetime import datetime, timedelta, timezone

    more = uv("queue", "ls", "--since", "1h", "--limit", "1").stdout.splitlines()[-1].split()
    # the next page keeps the window of the first: the duration as the time it stood for
    since = datetime.fromisoformat(more[more.index("--since") + 1])
    assert timedelta(0) <= datetime.now(timezone.utc) - timedelta(hours=1) - since < timedelta(minutes=1)


def test_paging_with_limit_and_after_reads_every_row_once(uv, filled):
    seen, cursor, pages = [], None, 0
    while True:
        page = uv.json("queue", "ls", "--limit", "3", *(["--after", cursor] if cursor else []))
        assert len(page["WorkItems"]) <= 3
        seen += [r["WorkItemHash"] for r in page["WorkItems"]]
        pages += 1
        cursor = page["Next"]
        if cursor is None:
            break
    assert seen == [work_item_hash(n) for n in reversed(range(ITEMS))] and pages == 4


def test_the_text_page_says_how_to_get_the_next_one(uv, filled):
    result = uv("queue", "ls", "--limit", "4", "--status", "complete", "--utc")
    more = [line for line in result.stdout.splitlines() if line.startswith("more: ")]
    assert len(more) == 1
    command = more[0][len("more: "):].split()
    assert command[:6] == ["uvctl", "queue", "ls", "--status", "complete", "--limit"] and "--utc" in command
    following = uv(*command[1:], "--json")
    assert following.exit_code == 0
    import json

    rows = json.loads(following.stdout)["WorkItems"]
    complete = [work_item_hash(n) for n in reversed(range(ITEMS)) if n % 3]
    assert [r["WorkItemHash"] for r in rows] == complete[4:]


def test_runs_ls_filters_and_pages(uv, filled):
    runs = uv.json("runs", "ls")["Runs"]
    assert [r["Hash"] for r in runs] == list(reversed(RUNS))  # newest StartTime first
    assert all("ManifestJSON" not in r for r in runs)
    assert [r["Hash"] for r in uv.json("runs", "ls", "--operation", "OPR-0001")["Runs"]] == [RUNS[0]]
    assert uv.json("runs", "ls", "--status", "running")["Runs"] == []
    assert [r["Hash"] for r in uv.json("runs", "ls", "--since", "2026-11-26T21:51:00Z")["Runs"]] == [RUNS[1]]
    first = uv.json("runs", "ls", "--limit", "1")
    second = uv.json("runs", "ls", "--limit", "1", "--after", first["Next"])
    assert [r["Hash"] for r in first["Runs"] + second["Runs"]] == list(reversed(RUNS)) and second["Next"] is None


def test_a_removed_run_is_neither_listed_nor_shown(uv, filled):
    from uvctl.journal import Journal

    with Journal.open() as journal:
        fill(journal, [("MS_RemoveManifest", {"RunHash": RUNS[0]})])
    assert [r["Hash"] for r in uv.json("runs", "ls")["Runs"]] == [RUNS[1]]
    assert uv("runs", "show", RUNS[0]).exit_code == 1


# ---------------------------------------------------------------------- show
def test_queue_show_has_the_item_its_events_in_order_and_its_attempts(uv, filled):
    shown = uv.json("queue", "show", work_item_hash(3))
    assert shown["WorkItem"]["Status"] == "Error" and shown["WorkItem"]["LastError"] == "boom 3"
    assert [(e["Seq"], e["EventType"]) for e in shown["Events"]] == [(1, "enqueued"), (2, "dispatched"), (3, "failed")]
    assert [(a["AttemptNumber"], a["Outcome"], a["Error"]) for a in shown["Attempts"]] == [(1, "Error", "boom 3")]
    assert shown["Sources"] == {"WorkItem": "journal", "Events": "journal", "Attempts": "journal"}
    text = uv("queue", "show", work_item_hash(3)).stdout
    assert "Events: 3, from the journal" in text and "Attempts: 1, from the journal" in text


def test_runs_show_is_the_manifest_with_its_work_items_and_outcomes(uv, filled):
    shown = uv.json("runs", "show", RUNS[0])
    assert shown["Manifest"]["Hash"] == RUNS[0] and shown["Manifest"]["Status"] == "Complete"
    assert shown["Manifest"]["TaskManifests"] == {"node": {"Status": "Complete"}}  # the run as last sent
    mine = [n for n in reversed(range(ITEMS)) if n % 2 == 0]
    assert [r["WorkItemHash"] for r in shown["WorkItems"]] == [work_item_hash(n) for n in mine]
    assert shown["Outcomes"] == {"Error": sum(n % 3 == 0 for n in mine), "Complete": sum(n % 3 != 0 for n in mine)}
    paged = uv.json("runs", "show", RUNS[0], "--limit", "2")
    rest = uv.json("runs", "show", RUNS[0], "--after", paged["Next"])
    assert [r["WorkItemHash"] for r in paged["WorkItems"] + rest["WorkItems"]] == [work_item_hash(n) for n in mine]
    text = uv("runs", "show", RUNS[0]).stdout
    assert "Operation 1" in text and "outcomes: Complete 3, Error 2" in text


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, says", [
    (["queue", "ls", "--status", "Faild"], "unknown status 'Faild'"),
    (["runs", "ls", "--status", ""], None),  # an empty status is no filter: fine
    (["queue", "ls", "--since", "yesterday"], "is not a time"),
    (["runs", "ls", "--since", "2026-13-40"], "is not a time"),
    (["queue", "ls", "--limit", "0"], "--limit"),
    (["runs", "ls", "--limit", "1001"], "--limit"),
    (["queue", "ls", "--after", "not-a-cursor"], "is not a cursor"),
    (["runs", "show", RUNS[0], "--after", "e30"], "is not a cursor"),
])
def test_bad_input_is_one_line_and_exit_2(uv, filled, args, says):
    result = uv(*args)
    if says is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("uvctl: error: ") and result.stderr.count("\n") == 1
    assert says in result.stderr and result.stdout == ""


@pytest.mark.parametrize("group", ["queue", "runs"])
def test_every_command_has_help_and_json(uv, group):
    for command in ("ls", "show"):
        result = uv(group, command, "--help")
        assert result.exit_code == 0 and "--json" in result.stdout
        assert ('"Sources"' if command == "show" else '"Next": CURSOR|null') in result.stdout  # the shape
        assert "--from-backend" in result.stdout and "--utc" in result.stdout


# ---------------------------------------------------------------------- human output
def test_control_characters_from_the_database_stay_on_one_line(uv, data_dir):
    from uvctl.journal import Journal

    nasty = "line1\r\nline2\x1b[2J\x07end\u2028"
    with Journal.open() as journal:
        fill(journal, [("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-1", "Status": "Error", "LastError": nasty,
                                                           "Capability": "Shell\x1b]0;owned\x07", "EnqueuedAt": enqueued_at(1)}}),
                       ("QP_AppendEvent", {"Event": {"WorkItemHash": "wi-1", "EventType": "x\ny", "Payload": {"m": nasty}}})])
    listed = uv("queue", "ls", env={"COLUMNS": "300"}).stdout
    assert "\x1b" not in listed and "\r" not in listed and "\x07" not in listed
    assert len(listed.splitlines()) == 3  # header, the row, the footer
    assert "line1\\r\\nline2\\x1b[2J\\x07end\\u2028" in listed
    shown = uv("queue", "show", "wi-1", env={"COLUMNS": "300"}).stdout
    assert "\x1b" not in shown and "\r" not in shown and "x\\ny" in shown
    assert uv.json("queue", "show", "wi-1")["WorkItem"]["LastError"] == nasty  # --json keeps the value itself


def test_tables_fit_the_terminal_width(uv, data_dir):
    from uvctl.journal import Journal

    with Journal.open() as journal:
        fill(journal, [("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-" + "h" * 100, "Status": "Error",
                                                           "LastError": "e" * 500, "EnqueuedAt": enqueued_at(1)}})])
    for columns in (80, 120):
        lines = uv("queue", "ls", env={"COLUMNS": str(columns)}).stdout.splitlines()
        table = lines[:2]
        assert all(len(line) <= columns for line in table), table
        assert table[1].count("…") == 2 and "Error" in table[1]  # long cells cut, the status kept
    wide = uv("queue", "ls", env={"COLUMNS": "1000"}).stdout.splitlines()
    assert "e" * 500 in wide[1]


@pytest.fixture
def india(monkeypatch):
    """The local zone is UTC+05:30 (no daylight saving) for the test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_are_local_unless_utc(uv, filled, india):
    local = uv("queue", "ls", "--limit", "1").stdout.splitlines()
    assert local[1].startswith("2026-11-27 03:39:00 ")  # 22:09Z + 5:30
    assert "times in local time (IST +0530)" in "\n".join(local)
    stored = uv("queue", "ls", "--limit", "1", "--utc").stdout.splitlines()
    assert stored[1].startswith(enqueued_at(9) + " ")
    assert uv.json("queue", "ls", "--limit", "1")["WorkItems"][0]["EnqueuedAt"] == enqueued_at(9)
    from uvctl.cli.listing import local_time

    # a time the local zone cannot hold (year 10000 there) and text that is no time: as stored
    assert [local_time(v) for v in ("9999-12-31T23:59:59Z", "not a time", "")] == ["9999-12-31T23:59:59Z", "not a time", ""]
    naive = uv.json("queue", "ls", "--since", "2026-11-27T03:38:00")["WorkItems"]  # local time: 22:08Z
    assert [r["EnqueuedAt"] for r in naive] == [enqueued_at(9), enqueued_at(8)]  # at or after
