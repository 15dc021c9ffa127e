"""The bridge actions (Ultravisor's ``QP_*`` / ``MS_*``) as uvctl passes them around."""

from __future__ import annotations

from dataclasses import dataclass, field

QUEUE_WRITES = (
    "QP_UpsertWorkItem",
    "QP_UpdateWorkItem",
    "QP_AppendEvent",
    "QP_InsertAttempt",
    "QP_UpdateAttemptOutcome",
)
QUEUE_READS = ("QP_GetWorkItemByHash", "QP_ListWorkItems", "QP_GetEvents")
MANIFEST_WRITES = ("MS_UpsertManifest", "MS_RemoveManifest")
MANIFEST_READS = ("MS_GetManifest", "MS_ListManifests")

WRITE_ACTIONS = QUEUE_WRITES + MANIFEST_WRITES
READ_ACTIONS = QUEUE_READS + MANIFEST_READS
ALL_ACTIONS = WRITE_ACTIONS + READ_ACTIONS

#: Actions whose replay may hit an existing row and still count as delivered.
APPEND_ONLY = ("QP_AppendEvent", "QP_InsertAttempt")
#: The natural key of each append-only action's record: what a duplicate must be a duplicate of.
APPEND_ONLY_KEYS = {"QP_AppendEvent": ("EventGUID",), "QP_InsertAttempt": ("WorkItemHash", "AttemptNumber")}

#: The key each read answers in: a row (or None) for a lookup, a list for the others.
READ_RESULT_KEYS = {"QP_GetWorkItemByHash": "WorkItem", "QP_ListWorkItems": "WorkItems", "QP_GetEvents": "Events",
                    "MS_GetManifest": "Manifest", "MS_ListManifests": "Manifests"}
#: The reads by natural key, and the Settings key holding it.
READ_BY_KEY = {"QP_GetWorkItemByHash": "WorkItemHash", "QP_GetEvents": "WorkItemHash", "MS_GetManifest": "RunHash"}


#: Work-item Status values after which an item is done: a live Status (any other) arriving
#: later for the same attempt is stale state, never a change (docs/architecture.md).
WORK_ITEM_TERMINAL = ("Complete", "Error", "Canceled", "Stalled")
#: Manifest Status values of a finished run (finalize, abandon, a coordinator restart's Error).
MANIFEST_TERMINAL = ("Complete", "Failed", "Abandoned", "Error")
#: The content keys of a manifest: a replay (bootstrap-flush) sends all of them empty.
MANIFEST_CONTENT_KEYS = ("Output", "GlobalState", "OperationState", "TaskOutputs", "TaskManifests", "WaitingTasks",
                         "TimingSummary", "EventLog", "Errors", "Log")


def is_empty_value(value) -> bool:
    """True for ``None``, ``''``, ``{}`` and ``[]`` (what a manifest stub's fields hold)."""
    return value is None or (isinstance(value, (str, dict, list)) and not value)


def is_manifest_stub(manifest) -> bool:
    """True when ``manifest`` (as sent) is a stub: every one of :data:`MANIFEST_CONTENT_KEYS` is
    present and empty (null, ``{}`` or ``[]``). The coordinator's reconnect replay and a restart's
    ``Error`` mark send runs that way; a real persist point always carries some content."""
    return isinstance(manifest, dict) and all(
        key in manifest and is_empty_value(manifest[key]) for key in MANIFEST_CONTENT_KEYS)


def is_key_value(value) -> bool:
    """True when ``value`` may be a natural key's value: text or a whole number (not a bool,
    a list, an object); a backend refuses any other (rule 6)."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def read_empty(action_name: str) -> dict:
    """What a read answers with when it finds nothing or is refused: ``{"WorkItem": None}``,
    ``{"Events": []}`` (a new list each call), ...; ``{}`` for a write."""
    key = READ_RESULT_KEYS.get(action_name)
    if key is None:
        return {}
    return {key: [] if action_name in ("QP_ListWorkItems", "QP_GetEvents", "MS_ListManifests") else None}


#: The two bridges; each has its own assignment and high-water mark.
QUEUE = "Queue"
MANIFEST = "Manifest"
#: The mesh capability under which the coordinator dispatches each bridge's actions to a beacon.
CAPABILITY = {QUEUE: "QueuePersistence", MANIFEST: "ManifestStore"}


def bridge_of(action_name: str) -> str:
    """``Queue`` for a ``QP_*`` action, ``Manifest`` for ``MS_*``."""
    if action_name.startswith("QP_"):
        return QUEUE
    if action_name.startswith("MS_"):
        return MANIFEST
    raise ValueError(f"unknown action {action_name!r}")


@dataclass
class Action:
    """One bridge action: its name, its Settings, and its journal sequence once journaled.

    Settings follow Ultravisor's shapes (section 2 of the bridge reference), with every
    record already projected to UV schema columns:

    - ``QP_UpsertWorkItem`` ``{WorkItem}``; ``QP_UpdateWorkItem`` ``{WorkItemHash, Patch}``
    - ``QP_AppendEvent`` ``{Event}``; ``QP_InsertAttempt`` ``{Attempt}``
    - ``QP_UpdateAttemptOutcome`` ``{WorkItemHash, AttemptNumber, Patch}``
    - ``QP_GetWorkItemByHash`` ``{WorkItemHash}``; ``QP_ListWorkItems`` ``{Filter}``;
      ``QP_GetEvents`` ``{WorkItemHash, Limit}``
    - ``MS_UpsertManifest`` ``{Manifest}``; ``MS_RemoveManifest`` / ``MS_GetManifest``
      ``{RunHash}``; ``MS_ListManifests`` ``{Filter}``

    ``extra`` holds what a record carried beyond the UV columns, by the Settings key of the
    record: ``{"WorkItem": {"RequireAffinityMatch": false}}``, ``{"Patch": {"StalledAt": ...}}``
    (None when nothing). The journal keeps it; backends only ever get ``settings``.
    """

    name: str
    settings: dict = field(default_factory=dict)
    seq: int | None = None
    extra: dict | None = None

    @property
    def bridge(self) -> str:
        return bridge_of(self.name)

    @property
    def is_write(self) -> bool:
        return self.name in WRITE_ACTIONS

    def to_dict(self) -> dict:
        """The JSONL / wire form: ``{"Action", "Settings"}`` plus ``Seq`` when journaled."""
        out = {"Action": self.name, "Settings": self.settings}
        if self.seq is not None:
            out["Seq"] = self.seq
        return out


def envelope(success: bool = True, **fields) -> dict:
    """An Ultravisor bridge result: ``{Available: True, Success, ...fields}``."""
    return {"Available": True, "Success": success, **fields}


def failure(reason: str, **fields) -> dict:
    """A failed bridge result with its ``Reason``."""
    return {"Available": True, "Success": False, "Reason": reason, **fields}
