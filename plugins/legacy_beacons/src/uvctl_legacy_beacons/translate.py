"""Bridge actions ↔ the work items of Ultravisor's older persistence beacons.

Upstream dispatched each ``QP_*`` action as the work item ``QueuePersistence/<action>`` and
each ``MS_*`` action as ``ManifestStore/<action>``, with the Settings below (reference
section 2.1 / 2.2), and answered ``{Available: true, ...Outputs}``. This module is pure:
no network, so it is tested on its own.
"""

from __future__ import annotations

from uvctl.actions import APPEND_ONLY_KEYS, CAPABILITY, QUEUE, envelope, failure, read_empty
from uvctl.conflicts import is_key_conflict

#: The Settings keys each action sends, with the default upstream sends for a missing one.
SETTINGS = {
    "QP_UpsertWorkItem": {"WorkItem": None},
    "QP_UpdateWorkItem": {"WorkItemHash": None, "Patch": None},
    "QP_AppendEvent": {"Event": None},
    "QP_InsertAttempt": {"Attempt": None},
    "QP_UpdateAttemptOutcome": {"WorkItemHash": None, "AttemptNumber": None, "Patch": None},
    "QP_GetWorkItemByHash": {"WorkItemHash": None},
    "QP_ListWorkItems": {"Filter": {}},
    "QP_GetEvents": {"WorkItemHash": None, "Limit": 0},
    "MS_UpsertManifest": {"Manifest": None},
    "MS_RemoveManifest": {"RunHash": None},
    "MS_GetManifest": {"RunHash": None},
    "MS_ListManifests": {"Filter": {}},
}

#: What must be present before anything is sent: (Settings path, what to call it).
REQUIRED = {
    "QP_UpsertWorkItem": (("WorkItem", "WorkItemHash"),),
    "QP_UpdateWorkItem": (("WorkItemHash",),),
    "QP_AppendEvent": (("Event", "EventGUID"), ("Event", "WorkItemHash")),
    "QP_InsertAttempt": (("Attempt", "WorkItemHash"), ("Attempt", "AttemptNumber")),
    "QP_UpdateAttemptOutcome": (("WorkItemHash",), ("AttemptNumber",)),
    "QP_GetWorkItemByHash": (("WorkItemHash",),),
    "QP_GetEvents": (("WorkItemHash",),),
    "MS_UpsertManifest": (("Manifest", "Hash"),),
    "MS_RemoveManifest": (("RunHash",),),
    "MS_GetManifest": (("RunHash",),),
}


#: Events read back to confirm a duplicate (the most a read may ask for).
READ_BACK_LIMIT = 5000


def work_item(action_name: str, settings: dict) -> tuple[str, dict] | dict:
    """``(Capability, Settings)`` to dispatch, or a failed envelope when the action cannot be sent."""
    if action_name not in SETTINGS:
        return failure(f"unknown action {action_name!r}; the legacy beacons know {', '.join(SETTINGS)}")
    settings = settings or {}
    for path in REQUIRED.get(action_name, ()):
        value = settings
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or value == "":
            return failure(f"{action_name} needs Settings.{'.'.join(path)}")
    shaped = {key: settings.get(key) if settings.get(key) is not None else default for key, default in SETTINGS[action_name].items()}
    capability = CAPABILITY[QUEUE] if action_name.startswith("QP_") else CAPABILITY["Manifest"]
    return capability, shaped


def from_outputs(action_name: str, outputs: dict) -> dict:
    """The envelope for a completed work item: upstream's ``{Available: true, ...Outputs}``.

    A beacon that leaves ``Success`` out completed the item, so it counts as success,
    except for a lookup that found nothing. Reads always carry their list or row key.
    """
    result = envelope(**{**read_empty(action_name), **(outputs or {})})
    if "Success" not in (outputs or {}):
        lookup_key = {"QP_GetWorkItemByHash": "WorkItem", "MS_GetManifest": "Manifest"}.get(action_name)
        result["Success"] = bool(result.get(lookup_key)) if lookup_key else True
    result["Available"] = True
    return result


def is_duplicate(action_name: str, message: str) -> bool:
    """True when a beacon error says the event or attempt is already stored: a unique
    violation of its natural key, not any other constraint (NOT NULL, FOREIGN KEY, ...)."""
    return action_name in APPEND_ONLY_KEYS and is_key_conflict(message, APPEND_ONLY_KEYS[action_name])


def holds_event(stored: list, event: dict) -> bool:
    """True when ``stored`` (the QP_GetEvents answer for the event's work item) holds an event
    with its EventGUID: the stored one wins, as on every backend (its content is not compared)."""
    return any(isinstance(row, dict) and row.get("EventGUID") == event.get("EventGUID") for row in stored)


def from_error(action_name: str, message: str, beacon: str) -> dict:
    """The envelope for a beacon error (never a success: see :func:`is_duplicate`)."""
    return failure(f"beacon {beacon!r} failed {action_name}: {message}", **read_empty(action_name))


def beacon_missing(reason: str) -> dict:
    """The envelope when the beacon is gone: nothing was sent; bootstrap must run again."""
    return {"Available": False, "Success": False, "NeedsBootstrap": True, "Reason": reason}
