"""The UV tables as the journal sees them: writable columns, types, defaults, natural keys.

Everything is derived from the schema descriptor (``uvctl.schema``), so a column added to
the descriptor is accepted, stored and returned without touching this package.
"""

from __future__ import annotations

from dataclasses import dataclass
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

#: Column types the backend stamps itself; the journal neither accepts nor returns them.
_MANAGED_TYPES = ("AutoIdentity", "CreateDate", "UpdateDate")
_BOOLEAN_TYPES = ("Boolean", "Deleted")


@dataclass(frozen=True)
class Table:
    """One UV table: its writable columns in descriptor order, their types and defaults."""

    name: str
    columns: tuple[str, ...]
    types: dict
    defaults: dict
    key: tuple[str, ...]

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
        out[name] = Table(name, tuple(types), types, defaults, NATURAL_KEYS[name])
    return out


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
