"""List filters as Ultravisor's local store honours them, validated before any SQL is built.

A filter is normalized to a complete dict (defaults filled, ``Status`` always a list,
``OrderBy`` in the canonical ``"Col DIR, Col DIR"`` form), so the journal and every backend
receive the same, already-checked filter. Column names in ``OrderBy`` are checked against
the schema and only then quoted into SQL; values always travel as parameters.

Two range keys (added, optional for backends) page a list by its time column (work items:
``EnqueuedAt``, manifests: ``StartTime``) with the natural key as tie-break: ``Since`` keeps
rows whose time is at or after it, ``Before`` (``[time, key]``) rows that sort strictly before
that pair (the last row of a page listed newest first). Times compare as text, which is time
order for the ISO form Ultravisor writes. A backend that cannot honour them refuses the filter,
and the bridge then answers from the journal.
"""

from __future__ import annotations

from ..errors import UsageError, excerpt
from .columns import MANIFEST, WORK_ITEM, table

LIMIT_MIN, LIMIT_MAX = 1, 5000

#: Per table: exact-match filter keys, default Limit, default OrderBy.
_SPECS = {
    WORK_ITEM: (("AssignedBeaconID", "RunID", "RunHash", "Capability", "OperationHash"), 500, "EnqueuedAt ASC"),
    MANIFEST: (("OperationHash",), 100, "StartTime DESC"),
}
#: Per table: the ``(time column, natural key)`` the range keys ``Since`` / ``Before`` apply to.
RANGE_COLUMNS = {WORK_ITEM: ("EnqueuedAt", "WorkItemHash"), MANIFEST: ("StartTime", "Hash")}
RANGE_KEYS = ("Since", "Before")


def list_defaults(table_name: str) -> tuple[int, str]:
    """``(Limit, OrderBy)`` a list of ``table_name`` rows uses when its filter gives none."""
    _, limit, order_by = _SPECS[table_name]
    return limit, order_by


def normalize_limit(value, action: str = "filter", default: int = 500) -> int:
    """``Limit`` as an int in 1..5000; ``default`` when missing or 0 (Ultravisor's ``limit || 500``)."""
    if value is None or value == "" or value == 0:
        return default
    try:
        number = int(float(value)) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise UsageError(f"{action}: Limit must be a whole number (1..{LIMIT_MAX}), got {excerpt(value)}")
    return max(LIMIT_MIN, min(LIMIT_MAX, number))


def normalize_filter(table_name: str, value, action: str = "filter") -> dict:
    """The complete, validated filter for a list of ``table_name`` rows."""
    exact, default_limit, default_order = _SPECS[table_name]
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise UsageError(f"{action}: Filter must be a JSON object, got {type(value).__name__}")
    allowed = ("Status", *exact, *RANGE_KEYS, "Limit", "OrderBy")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise UsageError(f"{action}: unknown filter key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    out = {}
    if value.get("Status") is not None:
        out["Status"] = _status_list(action, value["Status"])
    for key in exact:
        if value.get(key) is not None:
            if not isinstance(value[key], (str, int, float)) or isinstance(value[key], bool):
                raise UsageError(f"{action}: Filter.{key} must be a string, got {excerpt(value[key])}")
            out[key] = str(value[key])
    if value.get("Since") is not None:
        if not isinstance(value["Since"], str):
            raise UsageError(f"{action}: Filter.Since must be a time as text, got {value['Since']!r}")
        out["Since"] = value["Since"]
    if value.get("Before") is not None:
        before = value["Before"]
        if not isinstance(before, (list, tuple)) or len(before) != 2 or not all(isinstance(v, str) for v in before):
            raise UsageError(f"{action}: Filter.Before must be [time, key] (two strings), got {before!r}")
        out["Before"] = list(before)
    out["Limit"] = normalize_limit(value.get("Limit"), action, default_limit)
    out["OrderBy"] = parse_order_by(table_name, value.get("OrderBy") or default_order, action)
    return out


def _status_list(action: str, status) -> list[str]:
    items = status if isinstance(status, (list, tuple)) else [status]
    if not all(isinstance(s, str) for s in items):
        raise UsageError(f"{action}: Filter.Status must be a string or a list of strings, got {excerpt(status)}")
    return list(items)


def parse_order_by(table_name: str, order_by, action: str = "filter") -> str:
    """Canonical ``"Col ASC, Col DESC"`` from ``"Col DIR"``, ``"-Col"`` or ``"+Col"`` terms.

    A direction starting with ``DESC`` (any case) is descending, as in Ultravisor; ``-Col``
    means descending (Ultravisor's history view sends it; its local store misread it).
    """
    if not isinstance(order_by, str):
        raise UsageError(f"{action}: OrderBy must be a string like 'EnqueuedAt DESC', got {excerpt(order_by)}")
    by_lower = {col.lower(): col for col in table(table_name).columns}
    terms = []
    for term in order_by.split(","):
        words = term.split()
        if not words or len(words) > 2:
            raise UsageError(f"{action}: OrderBy term {excerpt(term.strip())} must be 'Column [ASC|DESC]' or '-Column'")
        column, direction = words[0], (words[1] if len(words) == 2 else "ASC")
        if column[:1] in "+-":
            if len(words) == 2:
                raise UsageError(f"{action}: OrderBy term {excerpt(term.strip())} has both a sign and a direction")
            direction = "DESC" if column[0] == "-" else "ASC"
            column = column[1:]
        canonical = by_lower.get(column.lower())
        if canonical is None:
            raise UsageError(f"{action}: cannot order by {excerpt(column)}: not a column of {table_name}")
        if direction.upper().startswith("DESC"):
            terms.append(f"{canonical} DESC")
        elif direction.upper() == "ASC":
            terms.append(f"{canonical} ASC")
        else:
            raise UsageError(f"{action}: OrderBy direction must be ASC or DESC, got {excerpt(direction)}")
    return ", ".join(terms)


def to_sql(table_name: str, flt: dict) -> tuple[str, list, str, int]:
    """``(where, params, order, limit)`` for a normalized filter; soft-deleted rows excluded."""
    exact = _SPECS[table_name][0]
    clauses, params = ['"Deleted" = 0'], []
    if "Status" in flt:
        if flt["Status"]:
            clauses.append(f'"Status" IN ({", ".join("?" for _ in flt["Status"])})')
            params.extend(flt["Status"])
        else:
            clauses.append("0")
    for key in exact:
        if key in flt:
            clauses.append(f'"{key}" = ?')
            params.append(flt[key])
    time_column, key_column = RANGE_COLUMNS[table_name]
    if "Since" in flt:
        clauses.append(f'"{time_column}" >= ?')
        params.append(flt["Since"])
    if "Before" in flt:  # (time, key) < (T, K), written so that an index on the time column bounds it
        clauses.append(f'"{time_column}" <= ? AND ("{time_column}" < ? OR "{key_column}" < ?)')
        params.extend([flt["Before"][0], flt["Before"][0], flt["Before"][1]])
    # parse_order_by again: columns are re-validated even if the dict was built by hand.
    order = parse_order_by(table_name, flt.get("OrderBy") or _SPECS[table_name][2])
    order_sql = ", ".join(f'"{t.split()[0]}" {t.split()[1]}' for t in order.split(", "))
    limit = normalize_limit(flt.get("Limit"), default=_SPECS[table_name][1])
    return " AND ".join(clauses), params, order_sql, limit
