"""Make a live database match a descriptor, forward only, and report what happened.

Flow: validated descriptor → desired model; live database → model (descriptor tables
only); diff; forward-only filter; DDL; execute — in one transaction where the engine
has transactional DDL (SQLite, PostgreSQL), statement by statement on MySQL/MariaDB.
"""

from __future__ import annotations

import re
import time

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, UvctlError, mask_url
from .connection import connected, dialect_of, engine_label, first_line, parse_url, sqlite_file_missing
from .descriptor import load_descriptor, validate_descriptor
from .diff import Change, diff, forward_only
from .dialects import Dialect
from .introspect import table_names_are_exact, live_model
from .model import Model, desired_model

PG_LOCK_TIMEOUT = "10s"  # never queue forever behind a long transaction holding a lock


@dataclass
class EnsureReport:
    """The result of ``ensure_schema``; ``to_dict()`` has retold-databeacon's EnsureSchema keys."""

    engine: str
    tables_created: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    indices_created: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    executed: bool = False

    @property
    def in_sync(self) -> bool:
        """True when no forward change is (or was) pending."""
        return not (self.tables_created or self.columns_added or self.indices_created)

    def to_dict(self) -> dict:
        """``Engine, TablesCreated, ColumnsAdded, IndicesCreated, MigrationStatements, SkippedDestructive, Notes``."""
        return {
            "Engine": self.engine,
            "TablesCreated": list(self.tables_created),
            "ColumnsAdded": list(self.columns_added),
            "IndicesCreated": list(self.indices_created),
            "MigrationStatements": list(self.statements),
            "SkippedDestructive": list(self.skipped),
            "Notes": list(self.notes),
        }


class SchemaExecutionError(UvctlError):
    """A DDL statement failed; ``executed`` lists the statements that ran and stay applied."""

    def __init__(self, message: str, executed: list[str]):
        super().__init__(message)
        self.executed = executed


def _descriptor(descriptor) -> dict:
    if descriptor is None:
        return load_descriptor()
    problems = validate_descriptor(descriptor)
    if problems:
        raise UsageError(f"schema descriptor has {len(problems)} problem(s); nothing was executed: " + "; ".join(problems))
    return descriptor


def plan(connection, dialect: Dialect, descriptor: dict) -> tuple[list[Change], list[Change]]:
    """``(forward, skipped)`` changes that would make the connected database match."""
    desired = desired_model(descriptor, dialect)
    live = live_model(connection, dialect, [t.name for t in desired.tables.values()])
    if connection.in_transaction():  # release the reads' locks (SQLite) before any DDL
        connection.rollback()
    forward, skipped = forward_only(diff(desired, live))
    if dialect.name == "mysql":
        _check_mysql_row_size(desired, {change.table for change in forward})
    _check_names_are_free(connection, dialect, forward)
    if connection.in_transaction():
        connection.rollback()
    return forward, skipped


def _check_names_are_free(connection, dialect: Dialect, forward: list) -> None:
    """A UsageError, before any DDL, when a table to create is the name of a view, or an
    index to create is named like an index (or other object) of another table where index
    names are shared by the whole schema (SQLite, PostgreSQL): CREATE would fail half-way."""
    creating = [c for c in forward if c.action in ("create-table", "create-index")]
    if not creating:
        return
    import sqlalchemy as sa

    inspector = sa.inspect(connection)
    # table (and view) names compare as the server compares them (see introspect.live_model)
    key = (lambda name: name) if table_names_are_exact(connection, dialect) else dialect.key
    views = {key(name): name for name in inspector.get_view_names()}
    if dialect.name == "postgres":
        views.update({key(name): name for name in inspector.get_materialized_view_names()})
    taken = _schema_wide_names(connection, dialect)
    for change in creating:
        if change.action == "create-table" and key(change.table) in views:
            raise UsageError(f"{views[key(change.table)]} exists as a view, and uvctl needs a table of that name; "
                             f"rename or drop the view (or use another database), nothing was executed")
        if change.action == "create-index":
            owner = taken.get(dialect.key(change.subject.name))
            if owner is not None and dialect.key(owner) != dialect.key(change.table):
                raise UsageError(f"the name of index {change.subject.name} (on {change.table}) is taken by {owner} in this "
                                 f"database; rename or drop that one, nothing was executed")


def _schema_wide_names(connection, dialect: Dialect) -> dict:
    """``{key(name): what owns it}`` for the names an index may not reuse, where index names
    are schema-wide: every index (owned by its table) and, on PostgreSQL, every relation."""
    if dialect.name == "sqlite":  # tables, views, indexes and triggers share one namespace
        rows = connection.exec_driver_sql(
            "SELECT name, CASE type WHEN 'index' THEN tbl_name ELSE name END FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        return {dialect.key(name): owner for name, owner in rows}
    if dialect.name == "postgres":
        rows = connection.exec_driver_sql(
            "SELECT c.relname, COALESCE(t.relname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE n.nspname = current_schema()")
        return {dialect.key(name): owner for name, owner in rows}
    return {}  # MySQL/MariaDB and SQL Server name indexes per table


#: MariaDB/MySQL: the most bytes a row's columns may take (TEXT/BLOB count only their pointer).
_MYSQL_ROW_BYTES = 65535


def _check_mysql_row_size(desired: Model, tables: set) -> None:
    """A UsageError, before any DDL, for a table to create or extend whose columns cannot fit
    one MariaDB/MySQL row (VARCHAR counts 4 bytes a character in utf8mb4)."""
    for name in tables:
        table = desired.table(name)
        if table is None:
            continue
        total = sum(_mysql_column_bytes(column) for column in table.columns.values())
        if total > _MYSQL_ROW_BYTES:
            raise UsageError(
                f"table {table.name}: its columns need about {total} bytes a row on MariaDB/MySQL (utf8mb4 VARCHAR "
                f"counts 4 bytes a character), more than the {_MYSQL_ROW_BYTES} a row holds; make some String "
                f"columns smaller or Text; nothing was executed"
            )


def _mysql_column_bytes(column) -> int:
    if column.kind == "string" and column.size:
        return column.size[0] * 4 + 2
    return {"text": 12, "decimal": 16, "double": 8, "timestamp": 8, "boolean": 1}.get(column.kind or "", 4)


def _report(engine: str, forward: list[Change], skipped: list[Change], dialect: Dialect) -> EnsureReport:
    from .ddl import statements

    report = EnsureReport(engine)
    for change in forward:
        target = {"create-table": report.tables_created, "add-column": report.columns_added,
                  "create-index": report.indices_created}[change.action]
        target.append(change.table if change.action == "create-table" else change.label.split(":", 1)[1])
    report.skipped = [change.label + (f" ({change.detail})" if change.detail else "") for change in skipped]
    report.statements = statements(forward, dialect) if forward else []
    if skipped:
        report.notes.append(
            f"Forward-only filter skipped {len(skipped)} destructive change(s); see SkippedDestructive. "
            "Apply them out of band if you really want them."
        )
    return report


#: Tries of the DDL while another process bootstraps the same database at once.
_RACE_ATTEMPTS = 3
#: What a statement fails with when another process created the same object first.
_RACE_MARKERS = re.compile(r"(?i)already exists|duplicate column|duplicate key name")


def ensure_schema(url: str, descriptor: dict | None = None, execute: bool = True) -> EnsureReport:
    """Make the database at ``url`` match ``descriptor`` (Ultravisor's when None), forward only.

    With ``execute=False`` nothing is changed: the report lists what would be done.
    Raises ``UsageError`` for a bad descriptor or URL, ``UvctlError`` when the database
    cannot be reached or a statement fails.
    """
    descriptor = _descriptor(descriptor)
    missing = sqlite_file_missing(url)
    if missing:
        folder = Path(parse_url(url).database).expanduser().parent
        if not folder.is_dir():
            raise UsageError(f"the folder {folder} of SQLite file {mask_url(url)} does not exist; create it, or choose "
                             f"another path")
    if not execute and missing:
        # a plan must not create the SQLite file it looks at
        dialect = dialect_of(url)
        forward, skipped = forward_only(diff(desired_model(descriptor, dialect), Model(dialect)))
        report = _report("sqlite", forward, skipped, dialect)
        report.notes.append("The SQLite file does not exist yet; ensure will create it.")
        return report
    with connected(url) as (connection, dialect):
        engine = engine_label(connection)
        try:
            forward, skipped = plan(connection, dialect, descriptor)
        except Exception as exc:
            if isinstance(exc, UvctlError):
                raise
            raise UvctlError(f"cannot read the schema of {mask_url(url)}: {first_line(exc)}") from None
        report = _report(engine, forward, skipped, dialect)
        if not execute:
            report.notes.append("Plan only: nothing was executed.")
            return report
        if report.statements:
            _execute_racing(connection, dialect, descriptor, report, engine)
            report.executed = True
        if report.in_sync and not skipped:
            report.notes.append("The database already matches the descriptor.")
        return report


def _execute_racing(connection, dialect: Dialect, descriptor: dict, report: EnsureReport, engine: str) -> None:
    """Run the report's statements; when they fail, plan again: another process bootstrapping
    at once may have applied the same changes meanwhile (or be half-way through them, where
    DDL is not transactional), so what is still missing is run again, a few times, before
    the failure counts."""
    statements = report.statements
    for attempt in range(_RACE_ATTEMPTS):
        try:
            _execute(connection, dialect, statements, engine)
            return
        except SchemaExecutionError as exc:
            if connection.in_transaction():
                connection.rollback()
            pending = plan(connection, dialect, descriptor)[0]
            if pending and not _RACE_MARKERS.search(str(exc)):
                raise  # a real failure (a duplicate value under a new unique index, a view in the way)
            if not pending:
                report.notes.append("Another process applied the same changes concurrently; the database matches.")
                return
            if attempt == _RACE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
            statements = _report(engine, pending, [], dialect).statements


def _execute(connection, dialect: Dialect, statements: list[str], engine: str) -> None:
    if dialect.transactional_ddl:
        _execute_in_transaction(connection, dialect, statements, engine)
    else:
        _execute_one_by_one(connection, statements, engine)


def _execute_in_transaction(connection, dialect: Dialect, statements: list[str], engine: str) -> None:
    with connection.begin() as transaction:
        if dialect.name == "postgres":
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT}'")
        for number, statement in enumerate(statements, 1):
            try:
                connection.exec_driver_sql(statement)
            except Exception as exc:
                transaction.rollback()
                raise SchemaExecutionError(
                    f"statement {number} of {len(statements)} failed on {engine}: {first_line(exc)}; "
                    f"the transaction was rolled back, nothing was changed. Statement: {statement}",
                    executed=[],
                ) from None


def _execute_one_by_one(connection, statements: list[str], engine: str) -> None:
    # MySQL/MariaDB commit every DDL statement implicitly: there is nothing to roll back,
    # so a failure says exactly which statements already ran.
    if connection.in_transaction():
        connection.rollback()
    executed: list[str] = []
    for number, statement in enumerate(statements, 1):
        try:
            connection.exec_driver_sql(statement)
        except Exception as exc:
            ran = " | ".join(executed) if executed else "none"
            raise SchemaExecutionError(
                f"statement {number} of {len(statements)} failed on {engine}: {first_line(exc)}. "
                f"Failed: {statement}. {engine} has no transactional DDL; these {len(executed)} statement(s) "
                f"ran and stay applied: {ran}. Fix the cause and rerun: ensure continues from there.",
                executed=executed,
            ) from None
        executed.append(statement)
    if connection.in_transaction():
        connection.commit()


def introspect_schema(url: str, descriptor: dict | None = None) -> dict:
    """What exists in the database for each descriptor table, and what is missing."""
    descriptor = _descriptor(descriptor)
    if sqlite_file_missing(url):
        dialect = dialect_of(url)
        return _introspection("sqlite", desired_model(descriptor, dialect), Model(dialect))
    with connected(url) as (connection, dialect):
        desired = desired_model(descriptor, dialect)
        try:
            live = live_model(connection, dialect, [t.name for t in desired.tables.values()])
        except Exception as exc:
            raise UvctlError(f"cannot read the schema of {mask_url(url)}: {first_line(exc)}") from None
        return _introspection(engine_label(connection), desired, live)


def _introspection(engine: str, desired: Model, live: Model) -> dict:
    tables = []
    for table in desired.tables.values():
        current = live.table(table.name)
        if current is None:
            tables.append({"Scope": table.name, "Exists": False, "Columns": [],
                           "MissingColumns": [c.name for c in table.columns.values()], "ExtraColumns": [],
                           "Indexes": [], "MissingIndexes": [i.name for i in table.indexes.values()]})
            continue
        tables.append({
            "Scope": table.name,
            "Exists": True,
            "Columns": [{"Column": c.name, "Type": str(c.type), "PrimaryKey": c.primary_key} for c in current.columns.values()],
            "MissingColumns": [c.name for c in table.columns.values() if current.column(c.name) is None],
            "ExtraColumns": [c.name for c in current.columns.values() if table.column(c.name) is None],
            "Indexes": [{"Name": i.name, "Columns": list(i.columns), "Unique": i.unique} for i in current.indexes.values()],
            "MissingIndexes": [i.name for i in table.indexes.values() if current.index(i.name) is None],
        })
    return {"Engine": engine, "Tables": tables}
