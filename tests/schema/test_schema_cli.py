"""`uvctl schema ensure|plan|introspect|ddl` as a user runs them."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from uvctl.cli.schema import PLAN_PENDING_EXIT
from uvctl.schema import UV_TABLES

REPORT_KEYS = ["Engine", "TablesCreated", "ColumnsAdded", "IndicesCreated", "MigrationStatements", "SkippedDestructive", "Notes"]


def test_plan_exit_codes_say_whether_changes_are_pending(cli_runner, db_url):
    pending = cli_runner(["schema", "plan", "--db", db_url, "--json"])
    assert pending.exit_code == PLAN_PENDING_EXIT == 10
    assert json.loads(pending.output)["TablesCreated"] == list(UV_TABLES)

    assert cli_runner(["schema", "ensure", "--db", db_url]).exit_code == 0

    in_sync = cli_runner(["schema", "plan", "--db", db_url, "--json"])
    assert in_sync.exit_code == 0
    assert json.loads(in_sync.output)["MigrationStatements"] == []


def test_plan_help_documents_the_exit_codes(cli_runner):
    result = cli_runner(["schema", "plan", "--help"])
    assert result.exit_code == 0
    assert re.search(r"\b10\b.*pending", result.output)
    assert re.search(r"\b3\b.*could not be reached", result.output)


def test_plan_does_not_create_a_missing_sqlite_file(cli_runner, tmp_path):
    target = tmp_path / "later.sqlite"
    assert cli_runner(["schema", "plan", "--db", f"sqlite:///{target}"]).exit_code == PLAN_PENDING_EXIT
    assert not target.exists()


def test_ensure_defaults_to_the_data_dir_sqlite_and_prints_the_report(cli_runner, data_dir):
    first = cli_runner(["schema", "ensure", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert list(report) == REPORT_KEYS
    assert report["Engine"] == "sqlite" and len(report["IndicesCreated"]) == 11
    assert (data_dir / "ultravisor.sqlite").exists()

    second = cli_runner(["schema", "ensure"])
    assert second.exit_code == 0
    assert "Tables created: 0" in second.output and "already matches" in second.output


def test_introspect_shows_what_exists_and_what_is_missing(cli_runner, sqlite_url):
    before = json.loads(cli_runner(["schema", "introspect", "--db", sqlite_url, "--json"]).output)
    assert [t["Exists"] for t in before["Tables"]] == [False] * 4
    assert len(before["Tables"][0]["MissingColumns"]) == 38

    cli_runner(["schema", "ensure", "--db", sqlite_url])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('ALTER TABLE "UVManifest" ADD COLUMN "Extra" TEXT')
    engine.dispose()

    after = json.loads(cli_runner(["schema", "introspect", "--db", sqlite_url, "--json"]).output)
    manifest = next(t for t in after["Tables"] if t["Scope"] == "UVManifest")
    assert manifest["Exists"] and manifest["MissingColumns"] == [] and manifest["MissingIndexes"] == []
    assert manifest["ExtraColumns"] == ["Extra"]
    assert len(manifest["Indexes"]) == 3


@pytest.mark.parametrize(
    "url,expected",
    [
        ("not a url", "invalid database URL"),
        ("postgresql+psycopg://uv:s3cret@127.0.0.1:1/uv", "cannot connect to postgresql+psycopg://uv:***@127.0.0.1:1/uv"),
        ("mysql+pymysql://uv:s3cret@127.0.0.1:1/uv", "cannot connect to mysql+pymysql://uv:***@127.0.0.1:1/uv"),
        ("mssql+pyodbc://uv:s3cret@dbhost/uv", "driver 'pyodbc' for mssql+pyodbc://uv:***@dbhost/uv is not installed"),
        ("oracle+nosuch://uv:s3cret@dbhost/uv", "unsupported database engine 'oracle'"),
    ],
)
@pytest.mark.parametrize("command", ["ensure", "plan", "introspect"])
def test_connection_problems_are_one_masked_line(cli_runner, url, expected, command):
    result = cli_runner(["schema", command, "--db", url])
    assert result.exit_code not in (0, PLAN_PENDING_EXIT)
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("uvctl: error: ") and expected in result.output
    assert "s3cret" not in result.output
    # README's table: 3 when the database cannot be reached, 2 for a URL that is wrong in itself, 1 else
    assert result.exit_code == (3 if "cannot connect" in expected else 1 if "not installed" in expected else 2)


def test_a_mysql_server_that_never_answers_fails_within_the_timeout_and_long_statements_are_not_cut(
        cli_runner, monkeypatch, mysql_url):
    import socket
    import time

    from uvctl.schema import connection

    monkeypatch.setattr(connection, "CONNECT_TIMEOUT", 2)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts the TCP connection, never sends MySQL's greeting
    try:
        started = time.monotonic()
        result = cli_runner(["schema", "plan", "--db", f"mysql+pymysql://u:pw@127.0.0.1:{silent.getsockname()[1]}/x"])
        assert result.exit_code not in (0, PLAN_PENDING_EXIT) and "cannot connect" in result.output
        assert time.monotonic() - started < 15
    finally:
        silent.close()
    engine, _dialect = connection.create_engine(mysql_url)
    try:
        with engine.connect() as conn:  # longer than the handshake timeout: still answered
            assert conn.exec_driver_sql("SELECT SLEEP(3)").scalar() == 0
    finally:
        engine.dispose()


def _script(cli_runner, dialect) -> str:
    result = cli_runner(["schema", "ddl", "--dialect", dialect])
    assert result.exit_code == 0, result.output
    return result.output


def test_tsql_script_parses_back_with_identity_keys_and_guards(cli_runner):
    script = _script(cli_runner, "tsql")
    assert sqlglot.parse(script, read="tsql")
    statements = [sqlglot.parse_one(s, read="tsql") for s in script.split(";\n") if s.strip()]
    assert len(statements) == 4 + 11
    creates = []
    for statement in statements:
        # every statement is guarded: IF <object missing> CREATE ...
        assert isinstance(statement, exp.IfBlock), statement.sql("tsql")
        [create] = statement.args["true"].expressions
        assert isinstance(create, exp.Create)
        creates.append(create)
    tables = [c for c in creates if c.kind == "TABLE"]
    assert [t.this.this.name for t in tables] == list(UV_TABLES)
    for table in tables:
        key = table.this.expressions[0]
        kinds = {type(c.kind) for c in key.constraints}
        assert key.name == f"ID{table.this.this.name}"
        assert {exp.PrimaryKeyColumnConstraint, exp.NotNullColumnConstraint} <= kinds
        assert "IDENTITY" in key.sql("tsql")
    indexes = [c for c in creates if c.kind == "INDEX"]
    assert len(indexes) == 11 and sum(bool(c.args.get("unique")) for c in indexes) == 4
    assert script.count("IF NOT EXISTS(SELECT * FROM sys.indexes") == 11
    assert " TEXT" not in script and "BOOLEAN" not in script and "NVARCHAR(MAX)" in script


def test_tsql_added_column_is_guarded():
    from uvctl.schema.dialects import get_dialect
    from uvctl.schema.ddl import add_column
    from uvctl.schema.model import Column

    dialect = get_dialect("tsql")
    sql = add_column("UVManifest", Column("Region", dialect.column_type("string", (64,)), kind="string", size=(64,)), dialect)
    assert sql == "IF COL_LENGTH('UVManifest', 'Region') IS NULL ALTER TABLE [UVManifest] ADD [Region] NVARCHAR(64) NOT NULL DEFAULT ''"
    parsed = sqlglot.parse_one(sql, read="tsql")
    assert isinstance(parsed, exp.IfBlock)
    assert isinstance(parsed.args["true"].expressions[0], exp.Alter)


@pytest.mark.parametrize("dialect,expected", [
    ("postgres", ['"Health" DOUBLE PRECISION', '"Live" BOOLEAN NOT NULL DEFAULT FALSE', "GENERATED BY DEFAULT AS IDENTITY"]),
    ("mysql", ["`Health` DOUBLE", "`Settings` LONGTEXT", "CHARACTER SET=utf8mb4", "UNIQUE `IX_UVManifest_Hash` (`Hash`)"]),
    ("sqlite", ['"Health" REAL', '"Live" INTEGER NOT NULL DEFAULT 0', "PRIMARY KEY AUTOINCREMENT"]),
])
def test_scripts_use_each_dialects_types(cli_runner, dialect, expected):
    script = _script(cli_runner, dialect)
    for fragment in expected:
        assert fragment in script
    assert sqlglot.parse(script, read=dialect)
    assert "FLOAT" not in script and "CHAR(" not in script.replace("VARCHAR(", "")


def test_ddl_script_runs_twice_and_matches_ensure(cli_runner, db_url):
    dialect = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql"}[db_url.split(":")[0].split("+")[0]]
    statements = [s for s in _script(cli_runner, dialect).split(";\n") if s.strip()]
    engine = sa.create_engine(db_url)
    try:
        for _ in range(2):
            with engine.begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert cli_runner(["schema", "plan", "--db", db_url]).exit_code == 0


def test_a_view_in_the_place_of_a_table_is_refused_before_any_ddl(cli_runner, db_url):
    engine = sa.create_engine(db_url)
    quote = "`" if engine.dialect.name in ("mysql", "mariadb") else '"'
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE VIEW {quote}UVQueueWorkItemAttempt{quote} AS SELECT 1 AS x")
    engine.dispose()
    for command in ("plan", "ensure"):
        result = cli_runner(["schema", command, "--db", db_url])
        assert result.exit_code == 2, result.output
        assert "UVQueueWorkItemAttempt exists as a view" in result.output and "nothing was executed" in result.output
    engine = sa.create_engine(db_url)
    assert "UVQueueWorkItem" not in sa.inspect(engine).get_table_names()  # nothing half-made
    engine.dispose()


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "pg_url"])  # where index names are schema-wide
def test_an_index_name_taken_by_another_table_is_refused_before_any_ddl(cli_runner, request, url_fixture):
    db_url = request.getfixturevalue(url_fixture)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE other (a INTEGER)')
        conn.exec_driver_sql('CREATE INDEX "IX_UVQueueWorkItem_Status" ON other (a)')
    engine.dispose()
    result = cli_runner(["schema", "plan", "--db", db_url])
    assert result.exit_code == 2, result.output
    assert "index IX_UVQueueWorkItem_Status (on UVQueueWorkItem) is taken by other" in result.output


@pytest.mark.parametrize("command", ["plan", "ensure"])
def test_a_sqlite_file_in_a_folder_that_does_not_exist_is_bad_input(cli_runner, tmp_path, command):
    url = f"sqlite:///{tmp_path / 'missing' / 'x.sqlite'}"
    result = cli_runner(["schema", command, "--db", url])
    assert result.exit_code == 2 and "does not exist; create it" in result.output
    assert not (tmp_path / "missing").exists()


def test_names_are_compared_as_the_engine_compares_them(cli_runner, mysql_url, sqlite_url):
    # MariaDB with lower_case_table_names=0: a view uvmanifest is no obstacle to a table UVManifest
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        exact = str(conn.exec_driver_sql("SELECT @@lower_case_table_names").scalar()) == "0"
        conn.exec_driver_sql("CREATE VIEW uvmanifest AS SELECT 1 AS x")
    engine.dispose()
    result = cli_runner(["schema", "ensure", "--db", mysql_url])
    assert (result.exit_code == 0) == exact, result.output
    # SQLite: tables, views and indexes share one namespace
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE VIEW "IX_UVManifest_Hash" AS SELECT 1 AS x')
    engine.dispose()
    result = cli_runner(["schema", "plan", "--db", sqlite_url])
    assert result.exit_code == 2 and "is taken by IX_UVManifest_Hash" in result.output, result.output
