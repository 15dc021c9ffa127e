"""Diff the desired model against the live one, and keep only the forward changes.

The diff is scoped to the desired model's tables: a table the descriptor does not name
is never read, reported or touched. Changes are structured (an action and the object),
never classified by looking at SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Column, Index, Model, Table

#: Actions ``schema ensure`` applies.
FORWARD = ("create-table", "add-column", "create-index")
#: Actions that would drop or rewrite data, or cannot be applied in place: reported only.
DESTRUCTIVE = ("drop-column", "alter-column", "drop-index", "alter-index", "add-identity")


@dataclass(frozen=True)
class Change:
    """One difference. ``subject`` is the desired Table/Column/Index (the live one for drops)."""

    action: str
    table: str
    subject: Table | Column | Index
    detail: str = ""

    @property
    def forward(self) -> bool:
        return self.action in FORWARD

    @property
    def label(self) -> str:
        """``drop-column:T.C``, ``drop-index:N``, ``create-table:T``, ..."""
        if isinstance(self.subject, Table):
            return f"{self.action}:{self.table}"
        if isinstance(self.subject, Index):
            return f"{self.action}:{self.subject.name}"
        return f"{self.action}:{self.table}.{self.subject.name}"


def diff(desired: Model, live: Model) -> list[Change]:
    """Every difference between ``desired`` and ``live``, for the desired tables only."""
    changes: list[Change] = []
    for table in desired.tables.values():
        current = live.table(table.name)
        if current is None:
            changes.append(Change("create-table", table.name, table))
            changes += [Change("create-index", table.name, index) for index in table.indexes.values()]
            continue
        changes += _column_changes(table, current)
        changes += _index_changes(table, current)
    return changes


def _column_changes(table: Table, current: Table) -> list[Change]:
    changes = []
    for column in table.columns.values():
        live = current.column(column.name)
        if live is None:
            # an auto-increment key cannot be added to a table that already has rows
            action = "add-identity" if column.primary_key else "add-column"
            changes.append(Change(action, table.name, column))
        elif live.type != column.type:
            changes.append(Change("alter-column", table.name, column, f"{live.type} → {column.type}"))
        elif column.primary_key and not live.primary_key:
            changes.append(Change("alter-column", table.name, column, "not the primary key"))
    for key, live in current.columns.items():
        if key not in table.columns:
            changes.append(Change("drop-column", table.name, live))
    return changes


def _index_changes(table: Table, current: Table) -> list[Change]:
    changes = []
    for index in table.indexes.values():
        live = current.index(index.name)
        if live is None:
            changes.append(Change("create-index", table.name, index))
        elif current.index_key(live) != table.index_key(index):
            was = f"{'unique ' if live.unique else ''}({', '.join(live.columns)})"
            changes.append(Change("alter-index", table.name, index, f"is {was}"))
    for key, live in current.indexes.items():
        if key not in table.indexes:
            changes.append(Change("drop-index", table.name, live))
    return changes


def forward_only(changes: list[Change]) -> tuple[list[Change], list[Change]]:
    """``(applied, skipped)``: forward changes, and the destructive ones left alone."""
    return [c for c in changes if c.forward], [c for c in changes if not c.forward]
