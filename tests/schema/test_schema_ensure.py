"""`ensure_schema` against the real engines: SQLite, PostgreSQL and MariaDB (``db_url``)."""

from __future__ import annotations

import copy
import json

import pytest
import sqlalchemy as sa

from uvctl.schema import UV_TABLES, builtin_descriptor, ensure_schema, table_columns
from uvctl.errors import UsageError
from uvctl.schema.ensure import SchemaExecutionError

UNIQUE_INDEXES = {
    "IX_UVQueueWorkItem_Hash": ("UVQueueWorkItem", {"WorkItemHash": "wi-1"}),
    "IX_UVQueueEvent_GUID": ("UVQueueWorkItemEvent", {"EventGUID": "2f1c5a7e-0000-4000-8000-000000000001"}),
    "IX_UVQueueAttempt_HashNum": ("UVQueueWorkItemAttempt", {"WorkItemHash": "wi-1", "AttemptNumber": 1}),
    "IX_UVManifest_Hash": ("UVManifest", {"Hash": "run-1"}),
}


def _engine(url):
    return sa.create_engine(url)


def _table(conn, name):
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def _insert(url, name, row):
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_table(conn, name)), [row])
    finally:
        engine.dispose()


def _rows(url, name):
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(_table(conn, name)))]
    finally:
        engine.dispose()


def _indexes(url):
    """{index name: (table, columns, unique)} folded over indexes and unique constraints."""
    engine = _engine(url)
    found = {}
    try:
        inspector = sa.inspect(engine)
        for table in UV_TABLES:
            for ix in inspector.get_indexes(table):
                found[ix["name"]] = (table, tuple(ix["column_names"]), bool(ix["unique"]))
            for uc in inspector.get_unique_constraints(table):
                found.setdefault(uc["name"], (table, tuple(uc["column_names"]), True))
    finally:
        engine.dispose()
    return found


def _descriptor(edit):
    descriptor = copy.deepcopy(builtin_descriptor())
    edit({t["Scope"]: t for t in descriptor["Tables"]})
    return descriptor


def test_fresh_ensure_creates_every_table_and_index(db_url):
    report = ensure_schema(db_url)

    assert report.tables_created == list(UV_TABLES)
    assert len(report.indices_created) == 11
    engine = _engine(db_url)
    try:
        inspector = sa.inspect(engine)
        for table, columns in table_columns().items():
            assert [c["name"] for c in inspector.get_columns(table)] == [c["Column"] for c in columns]
    finally:
        engine.dispose()
    indexes = _indexes(db_url)
    assert len(indexes) == 11
    assert {name for name, (_, _, unique) in indexes.items() if unique} == set(UNIQUE_INDEXES)
    assert indexes["IX_UVQueueWorkItem_Dispatch"] == ("UVQueueWorkItem", ("Status", "Priority", "EnqueuedAt"), False)


def test_unique_indexes_reject_duplicates_on_every_engine(db_url):
    ensure_schema(db_url)
    for index_name, (table, row) in UNIQUE_INDEXES.items():
        _insert(db_url, table, row)
        with pytest.raises(sa.exc.IntegrityError):
            _insert(db_url, table, row)
        assert len(_rows(db_url, table)) == 1, index_name


def test_second_ensure_reports_nothing_to_do(db_url):
    ensure_schema(db_url)
    report = ensure_schema(db_url)
    data = report.to_dict()
    assert report.in_sync
    assert data["TablesCreated"] == data["ColumnsAdded"] == data["IndicesCreated"] == []
    assert data["MigrationStatements"] == []
    assert data["SkippedDestructive"] == []


def test_added_columns_reach_a_table_that_holds_rows(db_url):
    ensure_schema(db_url)
    _insert(db_url, "UVManifest", {"Hash": "run-1", "OperationName": "nightly", "ManifestJSON": '{"a": 1}'})

    def add(tables):
        tables["UVManifest"]["Schema"] += [
            {"Column": "Region", "Type": "String", "Size": 64},
            {"Column": "Retries", "Type": "Integer", "Size": "int"},
            {"Column": "Archived", "Type": "Boolean", "Size": "Default"},
            {"Column": "Note", "Type": "String", "Size": "Default"},
            {"Column": "ArchivedAt", "Type": "DateTime", "Size": "Default"},
        ]
        tables["UVManifest"]["Indexes"].append({"Name": "IX_UVManifest_Region", "Columns": ["Region"], "Unique": False})

    descriptor = _descriptor(add)
    report = ensure_schema(db_url, descriptor)

    assert report.columns_added == [f"UVManifest.{c}" for c in ("Region", "Retries", "Archived", "Note", "ArchivedAt")]
    assert report.indices_created == ["IX_UVManifest_Region"]
    [row] = _rows(db_url, "UVManifest")
    assert (row["Hash"], row["OperationName"], row["ManifestJSON"]) == ("run-1", "nightly", '{"a": 1}')
    assert (row["Region"], row["Retries"], bool(row["Archived"]), row["Note"], row["ArchivedAt"]) == ("", 0, False, None, None)
    assert ensure_schema(db_url, descriptor).in_sync
    assert ensure_schema(db_url, descriptor).statements == []


def test_removed_and_changed_columns_are_skipped_and_data_stays(db_url):
    ensure_schema(db_url)
    _insert(db_url, "UVManifest", {"Hash": "run-1", "OperationName": "nightly", "RunMode": "full", "ElapsedMs": 42})

    def edit(tables):
        schema = tables["UVManifest"]["Schema"]
        schema[:] = [c for c in schema if c["Column"] != "OperationName"]
        next(c for c in schema if c["Column"] == "RunMode").update(Type="Integer", Size="int")
        next(c for c in schema if c["Column"] == "ElapsedMs").update(Type="String", Size=32)
        indexes = tables["UVManifest"]["Indexes"]
        indexes[:] = [i for i in indexes if i["Name"] != "IX_UVManifest_OpHash"]
        next(i for i in indexes if i["Name"] == "IX_UVManifest_Hash")["Unique"] = False

    report = ensure_schema(db_url, _descriptor(edit))

    skipped = {entry.split(" ")[0] for entry in report.skipped}
    assert skipped == {
        "drop-column:UVManifest.OperationName",
        "alter-column:UVManifest.RunMode",
        "alter-column:UVManifest.ElapsedMs",
        "drop-index:IX_UVManifest_OpHash",
        "alter-index:IX_UVManifest_Hash",
    }
    assert report.statements == [] and report.in_sync
    assert any("destructive" in note for note in report.notes)
    [row] = _rows(db_url, "UVManifest")
    assert (row["OperationName"], row["RunMode"], row["ElapsedMs"]) == ("nightly", "full", 42)
    assert len(_indexes(db_url)) == 11


def test_a_foreign_table_is_untouched_and_unreported(db_url):
    engine = _engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE legacy_thing (id INTEGER PRIMARY KEY, label VARCHAR(10), body TEXT)"))
            conn.execute(sa.text("CREATE INDEX ix_legacy_label ON legacy_thing (label)"))
            conn.execute(sa.text("INSERT INTO legacy_thing (id, label, body) VALUES (1, 'keep', 'me')"))
        before = sa.inspect(engine)
        shape = (before.get_columns("legacy_thing"), before.get_indexes("legacy_thing"))
    finally:
        engine.dispose()

    first, second = ensure_schema(db_url), ensure_schema(db_url)

    for report in (first, second):
        assert "legacy_thing" not in json.dumps(report.to_dict()).lower()
    assert second.in_sync and second.skipped == []
    engine = _engine(db_url)
    try:
        after = sa.inspect(engine)
        assert repr((after.get_columns("legacy_thing"), after.get_indexes("legacy_thing"))) == repr(shape)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT label, body FROM legacy_thing")).all() == [("keep", "me")]
    finally:
        engine.dispose()


def test_a_failing_statement_rolls_back_or_names_what_ran(db_url):
    ensure_schema(db_url)
    _insert(db_url, "UVManifest", {"Hash": "run-1", "OperationHash": "op"})
    _insert(db_url, "UVManifest", {"Hash": "run-2", "OperationHash": "op"})

    def edit(tables):
        tables["UVManifest"]["Schema"].append({"Column": "Region", "Type": "String", "Size": 64})
        tables["UVManifest"]["Indexes"].append({"Name": "IX_UVManifest_OpOnce", "Columns": ["OperationHash"], "Unique": True})

    with pytest.raises(SchemaExecutionError) as caught:
        ensure_schema(db_url, _descriptor(edit))

    engine = _engine(db_url)
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns("UVManifest")]
    finally:
        engine.dispose()
    if db_url.startswith("mysql"):
        # no transactional DDL: the ALTER ran, and the error says so
        assert caught.value.executed == ["ALTER TABLE `UVManifest` ADD COLUMN `Region` VARCHAR(64) NOT NULL DEFAULT ''"]
        assert "ADD COLUMN `Region`" in str(caught.value) and "1 statement(s) ran" in str(caught.value)
        assert "Region" in columns
    else:
        assert caught.value.executed == []
        assert "rolled back" in str(caught.value)
        assert "Region" not in columns
    assert len(_rows(db_url, "UVManifest")) == 2


def test_every_descriptor_type_round_trips_without_noise(db_url):
    from uvctl.schema.descriptor import TYPE_KINDS

    schema = [{"Column": "IDEverything", "Type": "AutoIdentity", "Size": "Default"}]
    schema += [{"Column": f"C{name}", "Type": name, "Size": "Default"} for name in TYPE_KINDS if name != "AutoIdentity"]
    schema += [
        {"Column": "CSized", "Type": "String", "Size": "250"},
        {"Column": "CMoney", "Type": "Decimal", "Size": "12,4"},
    ]
    descriptor = {"Tables": [{"Scope": "Everything", "Schema": schema,
                              "Indexes": [{"Name": "IX_Everything_Sized", "Columns": "CSized", "Unique": True}]}]}

    first = ensure_schema(db_url, descriptor)
    second = ensure_schema(db_url, descriptor)

    assert first.tables_created == ["Everything"]
    assert (second.statements, second.skipped, second.in_sync) == ([], [], True)


def test_a_unique_constraint_counts_as_the_unique_index(db_url):
    metadata = sa.MetaData()
    sa.Table(
        "Thing", metadata,
        sa.Column("IDThing", sa.Integer, primary_key=True),
        sa.Column("Code", sa.String(32), nullable=False, server_default=""),
        sa.UniqueConstraint("Code", name="UQ_Thing_Code"),
    )
    engine = _engine(db_url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    descriptor = {"Tables": [{"Scope": "Thing", "Schema": [
        {"Column": "IDThing", "Type": "AutoIdentity", "Size": "Default"},
        {"Column": "Code", "Type": "String", "Size": 32},
    ], "Indexes": [{"Name": "UQ_Thing_Code", "Columns": ["Code"], "Unique": True}]}]}

    report = ensure_schema(db_url, descriptor)

    assert (report.statements, report.skipped, report.in_sync) == ([], [], True)


def test_a_meadow_created_sqlite_table_differs_only_where_storage_differs(sqlite_url):
    engine = _engine(sqlite_url)
    with engine.begin() as conn:  # how meadow's SQLite connector writes this table
        conn.exec_driver_sql(
            "CREATE TABLE UVQueueWorkItemAttempt (IDUVQueueWorkItemAttempt INTEGER PRIMARY KEY AUTOINCREMENT, "
            "WorkItemHash TEXT NOT NULL DEFAULT '', AttemptNumber INTEGER NOT NULL DEFAULT 0, "
            "BeaconID TEXT NOT NULL DEFAULT '', StartedAt TEXT NOT NULL DEFAULT '', EndedAt TEXT NOT NULL DEFAULT '', "
            "Outcome TEXT NOT NULL DEFAULT '', Error TEXT, CreateDate TEXT, Deleted INTEGER NOT NULL DEFAULT 0)"
        )
    engine.dispose()

    report = ensure_schema(sqlite_url)

    assert "UVQueueWorkItemAttempt" not in report.tables_created
    assert report.indices_created.count("IX_UVQueueAttempt_HashNum") == 1
    assert report.skipped == ["alter-column:UVQueueWorkItemAttempt.CreateDate (text → timestamp)"]


def test_changes_applied_concurrently_by_another_process_are_not_an_error(db_url, monkeypatch):
    from uvctl.schema import ensure as ensure_module

    def add(tables):
        tables["UVManifest"]["Schema"].append({"Column": "Region", "Type": "String", "Size": 64})

    descriptor = _descriptor(add)
    ensure_schema(db_url)
    real_live_model = ensure_module.live_model
    stale = []

    def stale_once(connection, dialect, names):
        model = real_live_model(connection, dialect, names)
        if not stale:  # the other process adds the column right after our first read
            stale.append(model)
            connection.rollback()
            ensure_schema(db_url, descriptor)
        return model

    monkeypatch.setattr(ensure_module, "live_model", stale_once)
    report = ensure_schema(db_url, descriptor)

    assert report.columns_added == ["UVManifest.Region"]
    assert any("concurrently" in note for note in report.notes)


def test_a_race_caught_half_way_is_finished_instead_of_failing(db_url, monkeypatch):
    # where DDL is not transactional (MariaDB) the other process may be half-way: the first
    # tables exist when our DDL fails, the last ones not yet; ensure plans again and finishes
    from uvctl.schema import ensure as ensure_module

    real_execute, calls = ensure_module._execute, []

    def other_process_half_way(connection, dialect, statements, engine):
        calls.append(len(statements))
        if len(calls) == 1:
            real_execute(connection, dialect, statements[:1], engine)  # "the other process" made the first table
            if connection.in_transaction():
                connection.commit()
            raise ensure_module.SchemaExecutionError("statement 1 failed: table already exists", executed=[])
        real_execute(connection, dialect, statements, engine)

    monkeypatch.setattr(ensure_module, "_execute", other_process_half_way)
    report = ensure_schema(db_url)
    assert len(calls) == 2 and calls[1] < calls[0], calls
    assert report.tables_created and not ensure_schema(db_url, execute=False).statements


def test_mariadb_compares_table_names_exactly_when_the_server_does(mysql_url):
    # lower_case_table_names = 0 (Linux's default): a foreign 'uvmanifest' is another table
    engine = _engine(mysql_url)
    with engine.begin() as conn:
        assert str(conn.exec_driver_sql("SELECT @@lower_case_table_names").scalar()) == "0"
        conn.exec_driver_sql("CREATE TABLE uvmanifest (x INT)")
    engine.dispose()
    report = ensure_schema(mysql_url)
    assert "UVManifest" in report.tables_created and not report.skipped
    assert not ensure_schema(mysql_url, execute=False).statements
    engine = _engine(mysql_url)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SHOW COLUMNS FROM uvmanifest")] == ["x"]
    engine.dispose()


def test_an_index_name_taken_by_a_foreign_table_fails_loudly(sqlite_url):
    engine = _engine(sqlite_url)
    with engine.begin() as conn:  # SQLite index names are per database, not per table
        conn.exec_driver_sql("CREATE TABLE legacy_thing (hash VARCHAR(128))")
        conn.exec_driver_sql('CREATE INDEX "IX_UVManifest_Hash" ON legacy_thing (hash)')
    engine.dispose()

    for execute in (True, False):  # found by the plan itself, before any DDL
        with pytest.raises(UsageError, match="index IX_UVManifest_Hash .on UVManifest. is taken by legacy_thing"):
            ensure_schema(sqlite_url, execute=execute)
    engine = _engine(sqlite_url)
    assert sa.inspect(engine).get_table_names() == ["legacy_thing"]
    engine.dispose()


@pytest.mark.parametrize("engine_name", ["postgres", "mysql"])
def test_a_narrower_type_of_the_same_family_is_reported_never_altered(request, engine_name):
    # SMALLINT where INTEGER is declared, a 4-byte float where a double is, MySQL TEXT (64 KB)
    # where LONGTEXT is, a fixed CHAR where VARCHAR is: values the schema allows would not fit
    url = request.getfixturevalue("pg_url" if engine_name == "postgres" else "mysql_url")
    ensure_schema(url)
    if engine_name == "postgres":
        changes = ['ALTER TABLE "UVManifest" ALTER COLUMN "ElapsedMs" TYPE SMALLINT',
                   'ALTER TABLE "UVQueueWorkItem" ALTER COLUMN "Health" TYPE REAL',
                   'ALTER TABLE "UVQueueWorkItem" ALTER COLUMN "Status" TYPE CHAR(32)']
        expected = {"UVManifest.ElapsedMs", "UVQueueWorkItem.Health", "UVQueueWorkItem.Status"}
    else:
        changes = ["ALTER TABLE UVManifest MODIFY ElapsedMs SMALLINT NOT NULL DEFAULT 0",
                   "ALTER TABLE UVQueueWorkItem MODIFY Health FLOAT NOT NULL DEFAULT 0",
                   "ALTER TABLE UVManifest MODIFY ManifestJSON TEXT"]
        expected = {"UVManifest.ElapsedMs", "UVQueueWorkItem.Health", "UVManifest.ManifestJSON"}
    engine = _engine(url)
    with engine.begin() as conn:
        for statement in changes:
            conn.exec_driver_sql(statement)
    engine.dispose()
    report = ensure_schema(url, execute=False)
    reported = {entry.split(":", 1)[1].split(" ")[0] for entry in report.skipped if entry.startswith("alter-column:")}
    assert reported == expected, report.skipped
    assert not report.statements


def test_a_mariadb_prefix_index_is_not_taken_for_the_declared_full_index(mysql_url):
    ensure_schema(mysql_url)
    engine = _engine(mysql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IX_UVQueueWorkItem_Status ON UVQueueWorkItem")
        conn.exec_driver_sql("CREATE INDEX IX_UVQueueWorkItem_Status ON UVQueueWorkItem (Status(10))")
    engine.dispose()
    report = ensure_schema(mysql_url, execute=False)
    assert any(entry.startswith("alter-index:") and "IX_UVQueueWorkItem_Status" in entry for entry in report.skipped), report.skipped


def test_a_table_too_wide_for_a_mariadb_row_is_refused_before_any_ddl(mysql_url):
    from uvctl.errors import UsageError

    def widen(tables):
        tables["UVManifest"]["Schema"] += [{"Column": f"Wide{n}", "Type": "String", "Size": 4000} for n in range(5)]

    with pytest.raises(UsageError, match="UVManifest: its columns need about .* more than the 65535"):
        ensure_schema(mysql_url, _descriptor(widen))
    engine = _engine(mysql_url)
    try:
        assert sa.inspect(engine).get_table_names() == [], "nothing was executed"
    finally:
        engine.dispose()
