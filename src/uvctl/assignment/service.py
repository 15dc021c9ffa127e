"""Assign backends to bridges, bootstrap them, and report their state.

The state machine of an assigned bridge: ``waiting-for-beacon`` right after assign (or when
the backend cannot be reached yet), ``bootstrapping`` while its ``uvctl_bootstrap`` hook
runs, then ``bootstrapped`` or ``error`` (with ``LastError``). A bridge with no entry is
``unassigned``. Both bridges assigned to the same backend share one bootstrap.

A bootstrapped backend that a delivery cannot reach goes back to ``waiting-for-beacon``
with the reason in ``LastError`` (:func:`mark_unreachable`); bridge writes then stay in the
journal without waiting on it, and try to bootstrap it again every :data:`RETRY_SECONDS`
(:func:`due_for_retry`), as ``uvctl persistence status`` and ``uvctl flush`` do at once.
"""

from __future__ import annotations

import json

from ..errors import UsageError, UvctlError, mask_secrets, mask_url
from .store import BRIDGES, check_bridges, editing, load, now_iso, same_assignment

_handles: dict = {}
#: Seconds between a bridge write's attempts to bootstrap a backend it could not reach.
RETRY_SECONDS = 15.0


def resolve_options(info, given: dict) -> dict:
    """The options of backend ``info`` from ``given``: checked, defaults filled, validated."""
    specs = {spec.name: spec for spec in info.options}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        flags = ", ".join(spec.flag for spec in info.options) or "none"
        raise UsageError(f"backend {info.name!r} has no option {', '.join(unknown)}; its options: {flags}")
    options = {}
    for name, spec in specs.items():
        value = given.get(name)
        if value is None:
            value = spec.default() if callable(spec.default) else spec.default
        if value is None:
            if spec.required:
                raise UsageError(f"backend {info.name!r} needs {spec.flag}: {spec.help}")
            continue
        if spec.is_flag:
            value = bool(value)
        if spec.choices and value not in spec.choices:
            raise UsageError(f"{spec.flag} must be one of {', '.join(spec.choices)}, got {value!r}")
        options[name] = value
    if info.validate is not None:
        try:
            info.validate(options)
        except UvctlError:
            raise
        except Exception as exc:
            raise UsageError(f"backend {info.name!r} rejected its options: {mask_secrets(str(exc))}") from None
    return options


def masked_options(backend_name: str, options: dict) -> dict:
    """``options`` safe to print: secret values masked (URLs keep everything but the password)."""
    from .. import host

    secret = {spec.name for spec in host.backends()[backend_name].options if spec.secret} \
        if backend_name in host.backends() else set(options)
    out = {}
    for name, value in (options or {}).items():
        if name in secret and isinstance(value, str):
            out[name] = mask_url(value) if "://" in value else "***"
        else:
            out[name] = mask_secrets(value) if isinstance(value, str) else value
    return out


def assign(backend_name: str, options: dict, bridges=BRIDGES) -> dict:
    """Assign ``backend_name`` configured with ``options`` to ``bridges``; the new entries."""
    from .. import host

    bridges = check_bridges(bridges)
    info = host.backend_info(backend_name)
    resolved = resolve_options(info, {k: v for k, v in (options or {}).items() if v is not None})
    entry = {
        "BeaconID": resolved.get("BeaconID"),
        "IDBeaconConnection": resolved.get("IDBeaconConnection") or 0,
        "AssignedAt": now_iso(),
        "Backend": backend_name,
        "Options": resolved,
        "State": "waiting-for-beacon",
        "LastError": None,
        "BootstrappedAt": None,
    }
    with editing() as doc:
        for bridge in bridges:
            doc[bridge] = dict(entry)
        assigned = [doc[b] for b in BRIDGES if doc.get(b)]
    close_unused_handles(assigned)
    return {bridge: dict(entry) for bridge in bridges}


def clear(bridges=BRIDGES) -> None:
    """Drop the assignment of ``bridges`` (their journal records stay pending)."""
    bridges = check_bridges(bridges)
    with editing() as doc:
        for bridge in bridges:
            doc[bridge] = None
        assigned = [doc[b] for b in BRIDGES if doc.get(b)]
    close_unused_handles(assigned)


def _handle_key(entry: dict) -> tuple:
    from ..paths import data_dir

    return entry["Backend"], json.dumps(entry.get("Options") or {}, sort_keys=True, default=str), str(data_dir())


def close_unused_handles(assigned: list) -> None:
    """Close (``uvctl_close``) the cached handles no entry of ``assigned`` uses any more:
    a process that reassigns or clears releases the old backend's engines and clients."""
    keep = {_handle_key(entry) for entry in assigned}
    for key in [key for key in _handles if key not in keep]:
        _close(_handles.pop(key))


def close_all_handles() -> None:
    """Close every cached handle (at exit)."""
    while _handles:
        _close(_handles.popitem()[1])


def _close(handle) -> None:
    from .. import host

    try:
        host.close(handle)
    except Exception:  # a plugin failing to release must not fail the command that is ending
        pass


def _handle(entry: dict):
    from .. import host

    key = _handle_key(entry)
    handle = _handles.get(key)
    if handle is None:
        if entry["Backend"] not in host.backends():
            from .store import path

            raise UsageError(f"backend {entry['Backend']!r} of the assignment in {path()} is not installed (was its "
                             f"plugin removed?); reinstall that plugin, or assign another backend with 'uvctl persistence "
                             f"assign' (the journal keeps every record meanwhile)")
        try:  # the file may have been edited by hand: its options get the checks 'assign' gives them
            resolve_options(host.backend_info(entry["Backend"]), entry.get("Options") or {})
        except UsageError as exc:
            from .store import path

            raise UsageError(f"the assignment in {path()} is not valid: {exc}; run 'uvctl persistence assign' again") from None
        handle = host.open_backend(entry["Backend"], entry.get("Options") or {})
        if not _handles:  # the first handle of the process (or since all were closed)
            import atexit

            atexit.unregister(close_all_handles)
            atexit.register(close_all_handles)
        _handles[key] = handle
    return handle


def backend_for(bridge: str, bootstrap: bool = False):
    """The handle of the backend assigned to ``bridge``, or None when unassigned.

    With ``bootstrap=True``, run the backend's bootstrap when its state is not
    ``bootstrapped``, record the outcome, and return None unless it is bootstrapped.
    """
    check_bridges([bridge])
    entry = load()[bridge]
    if entry is None:
        return None
    handle = _handle(entry)
    if not bootstrap or entry.get("State") == "bootstrapped":
        return handle
    return handle if _bootstrap(bridge, entry, handle) == "bootstrapped" else None


def _bootstrap(bridge: str, entry: dict, handle) -> str:
    """Run the bootstrap hook once for every bridge sharing this assignment; the new state."""
    from .. import host

    with editing() as doc:
        sharing = [b for b in BRIDGES
                   if doc[b] and doc[b].get("Backend") == entry["Backend"] and doc[b].get("Options") == entry.get("Options")]
        for b in sharing:
            doc[b]["State"] = "bootstrapping"
            doc[b]["CheckedAt"] = now_iso()
        snapshot = {b: dict(doc[b]) for b in sharing}
    result = host.bootstrap(handle)
    with editing() as doc:
        for b in sharing:
            if not same_assignment(doc[b], snapshot[b]):
                continue  # reassigned meanwhile: that assignment has its own state
            doc[b]["State"] = result.state
            doc[b]["LastError"] = mask_secrets(result.reason) if result.reason else None
            doc[b]["BootstrappedAt"] = now_iso() if result.state == "bootstrapped" else None
            doc[b]["CheckedAt"] = now_iso()
    return result.state


def mark_needs_bootstrap(bridge: str, reason: str) -> None:
    """A dispatch answer said the backend lost readiness: bootstrap again before the next write."""
    check_bridges([bridge])
    with editing() as doc:
        entry = doc[bridge]
        if entry is not None:
            entry["State"] = "waiting-for-beacon"
            entry["LastError"] = mask_secrets(reason)
            entry["CheckedAt"] = None  # reachable: the next write bootstraps it at once


def mark_unreachable(bridge: str, reason: str) -> None:
    """A delivery could not reach the backend: ``waiting-for-beacon`` with the reason, until
    a bootstrap (a later write, a status or a flush) reaches it again."""
    check_bridges([bridge])
    reason = mask_secrets(reason)
    if (load()[bridge] or {}).get("LastError") == reason:
        return  # already recorded: no rewrite of the file on every write while it is down
    with editing() as doc:
        entry = doc[bridge]
        if entry is not None and entry.get("State") in ("bootstrapped", "waiting-for-beacon"):
            entry["State"] = "waiting-for-beacon"
            entry["LastError"] = reason
            entry["CheckedAt"] = now_iso()


def due_for_retry(entry: dict) -> bool:
    """True when ``entry`` waits for its backend and its last attempt is RETRY_SECONDS old, or
    is stuck in ``bootstrapping`` (the process running it was killed) for ten times as long."""
    state = entry.get("State")
    if state not in ("waiting-for-beacon", "bootstrapping"):
        return False
    checked = entry.get("CheckedAt")
    if not isinstance(checked, str):
        return True
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(checked.replace("Z", "+00:00"))
    except ValueError:
        return True
    waited = (datetime.now(timezone.utc) - when).total_seconds()
    return waited >= (RETRY_SECONDS if state == "waiting-for-beacon" else 10 * RETRY_SECONDS)


def status(journal=None, bootstrap: bool = True) -> dict:
    """Per bridge: State, LastError, AssignedAt, BootstrappedAt, Backend, Identity,
    HighWaterMark, Pending (plus BeaconID, IDBeaconConnection and masked Options).

    With ``bootstrap`` (the default) a bridge that is not bootstrapped is bootstrapped now.
    """
    from ..flush import HighWaterMarks

    out = {}
    marks = None
    tried: set = set()
    for bridge in BRIDGES:
        entry = load()[bridge]
        if entry is None:
            out[bridge] = {"State": "unassigned", "LastError": None, "AssignedAt": None, "BootstrappedAt": None,
                           "Backend": None, "Identity": None, "HighWaterMark": None,
                           "Pending": journal.pending(bridge, 0) if journal is not None else None,
                           "BeaconID": None, "IDBeaconConnection": None, "Options": None}  # the keys of an assigned one
            continue
        identity = None
        try:
            handle = backend_for(bridge, bootstrap=False)
            identity = handle.identity
            shared = json.dumps([entry["Backend"], entry.get("Options")], sort_keys=True, default=str)
            if bootstrap and entry.get("State") != "bootstrapped" and shared not in tried:
                tried.add(shared)  # one bootstrap per backend per status, for both bridges
                backend_for(bridge, bootstrap=True)
            entry = load()[bridge] or entry
        except UsageError as exc:  # the backend's plugin is gone, or its options no longer fit
            entry = {**entry, "State": "error", "LastError": str(exc)}
        marks = marks or HighWaterMarks(journal=journal)
        mark = marks.get(bridge, identity) if identity else None
        last_error = entry.get("LastError")
        if entry.get("State") == "bootstrapping" and due_for_retry(entry):  # its process is gone
            last_error = (f"{last_error}; " if last_error else "") + (
                f"the bootstrap started at {entry.get('CheckedAt')} never finished (its process stopped); "
                f"'uvctl persistence status' without --no-bootstrap runs it again")
        out[bridge] = {
            "State": entry.get("State") or "waiting-for-beacon",
            "LastError": last_error,
            "AssignedAt": entry.get("AssignedAt"),
            "BootstrappedAt": entry.get("BootstrappedAt"),
            "Backend": entry["Backend"],
            "Identity": identity,
            "HighWaterMark": mark,
            "Pending": journal.pending(bridge, mark or 0) if journal is not None and identity else None,
            "BeaconID": entry.get("BeaconID"),
            "IDBeaconConnection": entry.get("IDBeaconConnection"),
            "Options": masked_options(entry["Backend"], entry.get("Options") or {}),
        }
    return out
