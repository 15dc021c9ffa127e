"""Read the live database into the normalized model, scoped to the descriptor's tables.

One inspector round trip per kind of object (``get_multi_*``) for all tables at once.
Unique constraints and unique indexes fold into one index list, because engines
report them asymmetrically (PostgreSQL lists a unique constraint twice, MariaDB lists
a unique index as a constraint too, SQLite lists only one of each).
"""

from __future__ import annotations

from .dialects import ColumnType, Dialect
from .model import Column, Index, Model, Table


def reflected_type(sa_type, dialect: Dialect) -> ColumnType:
    """The comparable type of a reflected SQLAlchemy column type."""
    from sqlalchemy import types as t

    if isinstance(sa_type, t.Boolean):
        return dialect.normalize("boolean")
    narrower = _narrower(sa_type, dialect)
    if narrower is not None:
        return narrower
    if isinstance(sa_type, t.Integer):
        return dialect.normalize("integer")
    if isinstance(sa_type, t.Float):  # before Numeric: Float is a Numeric
        return dialect.normalize("float")
    if isinstance(sa_type, t.Numeric):
        return dialect.normalize("decimal", (sa_type.precision or 0, sa_type.scale or 0))
    if isinstance(sa_type, (t.DateTime, t.TIMESTAMP)):
        return dialect.normalize("timestamp")
    if isinstance(sa_type, t.String):
        length = getattr(sa_type, "length", None)
        if isinstance(length, int) and length > 0 and not _is_max(sa_type):
            return dialect.normalize("string", (length,))
        return dialect.normalize("text")
    return dialect.normalize(type(sa_type).__name__.lower())


def _narrower(sa_type, dialect: Dialect) -> ColumnType | None:
    """A type of the same family as a declared one, but one that holds less (SMALLINT for
    INTEGER, 4-byte REAL/FLOAT for a double, MySQL TEXT for LONGTEXT, a fixed CHAR for a
    VARCHAR) or means something else (PostgreSQL's timestamptz): its own name, so that it
    differs from the declared type and is reported (never altered)."""
    from sqlalchemy import types as t

    if dialect.name not in ("postgres", "mysql"):  # SQLite's REAL is a double; T-SQL is not checked live
        return None
    name = type(sa_type).__name__.lower()
    if isinstance(sa_type, t.SmallInteger):
        return ColumnType("smallint")
    if isinstance(sa_type, t.Float) and not isinstance(sa_type, t.Double):
        return ColumnType("real")
    if dialect.name == "mysql" and name in ("tinytext", "text", "mediumtext"):
        return ColumnType({"text": "text-64kb"}.get(name, name))  # not "text": that is the declared LONGTEXT
    if isinstance(sa_type, t.CHAR) or name in ("char", "nchar"):
        return ColumnType("char", (sa_type.length,) if isinstance(sa_type.length, int) else ())
    if isinstance(sa_type, t.DateTime) and getattr(sa_type, "timezone", False):
        return ColumnType("timestamptz")
    return None


def table_names_are_exact(connection, dialect: Dialect) -> bool:
    """True where table names compare exactly although the dialect folds identifiers:
    MySQL/MariaDB with ``lower_case_table_names = 0`` (Linux's default), where ``uvmanifest``
    is another table than ``UVManifest`` (column and index names still ignore case there)."""
    if dialect.name != "mysql":
        return False
    value = connection.exec_driver_sql("SELECT @@lower_case_table_names").scalar()
    return str(value).strip() == "0"


def _is_max(sa_type) -> bool:
    # SQL Server reflects NVARCHAR(MAX) as a String whose length is None or 'max'
    return str(getattr(sa_type, "length", "")).lower() == "max"


def live_model(connection, dialect: Dialect, names: list[str]) -> Model:
    """The model of the tables among ``names`` that exist; other tables are never read."""
    import sqlalchemy as sa

    model = Model(dialect)
    key = (lambda name: name) if table_names_are_exact(connection, dialect) else dialect.key
    wanted = {key(name) for name in names}
    inspector = sa.inspect(connection)
    existing = [name for name in inspector.get_table_names() if key(name) in wanted]
    if not existing:
        return model
    columns = inspector.get_multi_columns(filter_names=existing)
    primary_keys = inspector.get_multi_pk_constraint(filter_names=existing)
    indexes = inspector.get_multi_indexes(filter_names=existing)
    uniques = inspector.get_multi_unique_constraints(filter_names=existing)
    for (_schema, name), reflected in columns.items():
        table = model.add(Table(name, dialect))
        pk = set((primary_keys.get((_schema, name)) or {}).get("constrained_columns") or [])
        for column in reflected:
            table.add_column(Column(column["name"], reflected_type(column["type"], dialect), column["name"] in pk))
        for index in indexes.get((_schema, name), []):
            # an expression index lists its expressions in place of column names
            names = index.get("expressions") or index.get("column_names") or ()
            # a MySQL prefix index (Status(10)) covers less than the declared full index: it
            # gets the prefix in its column names, so it compares as a different index
            prefixes = (index.get("dialect_options") or {}).get("mysql_length") or {}
            if isinstance(prefixes, int):  # one length for every column
                prefixes = dict.fromkeys(names, prefixes)
            names = [f"{name}({prefixes[name]})" if name in prefixes else name for name in names]
            table.add_index(Index(index["name"], tuple(str(name) for name in names), bool(index.get("unique"))))
        for constraint in uniques.get((_schema, name), []):
            if constraint.get("name"):
                table.add_index(Index(constraint["name"], tuple(constraint["column_names"]), True))
    return model
