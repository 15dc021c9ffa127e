"""Load and validate a schema descriptor in meadow's JSON format.

Validation collects every problem (one line each) before anything touches a database,
and guarantees that each identifier is a plain ``[A-Za-z_][A-Za-z0-9_]*`` name, so no
descriptor can inject SQL into the generated DDL.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UsageError

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENTIFIER = 63  # PostgreSQL silently truncates longer names
MAX_STRING_SIZE = 4000  # the widest VARCHAR every engine takes (NVARCHAR on SQL Server)
MAX_INDEX_CHARS = 768  # MySQL's 3072-byte key limit at 4 bytes per utf8mb4 character
DEFAULT_DECIMAL = (10, 2)
#: The largest DECIMAL precision every engine takes (MSSQL: 38; MySQL 65, PostgreSQL 1000).
MAX_DECIMAL_PRECISION = 38

#: Descriptor ``Type`` → logical kind (dialects.KINDS). ``String`` is ``text`` when unsized.
TYPE_KINDS = {
    "AutoIdentity": "identity",
    "AutoGUID": "string",
    "String": "string",
    "Text": "text",
    "JSON": "text",
    "Integer": "integer",
    "Deleted": "integer",
    "ForeignKey": "integer",
    "CreateIDUser": "integer",
    "UpdateIDUser": "integer",
    "DeleteIDUser": "integer",
    "Boolean": "boolean",
    "Float": "double",
    "Decimal": "decimal",
    "DateTime": "timestamp",
    "CreateDate": "timestamp",
    "UpdateDate": "timestamp",
    "DeleteDate": "timestamp",
}
_WORD_SIZES = ("Default", "int")
_DECIMAL_SIZE = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*\Z")


def read_descriptor(path: str | Path) -> dict:
    """The parsed JSON of ``path``; unreadable files and bad JSON raise ``UsageError``."""
    from ..paths import input_file
    from ..statefile import loads

    path = input_file(path, "--schema", missing=f"cannot read schema descriptor {path}: No such file or directory")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read schema descriptor {path}: {reason}") from None
    try:
        return loads(text)
    except ValueError as exc:
        raise UsageError(f"schema descriptor {path} is not valid JSON: {exc}") from None


def load_descriptor(path: str | Path | None = None) -> dict:
    """The validated descriptor at ``path`` (Ultravisor's built-in one when ``path`` is None).

    Raises ``UsageError`` listing every problem, one per line.
    """
    if path is None:
        from . import builtin_descriptor

        descriptor, source = builtin_descriptor(), "built-in descriptor"
    else:
        descriptor, source = read_descriptor(path), str(path)
    problems = validate_descriptor(descriptor)
    if problems:
        raise UsageError(f"schema descriptor {source} has {len(problems)} problem(s); nothing was executed:",
                         details=problems)
    return descriptor


def column_kind(column: dict) -> tuple[str, tuple[int, ...]]:
    """The logical kind and size of a validated descriptor column."""
    column_type, size = column["Type"], column.get("Size", "Default")
    kind = TYPE_KINDS[column_type]
    if column_type == "AutoGUID":
        return "string", (_number(size) or 36,)
    if kind == "string":
        number = _number(size)
        return ("string", (number,)) if number else ("text", ())
    if kind == "decimal":
        return "decimal", _decimal(size) or DEFAULT_DECIMAL
    return kind, ()


def table_indexes(table: dict) -> list[dict]:
    """The table's indexes as ``{Name, Columns: [...], Unique: bool}``, names defaulted."""
    result = []
    for position, index in enumerate(table.get("Indexes") or []):
        columns = index.get("Columns")
        result.append(
            {
                "Name": index.get("Name") or f"IX_{table['Scope']}_{position}",
                "Columns": [columns] if isinstance(columns, str) else list(columns) if isinstance(columns, list) else [],
                "Unique": bool(index.get("Unique", False)),
            }
        )
    return result


def _number(size) -> int | None:
    if isinstance(size, bool):
        return None
    if isinstance(size, int):
        return size
    if isinstance(size, str) and size.strip().isdigit():
        return int(size)
    return None


def _decimal(size) -> tuple[int, int] | None:
    number = _number(size)
    if number is not None:
        return (number, 0)
    match = _DECIMAL_SIZE.match(size) if isinstance(size, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _identifier_problem(value, what: str) -> str | None:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        return f"{what} {json.dumps(value)} is not an identifier: use letters, digits and _ (not first a digit)"
    if len(value) > MAX_IDENTIFIER:
        return f"{what} {value!r} is longer than {MAX_IDENTIFIER} characters"
    return None


def validate_descriptor(descriptor) -> list[str]:
    """Every problem of ``descriptor``, one message each (empty when it is valid)."""
    if not isinstance(descriptor, dict):
        return ["the descriptor must be a JSON object with a Tables array"]
    tables = descriptor.get("Tables")
    if not isinstance(tables, list) or not tables:
        return ["Tables is missing or empty: give a non-empty array of tables"]
    problems: list[str] = []
    seen_tables: set[str] = set()
    seen_indexes: set[str] = set()
    for position, table in enumerate(tables):
        problems += _table_problems(position, table, seen_tables, seen_indexes)
    return problems


def _table_problems(position: int, table, seen_tables: set, seen_indexes: set) -> list[str]:
    where = f"Tables[{position}]"
    if not isinstance(table, dict):
        return [f"{where} must be an object with Scope and Schema"]
    problems = []
    scope = table.get("Scope")
    if scope is None:
        problems.append(f"{where}: missing Scope (the table name)")
    else:
        problem = _identifier_problem(scope, f"{where} Scope")
        if problem:
            problems.append(problem)
        elif scope.lower().startswith("sqlite_"):
            problems.append(f"{where} Scope {scope!r}: names starting with sqlite_ are reserved by SQLite")
        elif scope.lower() in seen_tables:
            problems.append(f"{where}: duplicate table {scope!r}")
        else:
            seen_tables.add(scope.lower())
        where = f"{where} ({scope})" if isinstance(scope, str) else where
    if table.get("DefaultIdentifier") is not None:
        problem = _identifier_problem(table["DefaultIdentifier"], f"{where} DefaultIdentifier")
        if problem:
            problems.append(problem)
    schema = table.get("Schema")
    if not isinstance(schema, list) or not schema:
        problems.append(f"{where}: missing Schema (a non-empty array of columns)")
        return problems
    columns: dict[str, dict] = {}
    identities = []
    for number, column in enumerate(schema):
        problems += _column_problems(f"{where} Schema[{number}]", column, columns, identities)
    if len(identities) > 1:
        problems.append(f"{where}: {len(identities)} AutoIdentity columns ({', '.join(identities)}); a table has at most one")
    if scope is not None and isinstance(table.get("Indexes", []), list):
        problems += _index_problems(where, table, columns, seen_indexes)
    elif "Indexes" in table and not isinstance(table["Indexes"], list):
        problems.append(f"{where}: Indexes must be an array")
    return problems


def _column_problems(where: str, column, columns: dict, identities: list) -> list[str]:
    if not isinstance(column, dict):
        return [f"{where} must be an object with Column, Type and Size"]
    problems = []
    name = column.get("Column")
    problem = _identifier_problem(name, f"{where} Column")
    if problem:
        problems.append(problem)
        name = None
    elif name.lower() in columns:
        problems.append(f"{where}: duplicate column {name!r}")
    column_type = column.get("Type")
    if not isinstance(column_type, str) or column_type not in TYPE_KINDS:
        problems.append(
            f"{where} {name or ''}: unknown Type {json.dumps(column_type)}; known types: {', '.join(TYPE_KINDS)}"
        )
        column_type = None
    size = column.get("Size", "Default")
    if column_type == "Decimal":
        if size not in _WORD_SIZES and _decimal(size) is None:
            problems.append(f"{where} {name or ''}: Size {json.dumps(size)} must be a number, \"P,S\", \"Default\" or \"int\"")
        elif size not in _WORD_SIZES and not (1 <= _decimal(size)[0] <= MAX_DECIMAL_PRECISION and 0 <= _decimal(size)[1] <= _decimal(size)[0]):
            problems.append(f"{where} {name or ''}: Size {json.dumps(size)} must have 1 <= precision <= "
                            f"{MAX_DECIMAL_PRECISION} (every engine's limit) and 0 <= scale <= precision")
    elif size not in _WORD_SIZES and _number(size) is None:
        problems.append(f"{where} {name or ''}: Size {json.dumps(size)} must be a number, \"Default\" or \"int\"")
    elif column_type in ("String", "AutoGUID") and _number(size) is not None and not 0 < _number(size) <= MAX_STRING_SIZE:
        problems.append(
            f"{where} {name or ''}: Size {size} is out of range 1..{MAX_STRING_SIZE}; use \"Default\" for a text column"
        )
    if name and name.lower() not in columns:
        columns[name.lower()] = None if problems else column  # None: known name, invalid column
    if column_type == "AutoIdentity" and name:
        identities.append(name)
    return problems


def _index_problems(where: str, table: dict, columns: dict, seen_indexes: set) -> list[str]:
    problems = []
    for position, raw in enumerate(table.get("Indexes") or []):
        if not isinstance(raw, dict):
            problems.append(f"{where} Indexes[{position}] must be an object with Name, Columns and Unique")
            continue
        index = table_indexes({"Scope": table["Scope"], "Indexes": [raw]})[0]
        label = f"{where} index {index['Name']}"
        problem = _identifier_problem(index["Name"], f"{where} Indexes[{position}] Name")
        if problem:
            problems.append(problem)
            continue
        if index["Name"].lower() in seen_indexes:
            problems.append(f"{label}: duplicate index name (index names are unique per database)")
        seen_indexes.add(index["Name"].lower())
        if not index["Columns"] or not all(isinstance(c, str) for c in index["Columns"]):
            problems.append(f"{label}: Columns must be a column name or a non-empty array of names")
            continue
        width = 0
        for name in index["Columns"]:
            if name.lower() not in columns:
                problems.append(f"{label}: column {name!r} is not in the table's Schema")
                continue
            column = columns[name.lower()]
            if column is None:
                continue
            kind, size = column_kind(column)
            if kind == "text":
                problems.append(
                    f"{label}: column {name!r} is a text column (unsized); MySQL and SQL Server cannot "
                    "index it: give it a numeric Size"
                )
            width += size[0] if kind == "string" else 0
        if width > MAX_INDEX_CHARS:
            problems.append(
                f"{label}: its string columns total {width} characters; MySQL keys hold at most {MAX_INDEX_CHARS}"
            )
    return problems
