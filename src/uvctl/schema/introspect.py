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


def _is_max(sa_type) -> bool:
    # SQL Server reflects NVARCHAR(MAX) as a String whose length is None or 'max'
    return str(getattr(sa_type, "length", "")).lower() == "max"


def live_model(connection, dialect: Dialect, names: list[str]) -> Model:
    """The model of the tables among ``names`` that exist; other tables are never read."""
    import sqlalchemy as sa

    model = Model(dialect)
    wanted = {dialect.key(name) for name in names}
    inspector = sa.inspect(connection)
    existing = [name for name in inspector.get_table_names() if dialect.key(name) in wanted]
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
            table.add_index(Index(index["name"], tuple(str(name) for name in names), bool(index.get("unique"))))
        for constraint in uniques.get((_schema, name), []):
            if constraint.get("name"):
                table.add_index(Index(constraint["name"], tuple(constraint["column_names"]), True))
    return model
