"""The UV tables as the journal sees them: writable columns, types, defaults, natural keys.

Everything is derived from the schema descriptor (``uvctl.schema``), so a column added to
the descriptor is accepted, stored and returned without touching this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

WORK_ITEM = "UVQueueWorkItem"
EVENT = "UVQueueWorkItemEvent"
ATTEMPT = "UVQueueWorkItemAttempt"
MANIFEST = "UVManifest"

#: Natural key of each table: what upserts and insert-or-ignore match on.
NATURAL_KEYS = {
    WORK_ITEM: ("WorkItemHash",),
    EVENT: ("EventGUID",),
    ATTEMPT: ("WorkItemHash", "AttemptNumber"),
    MANIFEST: ("Hash",),
}

#: Columns Ultravisor sends as JSON objects; the journal (and every backend) keeps their JSON text.
OBJECT_COLUMNS = {WORK_ITEM: ("Settings", "Result"), EVENT: ("Payload",)}

#: Column types the backend stamps itself; the journal neither accepts nor returns them.
_MANAGED_TYPES = ("AutoIdentity", "CreateDate", "UpdateDate")
_BOOLEAN_TYPES = ("Boolean", "Deleted")
#: The longest text a column without a numeric Size takes (characters): beyond it a record
#: would be refused by some backends and stop every flush behind it.
MAX_TEXT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    """One UV table: its writable columns in descriptor order, their types and defaults."""

    name: str
    columns: tuple[str, ...]
    types: dict
    defaults: dict
    key: tuple[str, ...]
    #: ``{column: maximum characters}`` of the string columns (the descriptor's Size, else MAX_TEXT).
    sizes: dict = field(default_factory=dict)
    #: The columns the backend stamps itself (identity, create/update dates).
    managed: tuple[str, ...] = ()

    def is_boolean(self, column: str) -> bool:
        return self.types[column] in _BOOLEAN_TYPES


@lru_cache(maxsize=None)
def tables() -> dict[str, Table]:
    """``{table name: Table}`` for the four UV tables of the built-in descriptor."""
    from ..schema import builtin_descriptor, table_columns

    descriptor = builtin_descriptor()
    defaults_of = {t["Scope"]: t.get("DefaultObject", {}) for t in descriptor["Tables"]}
    out = {}
    for name, cols in table_columns(descriptor).items():
        if name not in NATURAL_KEYS:
            continue
        writable = [c for c in cols if c["Type"] not in _MANAGED_TYPES]
        types = {c["Column"]: c["Type"] for c in writable}
        defaults = {col: _default_for(types[col], defaults_of[name].get(col)) for col in types}
        sizes = {c["Column"]: _size_of(c) for c in writable if c["Type"] in ("String", "Text", "JSON", "GUID", "AutoGUID")}
        managed = tuple(c["Column"] for c in cols if c["Type"] in _MANAGED_TYPES)
        out[name] = Table(name, tuple(types), types, defaults, NATURAL_KEYS[name], sizes, managed)
    return out


def _size_of(column: dict) -> int:
    size = column.get("Size")
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if isinstance(size, str) and size.strip().isdigit() and int(size) > 0:
        return int(size)
    return 36 if column["Type"] in ("GUID", "AutoGUID") else MAX_TEXT


def _default_for(col_type: str, value):
    if col_type in _BOOLEAN_TYPES:
        return bool(value)
    if col_type == "Integer":
        return int(value or 0)
    if col_type == "Float":
        return float(value or 0)
    return "" if value is None else str(value)


def table(name: str) -> Table:
    """The :class:`Table` called ``name``."""
    return tables()[name]
