"""Reads of the sql backend, with the filter semantics of Ultravisor's local store.

Filters are validated and completed by :func:`uvctl.journal.filters.normalize_filter`, the
journal's own rules (``Status`` string or list, exact matches, ``Limit`` 1..5000, ``OrderBy``
checked against the columns), so a read answers the same from the backend as from the journal.
Soft-deleted rows are never returned. Rows carry the UV columns the journal returns.
"""

from __future__ import annotations

import sqlalchemy as sa

from ...actions import READ_BY_KEY, envelope, failure, is_key_value, read_empty
from ...errors import UsageError
from ...journal.filters import RANGE_COLUMNS, normalize_filter, normalize_limit
from .connect import descriptor_tables
from .write import EVENT, MANIFEST, WORK_ITEM


def _order(table: sa.Table, canonical: str) -> list:
    """ORDER BY terms from a normalized ``"Col ASC, Col DESC"`` (columns already validated)."""
    terms = []
    for term in canonical.split(", "):
        column, direction = term.split()
        terms.append(table.c[column].desc() if direction == "DESC" else table.c[column].asc())
    return terms


def not_deleted(table: sa.Table):
    """The condition that keeps soft-deleted rows out (Deleted false or NULL)."""
    column = table.c.get("Deleted")
    if column is None:
        return sa.true()
    false = sa.false() if isinstance(column.type, sa.Boolean) else sa.literal(0)
    return sa.or_(column.is_(None), column == false)


def identity_column(table: sa.Table):
    """The table's ``ID<Table>`` column (else its first primary-key column)."""
    return table.c[f"ID{table.name}"] if f"ID{table.name}" in table.c else list(table.primary_key.columns)[0]


class Reader:
    """Runs the read actions on one connection and shapes rows like the journal does."""

    def __init__(self, conn, tables: dict):
        self.conn = conn
        self.tables = tables
        self._shape = {}

    def _row(self, scope: str, row) -> dict:
        shape = self._shape.get(scope)
        if shape is None:
            shape = self._shape[scope] = _row_shape(scope, self.tables[scope])
        out = {}
        for column, convert in shape:
            value = row[column]
            out[column] = convert(value) if value is not None and convert is not None else value
        return out

    def _select(self, scope: str, *where, order=None, limit=None):
        table = self.tables[scope]
        stmt = sa.select(table).where(not_deleted(table), *where)
        if order is not None:
            stmt = stmt.order_by(*order)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [self._row(scope, row) for row in self.conn.execute(stmt).mappings()]

    def _list(self, scope: str, filter_):
        table = self.tables[scope]
        flt = normalize_filter(scope, filter_, "filter")
        where = []
        time_column, key_column = (table.c[c] for c in RANGE_COLUMNS[scope])
        for name, value in flt.items():
            if name == "Status":
                where.append(table.c.Status.in_(value) if value else sa.false())
            elif name == "Since":
                where.append(time_column >= value)
            elif name == "Before":  # (time, key) < value, bounded for an index on the time column
                where += [time_column <= value[0], sa.or_(time_column < value[0], key_column < value[1])]
            elif name not in ("Limit", "OrderBy"):
                where.append(table.c[name] == value)
        order = [*_order(table, flt["OrderBy"]), identity_column(table).asc()]
        return self._select(scope, *where, order=order, limit=flt["Limit"])

    def run(self, action) -> dict:
        """The envelope answering one read action."""
        settings = action.settings or {}
        key = READ_BY_KEY.get(action.name)
        if key is not None:  # a read by natural key needs one: text or a number
            value = settings.get(key) if isinstance(settings, dict) else None
            if value == "" or not is_key_value(value):
                return failure(f"{action.name} needs {key} (text)", **read_empty(action.name))
        try:
            if action.name == "QP_GetWorkItemByHash":
                rows = self._select(WORK_ITEM, self.tables[WORK_ITEM].c.WorkItemHash == str(settings.get("WorkItemHash")), limit=1)
                return envelope(bool(rows), WorkItem=rows[0] if rows else None)
            if action.name == "QP_ListWorkItems":
                return envelope(True, WorkItems=self._list(WORK_ITEM, settings.get("Filter")))
            if action.name == "QP_GetEvents":
                table = self.tables[EVENT]
                order = [table.c.Seq.asc(), identity_column(table).asc()] if "Seq" in table.c else [identity_column(table).asc()]
                rows = self._select(EVENT, table.c.WorkItemHash == str(settings.get("WorkItemHash")),
                                    order=order, limit=normalize_limit(settings.get("Limit"), action.name))
                return envelope(True, Events=rows)
            if action.name == "MS_GetManifest":
                rows = self._select(MANIFEST, self.tables[MANIFEST].c.Hash == str(settings.get("RunHash")), limit=1)
                return envelope(bool(rows), Manifest=rows[0] if rows else None)
            if action.name == "MS_ListManifests":
                return envelope(True, Manifests=self._list(MANIFEST, settings.get("Filter")))
        except UsageError as exc:
            return failure(str(exc), **read_empty(action.name))
        return failure(f"unknown read action {action.name}")


def _row_shape(scope: str, table: sa.Table) -> list:
    """``[(column, converter)]`` for the UV data columns, typed as the descriptor says."""
    converters = {"Integer": int, "Float": float, "Boolean": bool, "Deleted": bool, "String": str}
    shape = []
    for column in descriptor_tables()[scope]["Schema"]:
        name, kind = column["Column"], column["Type"]
        if kind in ("AutoIdentity", "CreateDate", "UpdateDate") or name not in table.c:
            continue
        shape.append((name, converters.get(kind)))
    return shape
