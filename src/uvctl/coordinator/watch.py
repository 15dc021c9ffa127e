"""Following ``GET /Ultravisor/Persistence/Status`` until both bridges settle.

The two bridges are summed up "worst first" (as upstream's lab does): ``error`` >
``waiting-for-beacon`` > ``bootstrapping`` > ``unassigned`` > ``bootstrapped``. A watch ends
at ``bootstrapped`` (both), ``error`` (either), ``unassigned`` (both) or the timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..mesh import persistence
from . import EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, EXIT_UNASSIGNED

_WORST_FIRST = ("error", "waiting-for-beacon", "bootstrapping", "unassigned", "bootstrapped")
OUTCOME_EXIT = {"bootstrapped": EXIT_OK, "error": EXIT_ERROR, "unassigned": EXIT_UNASSIGNED, "timeout": EXIT_TIMEOUT}


def states(statuses: dict) -> dict:
    """``{"Queue": state, "Manifest": state}``."""
    return {bridge: str(statuses[bridge].get("State")) for bridge in persistence.BRIDGES}


def overall(statuses: dict) -> str:
    """The worst state of the two bridges."""
    found = states(statuses).values()
    for state in _WORST_FIRST:
        if state in found:
            return state
    return next(iter(found))


def describe(statuses: dict) -> str:
    """``Queue bootstrapping, Manifest bootstrapped`` plus any LastError."""
    parts = []
    for bridge in persistence.BRIDGES:
        text = f"{bridge} {statuses[bridge].get('State')}"
        if statuses[bridge].get("LastError"):
            text += f" ({statuses[bridge]['LastError']})"
        parts.append(text)
    return ", ".join(parts)


@dataclass
class WatchResult:
    """How a watch ended: ``outcome`` (bootstrapped, error, unassigned, timeout) and its exit code."""

    outcome: str
    status: dict
    changes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return OUTCOME_EXIT[self.outcome]

    def to_dict(self) -> dict:
        return {"Outcome": self.outcome, "ExitCode": self.exit_code, "ElapsedSeconds": round(self.seconds, 3),
                "Changes": self.changes, "Status": self.status}


def follow(coordinator, timeout: float, interval: float = 0.2, first: dict | None = None,
           on_change=None, until_unassigned: bool = True) -> WatchResult:
    """Poll the status every ``interval`` s until it settles or ``timeout`` s pass.

    ``first`` is a status already in hand (e.g. Assign's answer). ``on_change(statuses,
    seconds)`` is called for the first status and each change of either bridge's state.
    """
    start = time.monotonic()
    statuses, last, changes = first, None, []
    while True:
        if statuses is None:
            statuses = persistence.status(coordinator)
        seconds = time.monotonic() - start
        now = (states(statuses), tuple(statuses[b].get("LastError") for b in persistence.BRIDGES))
        if now != last:
            last = now
            changes.append({"Seconds": round(seconds, 3), **now[0]})
            if on_change is not None:
                on_change(statuses, seconds)
        state = overall(statuses)
        if state in ("bootstrapped", "error") or (state == "unassigned" and until_unassigned):
            return WatchResult(state, statuses, changes, seconds)
        if seconds >= timeout:
            return WatchResult("timeout", statuses, changes, seconds)
        time.sleep(min(interval, max(0.0, timeout - seconds)))
        statuses = None
