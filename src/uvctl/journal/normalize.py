"""Validate a bridge action and project its records onto the UV schema columns.

Ultravisor sends objects where the schema has JSON text, and fields that are not columns
(section 2.5 of the bridge reference). Here every record becomes a dict of UV columns:

- objects and lists → compact JSON text; ``None`` → ``''`` / ``0`` / ``False`` by column type;
- renamed fields: work item ``CreatedAt`` → ``EnqueuedAt`` (only when ``EnqueuedAt`` is empty);
  attempt ``DispatchedAt`` → ``StartedAt`` (only when ``StartedAt`` is empty),
  ``CompletedAt`` → ``EndedAt``, ``ErrorMessage`` → ``Error``;
- every other field, a non-column one (``RequireAffinityMatch``, ``StalledAt``, ``DurationMs``,
  an event's ``RunID``, ``IDBeaconWorkItem``, ...) or a renamed one (``CreatedAt``,
  ``ErrorMessage``, ...), is kept as sent in :attr:`Action.extra` (``{"WorkItem": {...}}``,
  ``{"Patch": {...}}``): the journal stores it beside the row and returns it in its reads,
  backends never see it. It never fails the write. A manifest keeps them all inside
  ``ManifestJSON`` instead (the whole manifest as sent, unless ``ManifestJSON`` is given);
  the managed columns (``CreateDate``, ``IDUV...``) are the backend's and are dropped;
- ``QueueMetadata`` inside a work item's (or a patch's) ``Settings`` is stripped: the
  scheduler injects it, the live bridge traffic carries it (:func:`without_queue_metadata`);
- events get ``EventGUID`` when it is missing or empty: an event replayed from the
  coordinator's local store (it carries its row id ``IDBeaconWorkItemEvent``) the one the
  data-dir import gives that row (:func:`local_event_guid`) and ``Seq = IDBeaconWorkItemEvent``,
  so reconnect replays and a later import add nothing; any other a new time-ordered one
  (:func:`new_event_guid`). ``EmittedAt`` (now, ISO-8601 UTC with ms) is filled when it is
  missing or null (an explicit ``''`` means "unknown" and is kept: the data-dir import uses
  it). A missing or 0 ``Seq`` needs the journal, so :meth:`Journal.record` fills it with the
  item's highest ``Seq`` + 1.

Whole records (upserts, inserts) are completed with the descriptor's ``DefaultObject``:
an upsert *replaces* the record. Patches stay sparse and never touch the natural key.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from functools import lru_cache

from ..actions import ALL_ACTIONS, Action
from ..errors import UsageError, excerpt
from ..timestamps import now_iso
from .columns import ATTEMPT, EVENT, MANIFEST, MAX_TEXT, WORK_ITEM, table
from .filters import normalize_filter, normalize_limit

#: Write actions carrying one whole record: action → (table, Settings key).
RECORD_ACTIONS = {
    "QP_UpsertWorkItem": (WORK_ITEM, "WorkItem"),
    "QP_AppendEvent": (EVENT, "Event"),
    "QP_InsertAttempt": (ATTEMPT, "Attempt"),
    "MS_UpsertManifest": (MANIFEST, "Manifest"),
}
#: Write actions carrying a sparse ``Patch`` of the record named by a natural key.
PATCH_ACTIONS = {
    "QP_UpdateWorkItem": WORK_ITEM,
    "QP_UpdateAttemptOutcome": ATTEMPT,
}

#: The range of an ``Integer`` column: INT (32-bit signed) on PostgreSQL, MySQL/MariaDB and SQL Server.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: Columns a record cannot do without: never dropped, always an error when unusable.
_REQUIRED = {WORK_ITEM: ("WorkItemHash",), EVENT: ("WorkItemHash", "EventGUID"),
             ATTEMPT: ("WorkItemHash", "AttemptNumber"), MANIFEST: ("Hash",)}
#: (field Ultravisor sends, UV column it means): applied when the column itself is empty.
_ALIASES = {
    WORK_ITEM: (("CreatedAt", "EnqueuedAt"),),
    ATTEMPT: (("DispatchedAt", "StartedAt"), ("CompletedAt", "EndedAt"), ("ErrorMessage", "Error")),
}


#: Namespace of the deterministic EventGUIDs and source keys minted for replayed and imported records.
IMPORT_NAMESPACE = uuid.UUID("5b0f5cc4-7d5a-4b8e-9a57-2f3c0b7f0e11")


def local_event_guid(work_item_hash: str, row_id, event_type) -> str:
    """The EventGUID of the coordinator's local-store event row ``row_id`` (its
    ``IDBeaconWorkItemEvent``): the same whether the row comes from a data-dir import, the
    coordinator's history or its reconnect replay, so the event is journaled once."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"beacon-queue|{work_item_hash}|{row_id}|{(event_type or '').lower()}"))


def without_queue_metadata(item: dict) -> dict:
    """The work item (or patch) without the ``QueueMetadata`` the scheduler injects into its ``Settings``.

    ``Settings`` may be JSON text (a data directory, the coordinator's history) or an object;
    text that is not JSON stays as it is. ``item`` itself is never changed.
    """
    settings = item.get("Settings")
    if isinstance(settings, str) and "QueueMetadata" in settings:
        try:
            settings = json.loads(settings)
        except ValueError:
            return item
    if isinstance(settings, dict) and "QueueMetadata" in settings:
        return {**item, "Settings": {k: v for k, v in settings.items() if k != "QueueMetadata"}}
    return item


def to_json_text(value) -> str:
    """Compact JSON text, as ``JSON.stringify`` writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def normalize_action(name: str, settings, warnings: list | None = None, notes: list | None = None) -> Action:
    """Validate ``settings`` of the bridge action ``name`` and project its records to UV columns.

    Raises :class:`UsageError` for an unknown action, settings that are not an object, or a
    missing natural key (``WorkItemHash``, ``AttemptNumber``, ``Hash``, ``RunHash``).
    A column value that cannot be stored (``Priority: "high"``, a text longer than its
    column) is a UsageError too, unless ``warnings`` is a list: then that field is dropped
    (a whole record gets the column's default) and the problem is appended to the list, so
    the write itself never fails. Natural keys are never dropped.

    A value stored other than it was sent (``Priority: 1.5`` as 2, ``true`` as 1, text with
    NUL characters, which PostgreSQL cannot hold, without them) is kept, and described in
    ``notes`` (default: ``warnings``): the record matters more than the exact value, and the
    change must be seen.
    """
    if notes is None:
        notes = warnings
    if name not in ALL_ACTIONS:
        raise UsageError(f"unknown bridge action {excerpt(name)}; known actions: {', '.join(ALL_ACTIONS)}")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise UsageError(f"{name}: Settings must be a JSON object, got {type(settings).__name__}")
    if name in RECORD_ACTIONS:
        table_name, key = RECORD_ACTIONS[name]
        record = _object(name, settings, key)
        if table_name == WORK_ITEM:
            record = without_queue_metadata(record)
        projected = project_record(name, table_name, record, warnings, notes)
        kept = None if table_name == MANIFEST and "ManifestJSON" not in record else extra_fields(table_name, record)
        return Action(name, {key: projected}, extra={key: kept} if kept else None)
    if name in PATCH_ACTIONS:
        table_name = PATCH_ACTIONS[name]
        out = {col: _key(name, table_name, col, settings.get(col)) for col in table(table_name).key}
        patch = _object(name, settings, "Patch")
        if table_name == WORK_ITEM:
            patch = without_queue_metadata(patch)
        out["Patch"] = project_patch(name, table_name, patch, warnings, notes)
        kept = extra_fields(table_name, patch)
        return Action(name, out, extra={"Patch": kept} if kept else None)
    if name in ("MS_RemoveManifest", "MS_GetManifest"):
        return Action(name, {"RunHash": _key(name, MANIFEST, "RunHash", settings.get("RunHash"))})
    if name == "QP_GetWorkItemByHash":
        return Action(name, {"WorkItemHash": _key(name, WORK_ITEM, "WorkItemHash", settings.get("WorkItemHash"))})
    if name == "QP_GetEvents":
        hash_ = _key(name, WORK_ITEM, "WorkItemHash", settings.get("WorkItemHash"))
        return Action(name, {"WorkItemHash": hash_, "Limit": normalize_limit(settings.get("Limit"), name)})
    kind = WORK_ITEM if name == "QP_ListWorkItems" else MANIFEST
    return Action(name, {"Filter": normalize_filter(kind, settings.get("Filter"), name)})


_guid_lock = threading.Lock()
_guid_last = [0, 0]  # [ms timestamp, 12-bit counter] of the last generated GUID


def new_event_guid() -> str:
    """A new event GUID: a UUIDv7 layout (RFC 9562), 48-bit ms timestamp, counter, 62 random bits.

    Time-ordered so that the journal's unique ``EventGUID`` index grows at its right edge
    instead of touching a random page per insert. Within a process the GUIDs strictly
    increase: in the same millisecond a 12-bit counter (started at a random value below
    2048) counts up, and when it overflows the timestamp moves one ms ahead.
    """
    rand = int.from_bytes(os.urandom(10), "big")  # 11 bits start the counter, 62 fill the tail
    now = time.time_ns() // 1_000_000
    with _guid_lock:
        ms, counter = _guid_last
        if now > ms:
            ms, counter = now, rand >> 69  # below 2048: room to count up
        elif counter < 0xFFF:
            counter += 1
        else:
            ms, counter = ms + 1, 0
        _guid_last[:] = ms, counter
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def project_record(action: str, table_name: str, record: dict, warnings: list | None = None,
                   notes: list | None = None) -> dict:
    """A whole record of ``table_name``: given columns coerced, the rest from DefaultObject."""
    spec = table(table_name)
    projected = _project(action, table_name, record, warnings, notes)
    if table_name == MANIFEST and "ManifestJSON" not in record:
        projected["ManifestJSON"] = to_json_text(record)
        if len(projected["ManifestJSON"]) > spec.sizes.get("ManifestJSON", MAX_TEXT):
            _too_long(action, table_name, "ManifestJSON", projected["ManifestJSON"])
    if table_name == EVENT:
        row_id = record.get("IDBeaconWorkItemEvent")
        if not projected.get("EventGUID") and type(row_id) is int:  # replayed from the local store
            hash_ = _key(action, table_name, "WorkItemHash", record.get("WorkItemHash"))
            projected["EventGUID"] = local_event_guid(hash_, row_id, projected.get("EventType"))
            if not projected.get("Seq"):
                projected["Seq"] = _to_number(action, "Seq", row_id, int)
        elif not projected.get("EventGUID"):
            projected["EventGUID"] = new_event_guid()
        else:  # a sent GUID is a natural key like any other
            projected["EventGUID"] = _key(action, table_name, "EventGUID", projected["EventGUID"])
        if record.get("EmittedAt") is None:
            projected["EmittedAt"] = now_iso()
        if not projected.get("Seq"):
            projected.pop("Seq", None)  # the journal assigns the next one for the work item
    required = ("WorkItemHash",) if table_name == EVENT else spec.key
    for col in required:
        projected[col] = _key(action, table_name, col, record.get(col))
    full = {col: value for col, value in spec.defaults.items() if not (table_name == EVENT and col == "Seq")}
    full.update(projected)
    return full


def extra_fields(table_name: str, record: dict) -> dict:
    """The fields of ``record`` that are no column of ``table_name`` (managed ones aside), as sent."""
    spec = table(table_name)
    return {k: v for k, v in record.items() if k not in spec.types and k not in spec.managed}


def project_patch(action: str, table_name: str, patch: dict, warnings: list | None = None,
                  notes: list | None = None) -> dict:
    """A sparse patch of ``table_name``: only the given columns, coerced; keys cannot change."""
    projected = _project(action, table_name, patch, warnings, notes)
    for col in table(table_name).key:
        projected.pop(col, None)
    return projected


def _project(action: str, table_name: str, record: dict, warnings: list | None = None,
             notes: list | None = None) -> dict:
    aliases = _ALIASES.get(table_name)
    if aliases:
        record = dict(record)
        for source, target in aliases:
            if source in record:
                value = record.pop(source)
                if record.get(target) in (None, ""):
                    record[target] = value
    coercers = _coercers(table_name)
    sizes = table(table_name).sizes
    out = {}
    for col, value in record.items():
        convert = coercers.get(col)
        if convert is None:
            continue
        try:
            sent, value = value, value if type(value) is str and convert is _to_text else convert(action, col, value)
            if notes is not None and convert in (_to_int, _to_float) and _changed(sent, value):
                shown = json.dumps(sent) if isinstance(sent, bool) else excerpt(sent)
                notes.append(f"{action}: {col} {shown} was stored as {value!r} (its column holds "
                             f"{'whole numbers' if convert is _to_int else 'numbers'})")
            if type(value) is str:
                if len(value) > sizes.get(col, MAX_TEXT):
                    _too_long(action, table_name, col, value)
                if "\x00" in value:  # PostgreSQL text cannot hold it: the record would fail every flush
                    value = value.replace("\x00", "")
                    if notes is not None:
                        notes.append(f"{action}: {col} held NUL characters (U+0000), which databases such as "
                                        f"PostgreSQL cannot store; they were removed")
        except UsageError as exc:
            if warnings is None or col in _REQUIRED[table_name]:
                raise
            warnings.append(f"{exc}; the field was dropped")
            continue
        out[col] = value
    return out


def _changed(sent, stored) -> bool:
    """True when a number column stores other than the value sent: ``1.5`` as 2, ``true`` as 1
    (text such as ``"2"`` for 2, and nothing for 0, are the same value)."""
    if isinstance(sent, bool):
        return True
    if isinstance(sent, str):
        if not sent.strip():
            return False
        sent = float(sent)
    return isinstance(sent, (int, float)) and sent != stored


def _too_long(action: str, table_name: str, col: str, value: str):
    """A value longer than its column: refused here, since a backend would refuse it at every flush."""
    limit = table(table_name).sizes.get(col, MAX_TEXT)
    raise UsageError(f"{action}: {col} is {len(value)} characters long, the {table_name} column holds at most "
                     f"{limit}; shorten it")


@lru_cache(maxsize=None)
def _coercers(table_name: str) -> dict:
    """Per column of ``table_name``, the function turning a sent value into the column's type."""
    spec = table(table_name)
    out = {}
    for col, col_type in spec.types.items():
        if spec.is_boolean(col):
            out[col] = _to_bool
        elif col_type == "Integer":
            out[col] = _to_int
        elif col_type == "Float":
            out[col] = _to_float
        else:
            out[col] = _to_text
    return out


def _to_text(action, col, value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, bool)):
        return to_json_text(value)
    return str(value)


def _to_int(action, col, value) -> int:
    return _to_number(action, col, value, int)


def _to_float(action, col, value) -> float:
    return _to_number(action, col, value, float)


def _to_bool(action, col, value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("", "0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise UsageError(f"{action}: {col} must be true/false or 0/1, got {excerpt(value)}")


def _to_number(action, col, value, kind):
    if value is None or value == "":
        return kind(0)
    if isinstance(value, bool):
        return kind(value)
    try:
        number = float(value) if isinstance(value, str) else value
        if not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"{action}: {col} must be a number, got {excerpt(value)}") from None
    if kind is float:
        return float(number)
    number = int(round(number))
    if not INT_MIN <= number <= INT_MAX:
        # Refused here, like an over-long text: the journal's SQLite would take it, but every
        # engine's INT column refuses it, so it would stop every later flush at this record.
        raise UsageError(f"{action}: {col} is {excerpt(number)}, outside the range of its INT column "
                         f"({INT_MIN}..{INT_MAX}); send a smaller number")
    return number


def _key(action: str, table_name: str, col: str, value):
    if col == "AttemptNumber":
        if value is None or value == "" or isinstance(value, bool):
            raise UsageError(f"{action}: AttemptNumber is required (an integer); add it to the Settings")
        number = _to_number(action, col, value, int)
        if _changed(value, number):  # 1.5 taken for 2 would overwrite attempt 2
            raise UsageError(f"{action}: AttemptNumber must be a whole number, got {excerpt(value)}")
        if number < 0:
            raise UsageError(f"{action}: AttemptNumber must be >= 0, got {excerpt(value)}")
        return number
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{action}: {col} is required (a non-empty string); add it to the Settings")
    if not value.isprintable():
        raise UsageError(f"{action}: {col} {excerpt(value)} contains control characters; a natural key must be "
                         f"printable text")
    if "~" in value:
        # meadow's REST filters (a databeacon backend) split on '~': such a record could never
        # be delivered there and would hold back every later record of its bridge for good
        raise UsageError(f"{action}: {col} {excerpt(value)} contains '~', which a natural key may not hold "
                         f"(meadow's filters cannot look it up); Ultravisor's own keys never do")
    limit = table(table_name).sizes.get(col if col != "RunHash" else "Hash", MAX_TEXT)
    if len(value) > limit:
        _too_long(action, table_name, col if col != "RunHash" else "Hash", value)
    return value


def _object(action: str, settings: dict, key: str) -> dict:
    value = settings.get(key)
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise UsageError(f"{action}: Settings.{key} must be a JSON object, got {got}")
    return value
