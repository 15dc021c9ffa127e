"""Bridge calls that arrive together, journaled together.

A persistence beacon receives several calls at once (the coordinator keeps MaxConcurrent
frames in flight). Journaled one by one, each pays its own transaction and fsync; here the
writes that come next to each other share one transaction, so they share one fsync, and each
call still answers exactly as its own ``execute`` would (the same envelope, a read seeing
every write before it). Only local-only bridges batch: write-through delivers per write.
"""

from __future__ import annotations

from ..actions import ALL_ACTIONS, bridge_of, failure
from ..errors import UsageError, UvctlError


def execute_batch(calls, bridges: dict) -> list[dict]:
    """The envelopes of ``calls`` (``(action name, settings)`` in arrival order) on ``bridges``
    (``{"Queue": QueueBridge, "Manifest": ManifestBridge}``, local-only, one journal).

    When the shared transaction fails (a record the journal refuses), the writes of that group
    are journaled again one by one, so only the failing call gets the error.
    """
    out: list = [None] * len(calls)
    group: list = []  # (index, bridge, action, warnings, name, settings) of consecutive writes

    def commit() -> None:
        if not group:
            return
        journal = group[0][1].journal
        try:
            results = journal.apply([entry[2] for entry in group])
        except UvctlError:
            results = None
        for n, (index, bridge, action, warnings, name, settings) in enumerate(group):
            if results is None:  # one by one: each its own transaction and its own error
                out[index] = bridge.execute(name, settings)
                continue
            envelope = bridge.journaled(results[n])
            if warnings:
                envelope["Warnings"] = warnings
            out[index] = envelope
        group.clear()

    for index, (name, settings) in enumerate(calls):
        if name not in ALL_ACTIONS:
            out[index] = failure(f"unknown bridge action {name!r}; known actions: {', '.join(ALL_ACTIONS)}")
            continue
        bridge = bridges[bridge_of(name)]
        warnings: list = []
        try:
            action = bridge.normalize(name, settings, warnings)
        except UsageError as exc:
            out[index] = failure(str(exc))
            continue
        if action.is_write:
            group.append((index, bridge, action, warnings, name, settings))
        else:
            commit()  # the read sees the writes before it
            out[index] = bridge.execute(name, settings)
    commit()
    return out
