"""Ultravisor's queue and manifest bridges over the journal: ``QP_*`` / ``MS_*`` → envelope.

``QueueBridge`` / ``ManifestBridge`` offer one method per action; :func:`execute` runs any
action by name (JSONL import, the conformance kit, HTTP front ends).
"""

from __future__ import annotations

from ..actions import QUEUE, bridge_of, failure
from .manifest import ManifestBridge
from .queue import QueueBridge

__all__ = ["ManifestBridge", "QueueBridge", "execute"]


def execute(action_name: str, settings: dict | None = None, journal=None) -> dict:
    """Run the bridge action ``action_name`` with ``settings``; Ultravisor's envelope.

    Bad input, an unknown action included, answers ``Success: False`` with the ``Reason``.
    ``journal`` reuses an open :class:`uvctl.journal.Journal` (default: open the data dir's for
    this one call).
    """
    try:
        bridge = bridge_of(action_name)
    except (ValueError, TypeError, AttributeError):
        from ..actions import ALL_ACTIONS

        return failure(f"unknown bridge action {action_name!r}; known actions: {', '.join(ALL_ACTIONS)}")
    cls = QueueBridge if bridge == QUEUE else ManifestBridge
    with cls(journal) as instance:
        return instance.execute(action_name, settings)
