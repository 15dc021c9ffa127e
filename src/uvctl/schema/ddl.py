"""Forward changes → SQL statements, built as sqlglot expressions for one dialect.

Column types, defaults and capabilities come from ``dialects.py``; sqlglot builds the
statement structure and quotes every identifier. sqlglot is imported here only, so a
database already in sync never loads it.
"""

from __future__ import annotations

from .diff import Change, diff
from .dialects import Dialect, get_dialect
from .model import Column, Index, Model, Table, desired_model

#: Constant defaults per kind (every NOT NULL column has one, so adding it to a table
#: that holds rows works on every engine, SQLite included).
_ZERO_DEFAULT = ("integer", "double", "decimal")


def _sqlglot():
    import sqlglot.expressions as exp

    return exp


def _identifier(name: str):
    return _sqlglot().to_identifier(name, quoted=True)


def _table_ref(name: str):
    exp = _sqlglot()
    return exp.Table(this=_identifier(name))


def column_def(column: Column, dialect: Dialect):
    """The ColumnDef of a descriptor column: type, NOT NULL, default, identity key."""
    exp = _sqlglot()
    kind = exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=dialect.type_sql(column.kind, column.size))
    constraints = []
    if column.kind == "identity":
        identity = (
            exp.GeneratedAsIdentityColumnConstraint(this=False)
            if dialect.name == "postgres"
            else exp.AutoIncrementColumnConstraint()
        )
        constraints = [exp.NotNullColumnConstraint(), exp.PrimaryKeyColumnConstraint(), identity]
    else:
        default = _default(column, dialect)
        if default is not None:
            constraints = [exp.NotNullColumnConstraint(), exp.DefaultColumnConstraint(this=default)]
    return exp.ColumnDef(
        this=_identifier(column.name),
        kind=kind,
        constraints=[exp.ColumnConstraint(kind=c) for c in constraints],
    )


def _default(column: Column, dialect: Dialect):
    """The constant default of a NOT NULL column; None for nullable kinds (text, timestamp)."""
    exp = _sqlglot()
    if column.kind == "string":
        return exp.Literal.string("")
    if column.kind in _ZERO_DEFAULT:
        return exp.Literal.number(0)
    if column.kind == "boolean":
        # per dialect: PostgreSQL rejects DEFAULT 0 on a boolean, and exp.false() would
        # become (1 = 0) on T-SQL; a Var is written as is
        return exp.var(dialect.false_literal)
    return None


def _index_columns(index: Index):
    exp = _sqlglot()
    return [exp.column(name, quoted=True) for name in index.columns]


def create_table(table: Table, dialect: Dialect, indexes: list[Index] = (), guarded: bool = True) -> str:
    """CREATE TABLE, ``guarded`` by IF NOT EXISTS (T-SQL: IF OBJECT_ID(...) IS NULL).

    On engines with ``inline_indexes`` the ``indexes`` are declared inside the statement.
    """
    exp = _sqlglot()
    body = [column_def(column, dialect) for column in table.columns.values()]
    for index in indexes:
        if index.unique:
            body.append(exp.UniqueColumnConstraint(this=exp.Schema(this=_identifier(index.name), expressions=_index_columns(index))))
        else:
            body.append(exp.IndexColumnConstraint(this=_identifier(index.name), expressions=_index_columns(index)))
    properties = None
    if dialect.table_options:
        charset, collation = (value for _, value in dialect.table_options)
        properties = exp.Properties(
            expressions=[exp.CharacterSetProperty(this=exp.var(charset), default=True), exp.CollateProperty(this=exp.var(collation))]
        )
    create = exp.Create(
        kind="TABLE",
        exists=guarded and not dialect.if_guards,
        this=exp.Schema(this=_table_ref(table.name), expressions=body),
        properties=properties,
    )
    missing = exp.Is(this=exp.func("OBJECT_ID", _string(table.name), _string("U")), expression=exp.null())
    return _guarded(create, missing, dialect, guarded)


def create_index(table_name: str, index: Index, dialect: Dialect, guarded: bool = True) -> str:
    """CREATE [UNIQUE] INDEX, ``guarded`` by IF NOT EXISTS where the engine has it (T-SQL: sys.indexes)."""
    exp = _sqlglot()
    create = exp.Create(
        kind="INDEX",
        unique=index.unique,  # only on Create: on Index too, sqlglot writes UNIQUE twice
        exists=guarded and dialect.index_if_not_exists,
        this=exp.Index(
            this=_identifier(index.name),
            table=_table_ref(table_name),
            params=exp.IndexParameters(columns=_index_columns(index)),
        ),
    )
    lookup = (
        exp.select("*")
        .from_("sys.indexes")
        .where(exp.column("object_id").eq(exp.func("OBJECT_ID", _string(table_name))))
        .where(exp.column("name").eq(_string(index.name)))
    )
    return _guarded(create, exp.Not(this=exp.Exists(this=lookup)), dialect, guarded)


def add_column(table_name: str, column: Column, dialect: Dialect, guarded: bool = True) -> str:
    """ALTER TABLE ... ADD [COLUMN] (T-SQL: ``guarded`` by IF COL_LENGTH(...) IS NULL)."""
    exp = _sqlglot()
    alter = exp.Alter(kind="TABLE", this=_table_ref(table_name), actions=[column_def(column, dialect)])
    missing = exp.Is(this=exp.func("COL_LENGTH", _string(table_name), _string(column.name)), expression=exp.null())
    return _guarded(alter, missing, dialect, guarded)


def _string(value: str):
    return _sqlglot().Literal.string(value)


def _guarded(statement, missing, dialect: Dialect, guarded: bool) -> str:
    """``statement`` as SQL, on T-SQL prefixed by ``IF <missing>``.

    T-SQL has no IF NOT EXISTS on ALTER/CREATE INDEX. sqlglot's own emulation wraps the
    statement in EXEC('...'), which sqlglot cannot parse back, and its IfBlock omits END;
    an IF followed by one statement needs neither.
    """
    sql = statement.sql(dialect=dialect.name)
    return f"IF {missing.sql(dialect=dialect.name)} {sql}" if guarded and dialect.if_guards else sql


def statements(changes: list[Change], dialect: Dialect, guarded: bool = False) -> list[str]:
    """The SQL of the forward ``changes``, in a safe order: tables, columns, then indexes.

    ``ensure`` runs them unguarded: it planned them because the objects are missing, so an
    "already exists" (say, an index name taken by another table) must fail loudly instead
    of being skipped silently and planned again on every run. Scripts are ``guarded``.
    """
    inline = {c.table for c in changes if c.action == "create-table"} if dialect.inline_indexes else set()
    out: list[str] = []
    for change in changes:
        if change.action == "create-table":
            indexes = [c.subject for c in changes if c.action == "create-index" and c.table == change.table]
            out.append(create_table(change.subject, dialect, indexes if change.table in inline else (), guarded))
    out += [add_column(c.table, c.subject, dialect, guarded) for c in changes if c.action == "add-column"]
    out += [
        create_index(c.table, c.subject, dialect, guarded)
        for c in changes
        if c.action == "create-index" and c.table not in inline
    ]
    return out


def create_script(descriptor: dict, dialect_name: str) -> list[str]:
    """Every statement that creates ``descriptor`` on an empty database of ``dialect_name``."""
    dialect = get_dialect(dialect_name)
    return statements(diff(desired_model(descriptor, dialect), Model(dialect)), dialect, guarded=True)
