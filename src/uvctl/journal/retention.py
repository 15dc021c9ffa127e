"""What every assigned backend has acknowledged, and pruning the log up to there.

A log row may go only when the backend assigned to its bridge has acknowledged it (its
high-water mark in ``persistence-bridge-hwm.json`` is at or past the row's seq). With no
assignment there is no one to acknowledge anything, so nothing is pruned: the rows are
exactly what a future ``uvctl flush`` will send. The current-state tables are never pruned:
a backend assigned later, whose mark is below what was pruned, gets a snapshot of that
state first (:meth:`uvctl.journal.Journal.snapshot`).
"""

from __future__ import annotations

from ..errors import UsageError, UvctlError, mask_secrets
from .store import BRIDGES


def acknowledgements(journal, strict: bool = False) -> dict:
    """Per bridge: ``{Assigned, Backend, Identity, HighWaterMark, Pending, Reason}``.

    ``HighWaterMark`` is None when it cannot be known (nothing assigned, the backend's plugin
    not installed, its options no longer valid, a corrupt mark file); ``Reason`` says why.
    With ``strict``, a corrupt mark file raises its error instead (pruning must refuse it).
    """
    from .. import assignment
    from ..flush import HighWaterMarks

    out = {}
    entries = assignment.load()
    marks = HighWaterMarks(journal=journal)
    for bridge in BRIDGES:
        info = {"Assigned": False, "Backend": None, "Identity": None, "HighWaterMark": None, "Pending": None, "Reason": None}
        entry = entries.get(bridge)
        if not entry:
            info["Reason"] = f"no backend is assigned to the {bridge} bridge (uvctl persistence assign)"
        else:
            info.update(Assigned=True, Backend=entry.get("Backend"))
            try:
                info["Identity"] = assignment.backend_for(bridge).identity
                info["HighWaterMark"] = marks.get(bridge, info["Identity"])
                info["Pending"] = journal.pending(bridge, info["HighWaterMark"])
            except Exception as exc:  # an unknown backend or a corrupt state file: say so, prune nothing
                if strict and info["Identity"] is not None and isinstance(exc, UvctlError):
                    raise
                info["HighWaterMark"] = None
                info["Reason"] = mask_secrets(str(exc) or type(exc).__name__)
        out[bridge] = info
    return out


def prune_acknowledged(journal, dry_run: bool = False, keep: int = 0) -> dict:
    """Delete the log rows every assigned backend acknowledged, but the newest ``keep`` of each
    bridge; per bridge what was (or would be) pruned (``Pruned``).

    A corrupt high-water-mark file (a mark that is not a sequence number or is past the
    journal's end) raises its UvctlError and prunes nothing. The long-running beacon calls
    this to keep the journal bounded.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise UsageError(f"keep must be a whole number of 0 or more, got {keep!r}")
    report = acknowledgements(journal, strict=True)
    for bridge, info in report.items():
        mark = info["HighWaterMark"]
        if mark is None or mark <= 0:
            info["Pruned"] = 0
            if mark is not None and info["Reason"] is None:
                info["Reason"] = "the backend has acknowledged nothing yet (uvctl flush)"
            continue
        info["Pruned"] = journal.prune(bridge, mark, keep=keep, dry_run=dry_run)
    return report
