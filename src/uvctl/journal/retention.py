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

    ``HighWaterMark`` is None when it cannot be known (nothing assigned, the assignment or
    flush service missing, the backend's plugin not installed); ``Reason`` says why.
    """
    out = {}
    entries, why = _assignments()
    for bridge in BRIDGES:
        info = {"Assigned": False, "Backend": None, "Identity": None, "HighWaterMark": None, "Pending": None, "Reason": why}
        entry = (entries or {}).get(bridge)
        if entries is not None and not entry:
            info["Reason"] = f"no backend is assigned to the {bridge} bridge (uvctl persistence assign)"
        elif entry:
            info.update(Assigned=True, Backend=entry.get("Backend"), Reason=None)
            try:
                info["Identity"] = _identity(entry)
                info["HighWaterMark"] = _marks().get(bridge, info["Identity"])
                info["Pending"] = journal.count_after(bridge, info["HighWaterMark"])
            except Exception as exc:  # an unknown backend or a corrupt state file: say so, prune nothing
                info["HighWaterMark"] = None
                info["Reason"] = mask_secrets(str(exc) or type(exc).__name__)
        out[bridge] = info
    return out


def prune_acknowledged(journal, dry_run: bool = False) -> dict:
    """Delete the log rows every assigned backend acknowledged; per bridge what was (or would be) pruned."""
    report = acknowledgements(journal)
    for bridge, info in report.items():
        mark = info["HighWaterMark"]
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


def _assignments():
    try:
        from .. import assignment
    except ImportError:
        return None, "the assignment service is not installed"
    load = getattr(assignment, "load", None)
    if load is None:
        return None, "the assignment service is not available in this uvctl"
    return load() or {}, None


def _identity(entry: dict) -> str:
    if entry.get("Identity"):
        return entry["Identity"]
    from .. import host

    return host.backend_info(entry["Backend"]).identity_of(entry.get("Options") or {})


def _marks():
    try:
        from ..flush import HighWaterMarks
    except ImportError:
        raise RuntimeError("the flush service (high-water marks) is not available in this uvctl") from None
    return HighWaterMarks()
