"""What each SQL engine can do, and how each logical column kind is written on it.

This is uvctl's own table, not sqlglot's type mapping: sqlglot maps some types silently
to something else (FLOAT → 4-byte REAL on PostgreSQL, VARCHAR → TEXT(n) on SQLite,
DECIMAL → REAL on SQLite) and never refuses unsupported syntax, so every type string
and every capability that matters for ``schema ensure`` is spelled out here.
Pure data: importing this module loads neither SQLAlchemy nor sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError

#: Logical column kinds of the normalized model (see descriptor.TYPE_KINDS).
KINDS = ("identity", "string", "text", "integer", "boolean", "double", "decimal", "timestamp")

#: The comparison family of each kind: what a live column of that kind reflects as.
_FAMILY = {
    "identity": "integer",
    "string": "string",
    "text": "text",
    "integer": "integer",
    "boolean": "boolean",
    "double": "float",
    "decimal": "decimal",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class ColumnType:
    """A column type as compared between the descriptor and the live database."""

    family: str
    size: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.family + (f"({','.join(map(str, self.size))})" if self.size else "")


@dataclass(frozen=True)
class Dialect:
    """One engine: its sqlglot dialect name, capabilities and column types."""

    name: str  # sqlglot dialect: sqlite | postgres | mysql | tsql
    transactional_ddl: bool  # run all DDL in one transaction
    index_if_not_exists: bool  # CREATE INDEX IF NOT EXISTS
    inline_indexes: bool  # indexes declared inside CREATE TABLE (MySQL: one atomic statement)
    if_guards: bool  # no IF NOT EXISTS at all: each statement gets an IF <missing> guard (T-SQL)
    fold_case: bool  # identifiers compare case-insensitively
    has_boolean: bool  # a real BOOLEAN type; elsewhere booleans are integers
    enforces_length: bool  # VARCHAR(n) is a real limit (SQLite stores any string as TEXT)
    false_literal: str  # the default written for a boolean column
    types: dict[str, str] = field(default_factory=dict)  # kind → type, {size}/{precision}/{scale}
    table_options: tuple[tuple[str, str], ...] = ()  # MySQL: character set and collation

    def type_sql(self, kind: str, size: tuple[int, ...] = ()) -> str:
        """The column type of ``kind`` as written on this engine."""
        template = self.types[kind]
        if kind == "string":
            return template.format(size=size[0])
        if kind == "decimal":
            return template.format(precision=size[0], scale=size[1])
        return template

    def column_type(self, kind: str, size: tuple[int, ...] = ()) -> ColumnType:
        """The comparable type of a descriptor column of ``kind`` on this engine."""
        family = _FAMILY[kind]
        return self.normalize(family, size if family in ("string", "decimal") else ())

    def normalize(self, family: str, size: tuple[int, ...] = ()) -> ColumnType:
        """The one normalization applied to both sides of a comparison.

        Engines without a BOOLEAN type store booleans as integers, and reflect them so.
        SQLite ignores VARCHAR lengths (TEXT affinity), so a sized string there is text:
        a table created by another tool with TEXT columns is not reported as different.
        """
        if family == "boolean" and not self.has_boolean:
            family = "integer"
        if family == "string" and not self.enforces_length:
            family, size = "text", ()
        return ColumnType(family, tuple(size))

    def key(self, name: str) -> str:
        """The lookup key of an identifier: case-folded where the engine ignores case."""
        return name.lower() if self.fold_case else name


_COMMON = {
    "identity": "INTEGER",
    "string": "VARCHAR({size})",
    "text": "TEXT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "double": "DOUBLE PRECISION",
    "decimal": "DECIMAL({precision},{scale})",
    "timestamp": "TIMESTAMP",
}

DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(
        "sqlite", transactional_ddl=True, index_if_not_exists=True, inline_indexes=False,
        if_guards=False, fold_case=True, has_boolean=False, false_literal="0", enforces_length=False,
        types={**_COMMON, "boolean": "INTEGER", "double": "REAL", "timestamp": "DATETIME"},
    ),
    "postgres": Dialect(
        "postgres", transactional_ddl=True, index_if_not_exists=True, inline_indexes=False,
        if_guards=False, fold_case=False, has_boolean=True, false_literal="FALSE", enforces_length=True,
        types=dict(_COMMON),
    ),
    "mysql": Dialect(
        # LONGTEXT: TEXT holds only 64 KB and a manifest can be larger. utf8mb4_bin: full
        # Unicode, and unique keys compare exactly as on SQLite and PostgreSQL.
        "mysql", transactional_ddl=False, index_if_not_exists=False, inline_indexes=True,
        if_guards=False, fold_case=True, has_boolean=False, false_literal="0", enforces_length=True,
        types={**_COMMON, "identity": "INT", "integer": "INT", "text": "LONGTEXT",
               "boolean": "TINYINT(1)", "double": "DOUBLE", "timestamp": "DATETIME"},
        table_options=(("CHARACTER SET", "utf8mb4"), ("COLLATE", "utf8mb4_bin")),
    ),
    "tsql": Dialect(
        "tsql", transactional_ddl=True, index_if_not_exists=False, inline_indexes=False,
        if_guards=True, fold_case=True, has_boolean=True, false_literal="0", enforces_length=True,
        types={**_COMMON, "identity": "INT", "integer": "INT", "string": "NVARCHAR({size})",
               "text": "NVARCHAR(MAX)", "boolean": "BIT", "double": "FLOAT", "timestamp": "DATETIME2"},
    ),
}

#: SQLAlchemy dialect names → uvctl dialects.
_SQLALCHEMY_NAMES = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql"}


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (a uvctl/sqlglot name or a SQLAlchemy dialect name)."""
    key = _SQLALCHEMY_NAMES.get(name, name)
    if key not in DIALECTS:
        supported = ", ".join(DIALECTS)
        raise UsageError(f"unsupported database engine {name!r}: uvctl supports {supported}")
    return DIALECTS[key]
