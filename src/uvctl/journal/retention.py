"""What every assigned backend has acknowledged, and pruning the log up to there.

A log row may go only when the backend assigned to its bridge has acknowledged it (its
high-water mark in ``persistence-bridge-hwm.json`` is at or past the row's seq). With no
assignment there is no one to acknowledge anything, so nothing is pruned: the rows are
exactly what a future ``uvctl flush`` will send. The current-state tables are never pruned.
"""

from __future__ import annotations

from ..errors import mask_secrets
from .store import BRIDGES


def acknowledgements(journal) -> dict:
    """Per bridge: ``{Assigned, Backend, Identity, HighWaterMark, Pending, Reason}``.

    ``HighWaterMark`` is None when it cannot be known (nothing assigned, the backend's plugin
    not installed, its options no longer valid); ``Reason`` says why.
    """
    from .. import assignment
    from ..flush import HighWaterMarks

    out = {}
    entries = assignment.load()
    marks = HighWaterMarks(journal_id=journal.journal_id)
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
                info["Pending"] = journal.count_after(bridge, info["HighWaterMark"])
            except Exception as exc:  # an unknown backend or a corrupt state file: say so, prune nothing
                info["HighWaterMark"] = None
                info["Reason"] = mask_secrets(str(exc) or type(exc).__name__)
        out[bridge] = info
    return out


def prune_acknowledged(journal, dry_run: bool = False, keep: int = 0) -> dict:
    """Delete the log rows every assigned backend acknowledged, except the newest ``keep`` of
    each bridge; per bridge what was (or would be) pruned."""
    report = acknowledgements(journal)
    for bridge, info in report.items():
        mark = info["HighWaterMark"]
        if mark is not None and keep > 0:
            mark = min(mark, journal.last_seq(bridge) - keep)
        if mark is None or mark <= 0:
            info["Pruned"] = 0
            if mark is not None and info["Reason"] is None:
                info["Reason"] = "the backend has acknowledged nothing yet (uvctl flush)"
            continue
        info["Pruned"] = (
            _count_upto(journal, bridge, mark) if dry_run else journal.prune(bridge, mark)
        )
    return report


def _count_upto(journal, bridge: str, mark: int) -> int:
    total = journal.stats()["Log"][bridge]["Records"]
    return total - journal.count_after(bridge, mark)
