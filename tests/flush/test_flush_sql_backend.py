"""The built-in sql backend through the public hooks, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json

import pytest

from uvctl import host
from uvctl.actions import Action
from uvctl.errors import BackendUnavailable, UsageError
from uvctl.journal import normalize_action
from uvctl.journal.columns import table

from .conftest import assert_database_equals_journal, database_rows, record, traffic


def _backend(url):
    handle = host.open_backend("sql", {"Db": url})
    result = host.bootstrap(handle)
    assert result.state == "bootstrapped", result.reason
    return handle


def _n(name, settings):
    return normalize_action(name, settings)


def _uv(rows, scope):
    """Journal rows as a backend holds them: the UV columns, not the extras kept beside them."""
    return [{k: v for k, v in row.items() if k in table(scope).types} for row in rows]


def test_plugin_implements_the_public_hooks_only():
    host.load_plugins()
    hooks = set(host.hooks_of("uvctl.plugins.sql"))
    assert {"uvctl_register_backends", "uvctl_bootstrap", "uvctl_dispatch", "uvctl_lookup", "uvctl_close"} <= hooks
    assert host.backend_info("sql").identity_of({"Db": "postgresql://bob:s3cret@db/x"}) == "sql:postgresql://bob:***@db/x"


def test_journal_replayed_in_one_batch_equals_journal_and_replay_is_absorbed(db_url, journal):
    record(journal, traffic(40, manifests=12))
    backend = _backend(db_url)
    log = journal.read("Queue", 0, 5000) + journal.read("Manifest", 0, 5000)
    answers = host.dispatch(backend, log)
    assert all(a["Success"] for a in answers)
    assert not any(a.get("AlreadyPresent") for a in answers)
    assert_database_equals_journal(db_url, journal)
    before = database_rows(db_url)

    again = host.dispatch(backend, log)
    appended = [a for act, a in zip(log, again) if act.name in ("QP_AppendEvent", "QP_InsertAttempt")]
    assert appended and all(a["AlreadyPresent"] for a in appended)
    assert database_rows(db_url) == before
    host.close(backend)


def test_insert_or_ignore_counts_what_was_really_inserted(db_url):
    backend = _backend(db_url)
    e1 = _n("QP_AppendEvent", {"Event": {"WorkItemHash": "h", "EventGUID": "g1", "Seq": 1}})
    e2 = _n("QP_AppendEvent", {"Event": {"WorkItemHash": "h", "EventGUID": "g2", "Seq": 2}})
    e3 = _n("QP_AppendEvent", {"Event": {"WorkItemHash": "h", "EventGUID": "g3", "Seq": 3}})
    a1 = _n("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "h", "AttemptNumber": 1}})
    a2 = _n("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "h", "AttemptNumber": 2}})
    first = host.dispatch(backend, [e1, e2, e1, a1, a1])
    assert [a["AlreadyPresent"] for a in first] == [False, False, True, False, True]
    second = host.dispatch(backend, [e2, e3, a1, a2])
    assert [a["AlreadyPresent"] for a in second] == [True, False, True, False]
    events = host.dispatch(backend, [Action("QP_GetEvents", {"WorkItemHash": "h", "Limit": 0})])[0]["Events"]
    assert [e["EventGUID"] for e in events] == ["g1", "g2", "g3"]


@pytest.mark.parametrize("variables", [32766, 999])  # SQLite since 3.32, and before
def test_sqlite_multi_row_inserts_count_across_statements(sqlite_url, monkeypatch, variables):
    # on SQLite a group of rows goes out as multi-row VALUES statements of at most 500 rows
    # and the variable limit; what each statement inserted must add up exactly
    from uvctl import multirow

    monkeypatch.setattr(multirow, "variable_limit", lambda connection: variables)
    _multi_row_inserts_count_across_statements(sqlite_url)


@pytest.mark.mysql
def test_mysql_multi_row_inserts_count_across_statements_kept_short(mysql_url, monkeypatch):
    # on MariaDB/MySQL a statement is one packet: a small budget of text makes many statements
    from uvctl.plugins.sql import write

    monkeypatch.setattr(write, "_MYSQL_STATEMENT_CHARS", 3000)
    _multi_row_inserts_count_across_statements(mysql_url)


def _multi_row_inserts_count_across_statements(url):
    backend = _backend(url)
    events = [_n("QP_AppendEvent", {"Event": {"WorkItemHash": f"h{n % 7}", "EventGUID": f"g{n:05d}", "Seq": n + 1}})
              for n in range(1300)]
    items = [_n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": f"w{n}", "Priority": n % 3}}) for n in range(1200)]
    first = host.dispatch(backend, events[:1100] + items[:700])
    assert [a.get("AlreadyPresent") for a in first[:1100]] == [False] * 1100
    mixed = events[::-1] + items  # 200 new events among 1100 sent before; 500 new items
    second = host.dispatch(backend, mixed)
    assert [a["AlreadyPresent"] for a in second[:1300]] == [n < 1100 for n in range(1300)][::-1]
    rows = database_rows(url)
    assert sorted(e["EventGUID"] for e in rows["UVQueueWorkItemEvent"]) == [f"g{n:05d}" for n in range(1300)]
    assert sorted((r["WorkItemHash"], r["Priority"]) for r in rows["UVQueueWorkItem"]) == sorted(
        (f"w{n}", n % 3) for n in range(1200))


def test_order_per_key_is_kept_inside_one_batch(db_url):
    backend = _backend(db_url)
    batch = [
        _n("QP_UpdateWorkItem", {"WorkItemHash": "b", "Patch": {"Status": "Lost"}}),  # not there yet: no-op
        _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "a", "Status": "Pending", "Priority": 1}}),
        _n("QP_UpdateWorkItem", {"WorkItemHash": "a", "Patch": {"Status": "Running"}}),
        _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "b", "Status": "Pending"}}),
        _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "a", "Status": "Pending", "Priority": 2}}),
        _n("QP_UpdateWorkItem", {"WorkItemHash": "a", "Patch": {"Status": "Complete"}}),
        _n("QP_InsertAttempt", {"Attempt": {"WorkItemHash": "a", "AttemptNumber": 1, "Outcome": "Dispatched"}}),
        _n("QP_UpdateAttemptOutcome", {"WorkItemHash": "a", "AttemptNumber": 1, "Patch": {"Outcome": "Complete", "ErrorMessage": "e"}}),
        _n("MS_UpsertManifest", {"Manifest": {"Hash": "r1", "Status": "Running"}}),
        _n("MS_RemoveManifest", {"RunHash": "r1"}),
        _n("MS_UpsertManifest", {"Manifest": {"Hash": "r1", "Status": "Complete"}}),
        _n("MS_UpsertManifest", {"Manifest": {"Hash": "r2", "Status": "Complete"}}),
        _n("MS_RemoveManifest", {"RunHash": "r2"}),
    ]
    assert all(a["Success"] for a in host.dispatch(backend, batch))
    rows = database_rows(db_url)
    items = {r["WorkItemHash"]: r for r in rows["UVQueueWorkItem"]}
    assert (items["a"]["Status"], items["a"]["Priority"]) == ("Complete", 2)
    assert items["b"]["Status"] == "Pending"
    [attempt] = rows["UVQueueWorkItemAttempt"]
    assert (attempt["Outcome"], attempt["Error"]) == ("Complete", "e")
    manifests = {r["Hash"]: (r["Status"], r["Deleted"]) for r in rows["UVManifest"]}
    assert manifests == {"r1": ("Complete", False), "r2": ("Complete", True)}
    got = host.dispatch(backend, [Action("MS_GetManifest", {"RunHash": "r2"}), Action("MS_GetManifest", {"RunHash": "r1"})])
    assert got[0]["Success"] is False and got[0]["Manifest"] is None
    assert got[1]["Manifest"]["Status"] == "Complete"


def test_a_batch_leaves_its_actions_unchanged_and_mixes_whole_and_sparse_records(db_url):
    # the planner shares an action's record until it merges a later action into it: the
    # journal's actions (re-sent by a replay) must come out exactly as they went in
    backend = _backend(db_url)
    whole = _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "w", "Status": "Pending", "Priority": 1}})
    sparse = Action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "s", "Status": "Pending", "NotAColumn": 1}}, 2)
    batch = [
        whole, sparse,
        _n("QP_UpdateWorkItem", {"WorkItemHash": "w", "Patch": {"Status": "Running"}}),
        _n("QP_UpdateWorkItem", {"WorkItemHash": "s", "Patch": {"Priority": 5}}),
        _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "x", "Status": "Complete"}}),
    ]
    before = json.dumps([(a.name, a.settings) for a in batch], sort_keys=True)
    assert all(a["Success"] for a in host.dispatch(backend, batch))
    assert json.dumps([(a.name, a.settings) for a in batch], sort_keys=True) == before
    items = {r["WorkItemHash"]: r for r in database_rows(db_url)["UVQueueWorkItem"]}
    assert {h: (r["Status"], r["Priority"]) for h, r in items.items()} == {
        "w": ("Running", 1), "s": ("Pending", 5), "x": ("Complete", 0)}
    assert items["s"]["HealthLabel"] == items["x"]["HealthLabel"]  # the sparse record got the defaults


def test_reads_follow_the_journal_filter_rules(db_url, journal):
    record(journal, traffic(30, manifests=8))
    backend = _backend(db_url)
    host.dispatch(backend, journal.read("Queue", 0, 5000) + journal.read("Manifest", 0, 5000))
    filters = [
        {},
        {"Status": "Complete"},
        {"Status": ["Error", "Complete"], "Limit": 7, "OrderBy": "EnqueuedAt DESC, WorkItemHash ASC"},
        {"RunID": "R3", "OrderBy": "-Priority, WorkItemHash"},
        {"AssignedBeaconID": "bcn-1", "Capability": "Shell", "OperationHash": "op2", "OrderBy": "WorkItemHash"},
        {"Status": [], "Limit": 99999},
    ]
    for flt in filters:
        answer = host.dispatch(backend, [_n("QP_ListWorkItems", {"Filter": flt})])[0]
        assert answer["Success"]
        assert answer["WorkItems"] == _uv(journal.list_work_items(flt), "UVQueueWorkItem"), flt
    for flt in ({}, {"OperationHash": "op1"}, {"Status": "Complete", "OrderBy": "Hash ASC", "Limit": 2}):
        answer = host.dispatch(backend, [_n("MS_ListManifests", {"Filter": flt})])[0]
        assert answer["Manifests"] == _uv(journal.list_manifests(flt), "UVManifest"), flt
        assert all(not m["Deleted"] for m in answer["Manifests"])
    some = journal.list_work_items({"Limit": 1})[0]["WorkItemHash"]
    events = host.dispatch(backend, [_n("QP_GetEvents", {"WorkItemHash": some, "Limit": 2})])[0]["Events"]
    assert events == _uv(journal.get_events(some, 2), "UVQueueWorkItemEvent")
    bad = host.dispatch(backend, [Action("QP_ListWorkItems", {"Filter": {"OrderBy": "Nope; DROP TABLE x"}})])[0]
    assert bad["Success"] is False and "Nope" in bad["Reason"] and bad["WorkItems"] == []


def test_unreachable_database_raises_backend_unavailable(tmp_path):
    for url in (f"sqlite:///{tmp_path}/missing-dir/db.sqlite", "postgresql+psycopg://bob:s3cret@127.0.0.1:1/x"):
        backend = host.open_backend("sql", {"Db": url})
        with pytest.raises(BackendUnavailable) as caught:
            host.dispatch(backend, [_n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h"}})])
        assert "s3cret" not in str(caught.value)
        result = host.bootstrap(backend)
        assert result.state == "waiting-for-beacon" and "s3cret" not in result.reason


def test_missing_schema_fails_the_batch_and_asks_for_a_bootstrap(sqlite_url):
    backend = host.open_backend("sql", {"Db": sqlite_url})
    answers = host.dispatch(backend, [_n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h"}}),
                                      _n("QP_AppendEvent", {"Event": {"WorkItemHash": "h"}})])
    assert all(a["Success"] is False and a["NeedsBootstrap"] for a in answers)
    assert host.bootstrap(backend).state == "bootstrapped"
    assert all(a["Success"] for a in host.dispatch(backend, [_n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h"}})]))


def test_a_bad_action_rolls_the_whole_batch_back(sqlite_url):
    backend = _backend(sqlite_url)
    good = _n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h"}})
    bad = Action("QP_UpdateWorkItem", {"WorkItemHash": "", "Patch": {}}, seq=42)
    answers = host.dispatch(backend, [good, bad])
    assert [a["Success"] for a in answers] == [False, False]
    assert "seq 42" in answers[0]["Reason"]
    assert database_rows(sqlite_url)["UVQueueWorkItem"] == []


def test_lookup_resolves_natural_keys(sqlite_url):
    backend = _backend(sqlite_url)
    host.dispatch(backend, [_n("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "h"}}),
                            _n("MS_UpsertManifest", {"Manifest": {"Hash": "r"}}), _n("MS_RemoveManifest", {"RunHash": "r"})])
    assert isinstance(host.lookup(backend, "UVQueueWorkItem", {"WorkItemHash": "h"}), int)
    assert host.lookup(backend, "UVQueueWorkItem", {"WorkItemHash": "nope"}) is None
    assert host.lookup(backend, "UVManifest", {"Hash": "r"}) is None  # soft-deleted


@pytest.mark.parametrize("url, message", [
    ("notaurl", "invalid database URL"),
    ("nosuchdialect://x/y", "unknown database dialect"),
    ("postgresql://u:p@ss:w/rd@127.0.0.1/db", "must be URL-encoded as %40"),
    ("postgresql://admin@myserver:S3cretPw@127.0.0.1/db", "must be URL-encoded as %40"),
    ("mysql://root@127.0.0.1/test", "or use the installed driver: mysql+pymysql://"),
    ("sqlite://", "names no file"),
    ("sqlite:///relative/target.sqlite", "relative path"),
    ("postgresql+nosuchdriver://u:pw@h/db", "unknown database dialect"),
])
def test_bad_urls_are_refused_at_assign_with_one_line(cli_runner, data_dir, url, message):
    result = cli_runner(["persistence", "assign", "--backend", "sql", "--db", url])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (data_dir / "persistence-assignment.json").exists()


def test_the_journal_itself_is_refused_as_a_target(cli_runner, data_dir):
    for journal in (f"sqlite:///{data_dir / 'journal.sqlite'}", f"sqlite:///file:{data_dir / 'journal.sqlite'}?uri=true"):
        for args in (["persistence", "assign", "--backend", "sql", "--db", journal], ["schema", "ensure", "--db", journal]):
            result = cli_runner(args)
            assert result.exit_code == 2 and "is uvctl's own journal" in result.output, result.output
    assert not (data_dir / "persistence-assignment.json").exists()


def test_a_password_with_a_space_is_masked_everywhere(cli_runner, data_dir):
    url = "postgresql+psycopg://u:my secret@127.0.0.1:1/db"  # nothing listens on port 1
    result = cli_runner(["persistence", "assign", "--backend", "sql", "--db", url, "--json"])
    status = cli_runner(["persistence", "status"])
    for text in (result.output, status.output):
        assert "secret" not in text and "u:***@127.0.0.1" in text


def test_postgres_scheme_is_read_as_postgresql(cli_runner, data_dir, pg_url):
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(drivername="postgres").render_as_string(hide_password=False)
    result = cli_runner(["schema", "plan", "--db", url, "--json"])
    assert result.exit_code in (0, 10), result.output
    assert json.loads(result.output)["Engine"] == "postgresql"


def test_sql_default_target_is_the_data_dir_sqlite(cli_runner, data_dir):
    result = cli_runner(["persistence", "assign", "--backend", "sql", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["Queue"]["State"] == "bootstrapped"
    assert report["Queue"]["Identity"] == f"sql:sqlite:///{data_dir / 'ultravisor.sqlite'}"
    assert (data_dir / "ultravisor.sqlite").exists()


def test_integers_at_the_int_limits_flush_and_beyond_them_never_reach_the_journal(db_url, journal):
    warnings: list = []
    journal.record_many([normalize_action(name, settings, warnings) for name, settings in [
        ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-max", "Priority": 2**31 - 1, "QueueWaitMs": -(2**31)}}),
        ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-big", "Priority": 2**31, "TimeoutMs": 10**30}}),
        ("QP_UpdateWorkItem", {"WorkItemHash": "wi-absent", "Patch": {"RetryBackoffMs": 2**63}}),
    ]])
    assert len(warnings) == 3 and all("outside the range of its INT column" in w for w in warnings)
    with pytest.raises(UsageError, match="Priority is 2147483648"):
        normalize_action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-x", "Priority": 2**31}})
    backend = _backend(db_url)
    answers = host.dispatch(backend, journal.read("Queue", 0, 100))
    assert all(a["Success"] for a in answers), answers
    assert_database_equals_journal(db_url, journal)
    rows = {r["WorkItemHash"]: r for r in database_rows(db_url)["UVQueueWorkItem"]}
    assert (rows["wi-max"]["Priority"], rows["wi-max"]["QueueWaitMs"]) == (2**31 - 1, -(2**31))
    assert (rows["wi-big"]["Priority"], rows["wi-big"]["TimeoutMs"]) == (0, 0)


def _counting_staged_inserts(monkeypatch) -> tuple[list, list]:
    """The row counts of the staged (COPY) inserts the sql backend makes, and of those that
    went through executemany instead."""
    from uvctl.plugins.sql import staging

    staged: list = []
    plain: list = []
    real_staged, real_plain = staging.staged_insert, staging.executemany

    def counted(conn, stmt, sql, rows):
        staged.append(len(rows))
        return real_staged(conn, stmt, sql, rows)

    def counted_plain(conn, sql, rows):
        plain.append(len(rows))
        return real_plain(conn, sql, rows)

    monkeypatch.setattr(staging, "staged_insert", counted)
    monkeypatch.setattr(staging, "executemany", counted_plain)
    return staged, plain


def test_postgres_bulk_groups_are_copied_through_a_staging_table_and_count_exactly(pg_url, journal, monkeypatch):
    # on PostgreSQL a group of at least staging.MIN_ROWS rows is COPYed into a temporary table
    # and applied by one INSERT ... SELECT with the same ON CONFLICT: rows, counts and
    # booleans (Deleted, CancelRequested, Live) must come out as the executemany path gives them
    staged, plain = _counting_staged_inserts(monkeypatch)
    record(journal, traffic(300, manifests=150))
    backend = _backend(pg_url)
    log = journal.read("Queue", 0, 10000) + journal.read("Manifest", 0, 10000)
    answers = host.dispatch(backend, log)
    assert all(a["Success"] for a in answers) and not any(a.get("AlreadyPresent") for a in answers)
    assert staged and max(staged) >= 300 and plain == []  # COPY took every group it was given
    assert_database_equals_journal(pg_url, journal)

    events = [_n("QP_AppendEvent", {"Event": {"WorkItemHash": f"h{n % 7}", "EventGUID": f"g{n:05d}", "Seq": n + 1}})
              for n in range(1300)]
    first = host.dispatch(backend, events[:1100])
    assert [a["AlreadyPresent"] for a in first] == [False] * 1100
    second = host.dispatch(backend, events[::-1])  # 200 new among 1100 sent before
    assert [a["AlreadyPresent"] for a in second] == [n < 1100 for n in range(1300)][::-1]
    stored = [e["EventGUID"] for e in database_rows(pg_url)["UVQueueWorkItemEvent"] if e["EventGUID"].startswith("g")]
    assert sorted(stored) == [f"g{n:05d}" for n in range(1300)]
    host.close(backend)


def test_postgres_staging_falls_back_to_executemany_when_copy_refuses_a_value(pg_url, monkeypatch):
    # a float in an INT column is outside the dispatch contract (records come projected), but
    # the plain INSERT's ::INTEGER cast takes it: COPY's text parser does not, and then the
    # group is rolled back to its savepoint and written the way it was before
    staged, plain = _counting_staged_inserts(monkeypatch)
    backend = _backend(pg_url)
    items = [Action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": f"w{n}", "Priority": 2.0, "Status": "Pending"}})
             for n in range(150)]
    answers = host.dispatch(backend, items)
    assert staged == [150] and plain == [150]
    assert all(a["Success"] for a in answers), answers[0]
    rows = database_rows(pg_url)["UVQueueWorkItem"]
    assert sorted((r["WorkItemHash"], r["Priority"], r["Status"]) for r in rows) == sorted(
        (f"w{n}", 2, "Pending") for n in range(150))
    host.close(backend)


def test_nul_characters_are_removed_at_journaling_so_no_engine_refuses_the_record(db_url, journal, sql_assigned):
    # PostgreSQL text cannot hold U+0000: kept, the record would fail every flush there and
    # hold back every later record of its bridge
    from uvctl.bridge import QueueBridge
    from uvctl.flush import flush

    with QueueBridge(journal) as queue:
        out = queue.upsert_work_item({"WorkItemHash": "nul-1", "Status": "Pen\x00ding", "Settings": {"a": "b\x00c"}})
    assert out["Success"] and any("NUL" in w for w in out["Warnings"])
    assert journal.get_work_item("nul-1")["Status"] == "Pending"
    sql_assigned(db_url)
    report = flush(journal=journal)
    assert report.ok, report.error
    assert_database_equals_journal(db_url, journal)
