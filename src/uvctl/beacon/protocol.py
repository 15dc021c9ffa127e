"""The frames a persistence beacon exchanges with the Ultravisor coordinator.

Facts from the live captures (reference: ultravisor-persistence-beacon.md §1-§3,
ultravisor-mesh.md §2 and §4.1); pure functions, no network:

- WebSocket: the beacon sends ``BeaconRegister`` and gets ``BeaconRegistered`` (a new
  ``BeaconID`` every time) or, on a secured coordinator, ``BeaconRejected``; work is pushed
  as ``{"EventType": "WorkItem", "WorkItem": {...}}`` and answered with ``WorkComplete``
  (``Outputs``) or ``WorkError`` (``ErrorMessage``); ``Deregister`` leaves.
- HTTP: ``POST /Beacon/Register``, ``/Beacon/Work/Poll``, ``/Beacon/Work/<hash>/Complete`` or
  ``/Error``, ``DELETE /Beacon/<id>``. Only beacons named exactly ``queue-persistence`` and
  ``manifest-store`` get their items name-routed; any other name has items stranded by the
  scheduler tick (mesh §6.2), which loses them.
- A work item's ``Settings`` carry the persistence call's own ``QueueMetadata``: not part of
  the bridge action, stripped. ``TimeoutMs`` is 5000: an answer later than that is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..actions import ALL_ACTIONS, CAPABILITY, MANIFEST, QUEUE, READ_ACTIONS, bridge_of

#: Both capabilities, as one WebSocket beacon advertises them.
CAPABILITIES = (CAPABILITY[QUEUE], CAPABILITY[MANIFEST])
#: The beacon names the coordinator name-routes each bridge's items to (HTTP transport).
HTTP_NAMES = {QUEUE: "queue-persistence", MANIFEST: "manifest-store"}
#: The coordinator's wait for a persistence answer when the item does not say.
DEFAULT_TIMEOUT_MS = 5000
#: The largest incoming frame accepted (a manifest upsert can be megabytes).
MAX_FRAME = 64 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame that is not what the coordinator sends."""


@dataclass
class WorkItem:
    """One persistence call pushed or polled from the coordinator."""

    hash: str
    capability: str
    action: str
    settings: dict
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    @property
    def is_read(self) -> bool:
        return self.action in READ_ACTIONS


def register_frame(name: str, max_concurrent: int, capabilities=CAPABILITIES) -> dict:
    """``BeaconRegister`` (WebSocket) or the body of ``POST /Beacon/Register`` (HTTP)."""
    return {"Action": "BeaconRegister", "Name": name, "Capabilities": list(capabilities),
            "MaxConcurrent": int(max_concurrent), "Tags": {"Role": "uvctl-persistence"}}


def parse_work_item(raw) -> WorkItem:
    """The work item of a pushed frame's ``WorkItem`` or of a poll answer; ProtocolError when
    it is not a persistence call (the reason says what is wrong)."""
    if not isinstance(raw, dict):
        raise ProtocolError(f"a work item must be an object, got {type(raw).__name__}")
    work_hash = raw.get("WorkItemHash")
    if not isinstance(work_hash, str) or not work_hash:
        raise ProtocolError("the work item has no WorkItemHash")
    action, capability = raw.get("Action"), raw.get("Capability")
    if action not in ALL_ACTIONS:
        raise ProtocolError(f"unknown persistence action {action!r}")
    expected = CAPABILITY[bridge_of(action)]
    if capability != expected:
        raise ProtocolError(f"{action} belongs to the {expected} capability, not {capability!r}")
    settings = raw.get("Settings")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ProtocolError(f"{action}: Settings must be an object, got {type(settings).__name__}")
    settings = {k: v for k, v in settings.items() if k != "QueueMetadata"}
    timeout = raw.get("TimeoutMs")
    timeout = timeout if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0 else DEFAULT_TIMEOUT_MS
    return WorkItem(work_hash, capability, action, settings, timeout)


def complete_frame(work_hash: str, outputs: dict) -> dict:
    """``WorkComplete``: the coordinator hands ``Outputs`` to the bridge as its result."""
    return {"Action": "WorkComplete", "WorkItemHash": work_hash, "Outputs": outputs, "Log": []}


def error_frame(work_hash: str, message: str) -> dict:
    """``WorkError``: the bridge sees ``{Success: false, Reason: message}``."""
    return {"Action": "WorkError", "WorkItemHash": work_hash, "ErrorMessage": message, "Log": []}


def deregister_frame(beacon_id: str) -> dict:
    """``Deregister`` (WebSocket): the coordinator stops sending at once."""
    return {"Action": "Deregister", "BeaconID": beacon_id}


def websocket_url(base_url: str) -> str:
    """The coordinator's WebSocket endpoint: same host and port, ``ws``/``wss``, path ``/``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"a coordinator URL starts with http:// or https://, got {base_url!r}")
    return urlunsplit((scheme, parts.netloc.rsplit("@", 1)[-1], "/", "", ""))
