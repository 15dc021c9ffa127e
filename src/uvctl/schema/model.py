"""The normalized schema model both sides of a diff are turned into.

A descriptor and a live database become the same shapes: tables with columns
(comparable type, primary key) and indexes as (name, columns, unique), where unique
constraints and unique indexes are one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .descriptor import column_kind, table_indexes
from .dialects import ColumnType, Dialect


@dataclass(frozen=True)
class Column:
    """A column. ``kind``/``size`` are set on the descriptor side (they drive the DDL)."""

    name: str
    type: ColumnType
    primary_key: bool = False
    kind: str | None = None
    size: tuple[int, ...] = ()


@dataclass(frozen=True)
class Index:
    """An index or unique constraint."""

    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass
class Table:
    """A table with its columns and indexes, looked up through the dialect's name key."""

    name: str
    dialect: Dialect
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)

    def add_column(self, column: Column) -> None:
        self.columns[self.dialect.key(column.name)] = column

    def add_index(self, index: Index) -> None:
        self.indexes.setdefault(self.dialect.key(index.name), index)

    def column(self, name: str) -> Column | None:
        return self.columns.get(self.dialect.key(name))

    def index(self, name: str) -> Index | None:
        return self.indexes.get(self.dialect.key(name))

    def index_key(self, index: Index) -> tuple:
        """What makes two indexes the same: columns (in order, name-folded) and uniqueness."""
        return tuple(self.dialect.key(c) for c in index.columns), index.unique


@dataclass
class Model:
    """Tables by lookup key."""

    dialect: Dialect
    tables: dict[str, Table] = field(default_factory=dict)

    def add(self, table: Table) -> Table:
        self.tables[self.dialect.key(table.name)] = table
        return table

    def table(self, name: str) -> Table | None:
        return self.tables.get(self.dialect.key(name))


def desired_model(descriptor: dict, dialect: Dialect) -> Model:
    """The model a validated descriptor asks for on ``dialect``."""
    model = Model(dialect)
    for spec in descriptor["Tables"]:
        table = model.add(Table(spec["Scope"], dialect))
        for column in spec["Schema"]:
            kind, size = column_kind(column)
            table.add_column(
                Column(column["Column"], dialect.column_type(kind, size), kind == "identity", kind, size)
            )
        declared = {column["Column"].lower(): column["Column"] for column in spec["Schema"]}
        for index in table_indexes(spec):
            columns = tuple(declared[name.lower()] for name in index["Columns"])
            table.add_index(Index(index["Name"], columns, index["Unique"]))
    return model
