"""``uvctl schema``: make a database match Ultravisor's persistence schema (forward only)."""

from __future__ import annotations

import click

from .output import emit, json_option

#: ``uvctl schema plan`` exit code when ``ensure`` would change the database.
PLAN_PENDING_EXIT = 10

DIALECT_NAMES = ("sqlite", "postgres", "mysql", "tsql")


def _db_option(func):
    return click.option(
        "--db",
        "db",
        metavar="URL",
        help="SQLAlchemy URL of the database (default: $UVCTL_DB_URL, else ultravisor.sqlite in the data dir).",
    )(func)


def _schema_option(func):
    return click.option(
        "--schema",
        "schema_file",
        metavar="FILE",
        help="A schema descriptor in meadow's JSON format (default: Ultravisor's built-in one).",
    )(func)


def _resolve(db: str | None, schema_file: str | None) -> tuple[str, dict]:
    # the descriptor first: a bad descriptor must stop before any connection is made
    from ..schema import load_descriptor

    descriptor = load_descriptor(schema_file)
    if db is None:
        from ..paths import default_db_url

        db = default_db_url()
    else:
        _refuse_memory_db(db)
    return db, descriptor


def _refuse_memory_db(db: str) -> None:
    """An in-memory SQLite URL would make every command report on a database that is then thrown away."""
    from ..errors import UsageError
    from ..schema.connection import parse_url

    parsed = parse_url(db)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UsageError(f"--db {db!r} is an in-memory SQLite database, gone when uvctl exits; "
                         f"name a file: sqlite:///path/to/file.sqlite")


def _print_report(data: dict, url: str, executed: bool) -> None:
    from ..errors import mask_url

    verb = "" if executed else "to be "
    click.echo(f"Engine: {data['Engine']}  ({mask_url(url)})")
    for key, title in (("TablesCreated", "Tables {}created"), ("ColumnsAdded", "Columns {}added"),
                       ("IndicesCreated", "Indexes {}created")):
        items = data[key]
        click.echo(f"{title.format(verb)}: {len(items)}" + (f"  {', '.join(items)}" if items else ""))
    if data["SkippedDestructive"]:
        click.echo(f"Skipped (destructive, not applied): {len(data['SkippedDestructive'])}")
        for item in data["SkippedDestructive"]:
            click.echo(f"  {item}")
    if data["MigrationStatements"]:
        click.echo("Statements " + ("executed:" if executed else "ensure would execute:"))
        for statement in data["MigrationStatements"]:
            click.echo(f"  {statement};")
    for note in data["Notes"]:
        click.echo(f"Note: {note}")


@click.group(name="schema")
def schema_group():
    """Make a database match Ultravisor's persistence schema, forward only.

    Tables, columns and indexes that are missing are created; differences that would drop
    or rewrite data are reported under SkippedDestructive and never applied.
    """


@schema_group.command(name="ensure")
@_db_option
@_schema_option
@json_option
def ensure_command(db, schema_file, as_json):
    """Create what is missing in the database and print what was done.

    The output has the fields of retold-databeacon's EnsureSchema: Engine, TablesCreated,
    ColumnsAdded, IndicesCreated, MigrationStatements, SkippedDestructive, Notes. Running it
    again on the same database reports nothing to do.
    """
    from ..schema import ensure_schema

    url, descriptor = _resolve(db, schema_file)
    report = ensure_schema(url, descriptor, execute=True)
    emit(report.to_dict(), as_json, lambda data: _print_report(data, url, executed=True))


@schema_group.command(
    name="plan",
    epilog=f"\b\nExit status:\n  0   in sync: ensure has nothing to do\n  {PLAN_PENDING_EXIT}  changes are pending: ensure would create tables, columns or indexes\n  1   error\n  2   bad input (a URL, a descriptor)\n  3   the database could not be reached\nDestructive differences are listed but do not change the exit status.",
)
@_db_option
@_schema_option
@json_option
def plan_command(db, schema_file, as_json):
    """Show what `schema ensure` would do, without changing anything.

    Usable as a CI drift check: the exit status says whether changes are pending.
    """
    from ..schema import ensure_schema

    url, descriptor = _resolve(db, schema_file)
    report = ensure_schema(url, descriptor, execute=False)
    emit(report.to_dict(), as_json, lambda data: _print_report(data, url, executed=False))
    if not report.in_sync:
        click.get_current_context().exit(PLAN_PENDING_EXIT)


@schema_group.command(name="introspect")
@_db_option
@_schema_option
@json_option
def introspect_command(db, schema_file, as_json):
    """Show, per descriptor table, what exists in the database and what is missing."""
    from ..schema import introspect_schema

    url, descriptor = _resolve(db, schema_file)
    data = introspect_schema(url, descriptor)

    def text(data):
        click.echo(f"Engine: {data['Engine']}")
        for table in data["Tables"]:
            if not table["Exists"]:
                click.echo(f"{table['Scope']}: missing")
                continue
            click.echo(f"{table['Scope']}: {len(table['Columns'])} columns, {len(table['Indexes'])} indexes")
            for key, title in (("MissingColumns", "missing columns"), ("ExtraColumns", "extra columns"),
                               ("MissingIndexes", "missing indexes")):
                if table[key]:
                    click.echo(f"  {title}: {', '.join(table[key])}")

    emit(data, as_json, text)


@schema_group.command(name="ddl")
@click.option("--dialect", type=click.Choice(DIALECT_NAMES), required=True, help="The SQL dialect to write.")
@_schema_option
def ddl_command(dialect, schema_file):
    """Print the full CREATE script of the schema for one dialect (offline, no database).

    Every statement is guarded (IF NOT EXISTS, or existence checks on T-SQL), so the
    script is safe to run twice.
    """
    from ..schema import load_descriptor
    from ..schema.ddl import create_script

    for statement in create_script(load_descriptor(schema_file), dialect):
        click.echo(f"{statement};")


COMMANDS = [schema_group]
