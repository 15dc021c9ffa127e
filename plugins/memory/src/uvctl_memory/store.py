"""The memory backend's data: four tables as dicts keyed by natural key, one method per action.

This is the part a backend author replaces with their own storage. Every rule a backend
must follow is visible here in a few lines each:

- upserts are keyed by the natural key (``WorkItemHash``, ``Hash``) and merge the columns given;
- events (``EventGUID``) and attempts (``WorkItemHash`` + ``AttemptNumber``) are append-only:
  a second insert of the same key answers ``Success: True, AlreadyPresent: True`` and changes nothing;
- manifest removal is a soft delete: the row stays, flagged ``Deleted``, and reads skip it;
- bad input (a missing natural key, an unknown action, a bad filter) is a failed envelope
  with a ``Reason``, never an exception, and writes nothing;
- an update of a row the store does not have changes nothing and still succeeds: the
  journal keeps such updates (the row may exist in a backend it did not create), and a
  failure would stop every later flush at that record.
"""

from __future__ import annotations

import copy

from uvctl.actions import READ_BY_KEY, envelope, failure, is_key_value, read_empty
from uvctl.errors import UsageError

WORK_ITEM, MANIFEST = "UVQueueWorkItem", "UVManifest"


def list_filter(table: str, value, action: str) -> dict:
    """The list ``Filter`` completed and checked by uvctl's own rules (the journal's).

    Defaults (work items: ``Limit`` 500, ``EnqueuedAt ASC``; manifests: 100, ``StartTime DESC``),
    ``Status`` as a list, ``OrderBy`` as ``"Col ASC, Col DESC"`` with real columns; raises
    ``UsageError`` on bad input. Imported here, not at module level: ``uvctl --help`` loads
    this module and should not load the journal.
    """
    from uvctl.journal import normalize_filter

    return normalize_filter(table, value, action)


def matches(row: dict, flt: dict, table: str) -> bool:
    """True when ``row`` has one of the ``Status`` values, every exact-match value of ``flt``,
    and lies in its ``Since`` / ``Before`` range (time column, then natural key, as text)."""
    from uvctl.journal.filters import RANGE_COLUMNS

    time_column, key_column = RANGE_COLUMNS[table]
    when, key = str(row.get(time_column) or ""), str(row.get(key_column) or "")
    for name, value in flt.items():
        if name == "Status":
            ok = row.get(name) in value
        elif name == "Since":
            ok = when >= value
        elif name == "Before":
            ok = (when, key) < tuple(value)
        elif name in ("Limit", "OrderBy"):
            continue
        else:
            ok = row.get(name) == value
        if not ok:
            return False
    return True


def order_rows(rows: list[dict], order_by: str) -> list[dict]:
    """Sort by a normalized ``"Col DIR, Col DIR"``, the last term first (Python's sort is stable).

    Rows without a value sort last for their term; ties keep insertion order, so results
    are deterministic.
    """
    for term in reversed(order_by.split(", ")):
        column, direction = term.split()
        present = [r for r in rows if r.get(column) is not None]
        missing = [r for r in rows if r.get(column) is None]
        # numbers before text, so a column holding both cannot make the sort fail
        present.sort(key=lambda r: (isinstance(r[column], str), r[column]), reverse=direction == "DESC")
        rows = present + missing
    return rows


class MemoryStore:
    """The four UV tables of one named in-process store."""

    def __init__(self):
        self.work_items: dict[str, dict] = {}  # WorkItemHash → row
        self.events: dict[str, dict] = {}  # EventGUID → row
        self.attempts: dict[tuple[str, int], dict] = {}  # (WorkItemHash, AttemptNumber) → row
        self.manifests: dict[str, dict] = {}  # Hash → row (with Deleted)
        self._next_id = 0

    def apply(self, name: str, settings: dict) -> dict:
        """Run one bridge action and return its envelope."""
        method = getattr(self, name, None) if name.startswith(("QP_", "MS_")) else None
        if method is None:
            return failure(f"unknown action {name!r}; expected one of the QP_* / MS_* bridge actions")
        problem = _shape_problem(name, settings)
        if problem:
            return failure(problem, **read_empty(name))
        try:
            return method(**_settings_for(method, settings))
        except UsageError as exc:  # a bad Filter or Limit: refused, nothing written
            return failure(str(exc), **read_empty(name))

    def _new_row(self, id_column: str, record: dict) -> dict:
        self._next_id += 1
        return {**copy.deepcopy(record), id_column: self._next_id}

    def _upsert(self, table: dict, key, id_column: str, record: dict) -> dict:
        """Insert ``record`` under ``key``, or merge it into the row already there."""
        if key not in table:
            table[key] = self._new_row(id_column, record)
        else:
            _merge(table[key], record, id_column)
        return table[key]

    # --- Queue writes -------------------------------------------------------------------

    def QP_UpsertWorkItem(self, WorkItem=None):
        key = (WorkItem or {}).get("WorkItemHash")
        if not key:
            return failure("QP_UpsertWorkItem needs WorkItem.WorkItemHash (the natural key)")
        row = self._upsert(self.work_items, key, "IDUVQueueWorkItem", WorkItem)
        return envelope(WorkItem=_public(row))

    def QP_UpdateWorkItem(self, WorkItemHash=None, Patch=None):
        if not WorkItemHash:
            return failure("QP_UpdateWorkItem needs WorkItemHash")
        row = self.work_items.get(WorkItemHash)
        if row is None:
            return envelope()  # nothing to update: a no-op, so a flush never stalls on it
        _merge(row, Patch, "IDUVQueueWorkItem", "WorkItemHash")
        return envelope(WorkItem=_public(row))

    def QP_AppendEvent(self, Event=None):
        Event = Event or {}
        if not Event.get("EventGUID") or not Event.get("WorkItemHash"):
            return failure("QP_AppendEvent needs Event.EventGUID and Event.WorkItemHash")
        if Event["EventGUID"] in self.events:
            return envelope(AlreadyPresent=True)
        self.events[Event["EventGUID"]] = self._new_row("IDUVQueueWorkItemEvent", Event)
        return envelope()

    def QP_InsertAttempt(self, Attempt=None):
        key = _attempt_key((Attempt or {}).get("WorkItemHash"), (Attempt or {}).get("AttemptNumber"))
        if key is None:
            return failure("QP_InsertAttempt needs Attempt.WorkItemHash and Attempt.AttemptNumber")
        if key in self.attempts:
            return envelope(AlreadyPresent=True)
        self.attempts[key] = self._new_row("IDUVQueueWorkItemAttempt", Attempt)
        return envelope()

    def QP_UpdateAttemptOutcome(self, WorkItemHash=None, AttemptNumber=None, Patch=None):
        key = _attempt_key(WorkItemHash, AttemptNumber)
        if key is None:
            return failure("QP_UpdateAttemptOutcome needs WorkItemHash and AttemptNumber")
        row = self.attempts.get(key)
        if row is None:
            return envelope()  # as for work items: updating nothing is not an error
        _merge(row, Patch, "IDUVQueueWorkItemAttempt", "WorkItemHash", "AttemptNumber")
        return envelope()

    # --- Queue reads --------------------------------------------------------------------

    def QP_GetWorkItemByHash(self, WorkItemHash=None):
        row = self.work_items.get(WorkItemHash or "")
        return envelope(row is not None, WorkItem=_public(row) if row else None)

    def QP_ListWorkItems(self, Filter=None):
        flt = list_filter(WORK_ITEM, Filter, "QP_ListWorkItems")
        rows = order_rows([r for r in self.work_items.values() if matches(r, flt, WORK_ITEM)], flt["OrderBy"])
        return envelope(WorkItems=[_public(r) for r in rows[: flt["Limit"]]])

    def QP_GetEvents(self, WorkItemHash=None, Limit=None):
        from uvctl.journal import normalize_limit  # the same Limit rule as the lists

        rows = [r for r in self.events.values() if r.get("WorkItemHash") == WorkItemHash]
        rows.sort(key=lambda r: (r.get("Seq") or 0, r["IDUVQueueWorkItemEvent"]))
        return envelope(Events=[_public(r) for r in rows[: normalize_limit(Limit, "QP_GetEvents")]])

    # --- Manifests ----------------------------------------------------------------------

    def MS_UpsertManifest(self, Manifest=None):
        key = (Manifest or {}).get("Hash")
        if not key:
            return failure("MS_UpsertManifest needs Manifest.Hash (the natural key)")
        row = self._upsert(self.manifests, key, "IDUVManifest", Manifest)
        row["Deleted"] = False  # upserting a removed manifest brings it back
        return envelope(Manifest=_public(row))

    def MS_RemoveManifest(self, RunHash=None):
        if not RunHash:
            return failure("MS_RemoveManifest needs RunHash")
        row = self.manifests.get(RunHash)
        if row is None or row["Deleted"]:
            return envelope(AlreadyAbsent=True)  # replaying a removal is not an error
        row["Deleted"] = True
        return envelope()

    def MS_GetManifest(self, RunHash=None):
        row = self.manifests.get(RunHash or "")
        found = row is not None and not row["Deleted"]
        return envelope(found, Manifest=_public(row) if found else None)

    def MS_ListManifests(self, Filter=None):
        flt = list_filter(MANIFEST, Filter, "MS_ListManifests")
        rows = order_rows([r for r in self.manifests.values() if not r["Deleted"] and matches(r, flt, MANIFEST)], flt["OrderBy"])
        return envelope(Manifests=[_public(r) for r in rows[: flt["Limit"]]])

    def lookup(self, table: str, key: dict):
        """The row ID of a natural key in ``table``, or None (the ``uvctl_lookup`` hook)."""
        if table == "UVQueueWorkItem":
            row = self.work_items.get(key.get("WorkItemHash"))
        elif table == "UVQueueWorkItemEvent":
            row = self.events.get(key.get("EventGUID"))
        elif table == "UVQueueWorkItemAttempt":
            row = self.attempts.get(_attempt_key(key.get("WorkItemHash"), key.get("AttemptNumber")))
        elif table == "UVManifest":
            row = self.manifests.get(key.get("Hash"))
            row = None if row is None or row["Deleted"] else row
        else:
            return None
        return None if row is None else row[f"ID{table}"]


#: Settings keys that hold an object, and the natural keys (text, or a number) each action needs.
_OBJECTS = ("WorkItem", "Event", "Attempt", "Manifest", "Patch", "Filter")
_RECORD_KEYS = ("WorkItemHash", "EventGUID", "Hash", "RunHash", "AttemptNumber")


def _shape_problem(name: str, settings) -> str | None:
    """Why ``settings`` cannot be an action's Settings (rule 6: refused, nothing written), or None."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        return f"{name}: Settings must be an object, got {type(settings).__name__}"
    for key in _OBJECTS:
        value = settings.get(key)
        if value is not None and not isinstance(value, dict):
            return f"{name}: Settings.{key} must be an object, got {type(value).__name__}"
    records = [settings] + [settings[k] for k in _OBJECTS[:4] if isinstance(settings.get(k), dict)]
    for record in records:
        for key in _RECORD_KEYS:
            value = record.get(key)
            if value is not None and not is_key_value(value):
                return f"{name}: {key} must be text or a number, got {type(value).__name__}"
    key = READ_BY_KEY.get(name)
    if key is not None and not settings.get(key):
        return f"{name} needs {key}"
    return None


def _attempt_key(work_item_hash, attempt_number):
    if not work_item_hash or attempt_number is None or attempt_number == "":
        return None
    try:
        return (work_item_hash, int(attempt_number))
    except (TypeError, ValueError):
        return None


def _merge(row: dict, values: dict | None, *protected: str) -> None:
    """Copy ``values`` into ``row``, never touching the row ID or the natural key."""
    row.update({k: copy.deepcopy(v) for k, v in (values or {}).items() if k not in protected})


def _public(row: dict) -> dict:
    """A copy of ``row`` without the store's bookkeeping, safe to hand to callers."""
    return {k: copy.deepcopy(v) for k, v in row.items() if k != "Deleted"}


def _settings_for(method, settings: dict) -> dict:
    """Only the Settings keys the action takes (unknown keys are ignored, as upstream does)."""
    names = method.__code__.co_varnames[1 : method.__code__.co_argcount]
    return {name: settings[name] for name in names if name in (settings or {})}
