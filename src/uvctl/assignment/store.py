"""``persistence-assignment.json``: which backend each bridge is assigned to, and its state.

``{"Queue": entry | null, "Manifest": entry | null}``; an entry keeps Ultravisor's fields
(``BeaconID``, ``IDBeaconConnection``, ``AssignedAt``) plus ``Backend``, ``Options``,
``State``, ``LastError`` and ``BootstrappedAt``. Written atomically (0600) under a file lock;
a corrupt file is an error naming it, never a silent reset.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..actions import MANIFEST, QUEUE
from ..backend import STATES
from ..errors import UsageError, UvctlError
from ..statefile import file_lock, read_json, write_json
from ..timestamps import now_iso

BRIDGES = (QUEUE, MANIFEST)
WHAT = "assignment file"
ENTRY_FIELDS = ("BeaconID", "IDBeaconConnection", "AssignedAt", "Backend", "Options", "State", "LastError", "BootstrappedAt")


def path() -> Path:
    """``<data dir>/persistence-assignment.json``."""
    from ..paths import ASSIGNMENT_FILE, data_file

    return data_file(ASSIGNMENT_FILE)


def check_bridges(bridges) -> tuple:
    """``bridges`` as a tuple of known bridge names, or a UsageError."""
    bridges = tuple(bridges)
    bad = [b for b in bridges if b not in BRIDGES]
    if bad or not bridges:
        raise UsageError(f"unknown bridge(s) {', '.join(map(repr, bad)) or 'none'}; use {', '.join(BRIDGES)}")
    return bridges


_MISSING = object()


def load() -> dict:
    """``{"Queue": entry|None, "Manifest": entry|None}`` from the file (both None when absent)."""
    file = path()
    data = read_json(file, default=_MISSING, what=WHAT)
    if data is _MISSING:
        return {bridge: None for bridge in BRIDGES}
    problem = _problem(data)
    if problem:
        raise UvctlError(
            f"{WHAT} {file} is corrupt ({problem}); fix or delete it by hand, then run 'uvctl persistence assign' again"
        )
    return {bridge: data.get(bridge) for bridge in BRIDGES}


def _problem(data) -> str | None:
    if not isinstance(data, dict):
        return f"expected an object with Queue and Manifest, got {'null' if data is None else type(data).__name__}"
    missing = [bridge for bridge in BRIDGES if bridge not in data]
    if missing:
        return f"it has no {' and no '.join(missing)} entry (null when unassigned)"
    for bridge in BRIDGES:
        entry = data.get(bridge)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            return f"{bridge} must be an object or null"
        if not isinstance(entry.get("Backend"), str) or not entry["Backend"]:
            return f"{bridge} has no Backend name"
        if not isinstance(entry.get("Options", {}), dict):
            return f"{bridge}.Options must be an object"
        if entry.get("State") not in (None, *STATES):
            return f"{bridge}.State {entry.get('State')!r} is not one of {', '.join(STATES)}"
    return None


@contextlib.contextmanager
def editing():
    """Read-modify-write the file under its lock: ``with editing() as doc: doc["Queue"] = ...``."""
    file = path()
    with file_lock(file, what=WHAT):
        doc = load()
        before = {bridge: dict(entry) if entry else None for bridge, entry in doc.items()}
        yield doc
        if doc != before:
            write_json(file, {bridge: doc.get(bridge) for bridge in BRIDGES}, what=WHAT)


def same_assignment(a: dict | None, b: dict | None) -> bool:
    """True when two entries are the same assignment (backend, options, assignment time)."""
    if not a or not b:
        return False
    return all(a.get(k) == b.get(k) for k in ("Backend", "Options", "AssignedAt"))
