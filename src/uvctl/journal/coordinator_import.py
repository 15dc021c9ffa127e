"""Import a running coordinator's history into the journal over HTTP (no access to its disk).

Read routes (:mod:`uvctl.mesh.persistence`): ``GET /Beacon/Queue?include=history`` for the
work items (the bridge's history plus the scheduler's live items), ``GET
/Beacon/Work/<hash>/Events`` per work item, ``GET /Manifest`` and ``GET /Manifest/<hash>``.

``/Beacon/Queue`` has no offset, only ``limit`` (clamped to 5000 by the local store; 250 rows
whatever the limit in MeadowProxy mode). So pages grow — 500, 1000, 2000, 4000, 5000 rows —
until one comes back short; a full last page is reported in ``Notes`` (the rest is only
reachable through the data directory: ``uvctl journal import <data dir>``), and so is a
history route that fails (1.3.24's local store answers ``History: null``: it reads
``-EnqueuedAt`` as a column) or answers nothing.

The import is idempotent and all or nothing (one journal transaction): work items and
manifests are skipped when unchanged; events get the EventGUID they carry or a deterministic
one — the same the data-directory import gives a local-store row (``IDBeaconWorkItemEvent``),
so importing a coordinator over HTTP and from its data dir does not double its events.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

from ..errors import UsageError
from ..mesh import persistence
from .normalize import IMPORT_NAMESPACE, local_event_guid, normalize_action

FIRST_PAGE = 500
DATA_DIR_HINT = "'uvctl journal import DATA_DIR' reads the same history from the coordinator's disk"
#: Which work-item timestamp dates an event that carries none (the local store keeps no event time).
EVENT_TIME = {"enqueued": "EnqueuedAt", "dispatched": "DispatchedAt", "completed": "CompletedAt",
              "failed": "CompletedAt", "stalled": "CompletedAt", "canceled": "CanceledAt"}


def read_coordinator(coordinator, manifests: bool = True, progress=None) -> tuple[list, dict]:
    """The bridge actions recreating the coordinator's history, and a read report."""
    items, notes, pages = _work_items(coordinator, manifests)
    actions = []
    counts = defaultdict(int)
    for item in items:
        actions.append(_normalize("work item", item.get("WorkItemHash"), "QP_UpsertWorkItem", {"WorkItem": item}))
        counts["WorkItems"] += 1
    for item in items:
        events = persistence.work_item_events(coordinator, str(item["WorkItemHash"]))
        if progress is not None:
            progress(1)
        if not events:
            continue
        if len(events) >= persistence.EVENTS_MAX:
            notes.append(f"work item {item['WorkItemHash']}: the coordinator serves at most "
                         f"{persistence.EVENTS_MAX} events per work item; older ones may be missing")
        for index, event in enumerate(events):
            if isinstance(event, dict):
                actions.append(_event_action(item, index, event))
                counts["Events"] += 1
    counts["Manifests"] = 0
    if manifests:
        found = _manifests(coordinator, notes)
        actions += found
        counts["Manifests"] = len(found)
    report = {"Source": coordinator.display_url, "Kind": "ultravisor-coordinator",
              "Read": {"WorkItems": counts["WorkItems"], "Events": counts["Events"], "Manifests": counts["Manifests"]},
              "HistoryRequests": pages, "Notes": notes}
    return actions, report


def _work_items(coordinator, manifests: bool = True) -> tuple[list[dict], list[str], int]:
    """Every work item the coordinator serves (history, then live items not in it), oldest first."""
    by_hash: dict = {}
    notes: list[str] = []
    limit, pages = FIRST_PAGE, 0
    live = []
    while True:
        snapshot = persistence.queue_snapshot(coordinator, limit)
        pages += 1
        history = snapshot.get("History")
        live = [i for i in snapshot.get("Items") or [] if isinstance(i, dict) and i.get("WorkItemHash")]
        if history is None or (pages == 1 and not history):
            notes.append(_missing_history(coordinator, history, len(live), manifests))
            break
        for row in history:
            if isinstance(row, dict) and row.get("WorkItemHash"):
                by_hash[row["WorkItemHash"]] = row
        if len(history) < limit:
            break
        if limit >= persistence.HISTORY_MAX:
            notes.append(f"the coordinator's history route returns at most {persistence.HISTORY_MAX} work items and "
                         f"that many came back; import its data directory for the rest")
            break
        limit = min(limit * 2, persistence.HISTORY_MAX)
    for item in live:
        by_hash.setdefault(item["WorkItemHash"], item)
    items = sorted(by_hash.values(), key=lambda r: (str(r.get("EnqueuedAt") or r.get("CreatedAt") or ""),
                                                    str(r["WorkItemHash"])))
    return items, notes, pages


def _missing_history(coordinator, history, live: int, manifests: bool) -> str:
    """What a broken or empty history route leaves out, and where the same history is."""
    got = f"only its {live} live work item(s)" + (" and its manifests" if manifests else "")
    if history is None:
        text = (f"the coordinator's history route failed (History: null): its finished work items and their events "
                f"were not imported, {got}; {DATA_DIR_HINT}")
    else:
        text = (f"the coordinator's history route returned no work items: if it has run work, its finished work "
                f"items and their events were not imported ({got}); {DATA_DIR_HINT}")
    statuses = persistence.status(coordinator)
    if any(statuses[b].get("AssignedBeaconID") for b in persistence.BRIDGES):
        text += "; its persistence is assigned to a databeacon: 'uvctl coordinator persistence doctor' says why"
    return text


def _event_action(item: dict, index: int, event: dict):
    work_hash = str(item["WorkItemHash"])
    kind = str(event.get("EventType") or "").lower()
    record = {**event, "WorkItemHash": event.get("WorkItemHash") or work_hash}
    row_id = event.get("IDBeaconWorkItemEvent")
    if not record.get("EventGUID"):
        record["EventGUID"] = (local_event_guid(work_hash, row_id, kind) if row_id is not None
                               else str(uuid.uuid5(IMPORT_NAMESPACE, f"coordinator|{work_hash}|{index}|{kind}")))
    if not record.get("Seq"):
        record["Seq"] = row_id if row_id is not None else index + 1
    if not record.get("EmittedAt"):
        record["EmittedAt"] = event.get("CreateDate") or item.get(EVENT_TIME.get(kind, "")) or ""
    return _normalize("event", record["EventGUID"], "QP_AppendEvent", {"Event": record})


def _manifests(coordinator, notes: list) -> list:
    summaries = [s for s in persistence.manifest_summaries(coordinator) if isinstance(s, dict) and s.get("Hash")]
    if len(summaries) >= 100:
        notes.append("the coordinator lists at most 100 stored manifests (plus its live runs); older ones may be "
                     "missing — import its data directory for those")
    out = []
    for summary in summaries:
        whole = persistence.manifest(coordinator, str(summary["Hash"])) or summary
        out.append(_normalize("manifest", summary["Hash"], "MS_UpsertManifest", {"Manifest": whole}))
    return out


def _normalize(what: str, key, name: str, settings: dict):
    try:
        return normalize_action(name, settings)
    except UsageError as exc:
        raise UsageError(f"the coordinator's {what} {key!r} cannot be journaled: {exc}; nothing was imported") from None


def import_coordinator(journal, coordinator, manifests: bool = True, progress=None) -> dict:
    """Read the coordinator's history and journal it in one transaction; the import report."""
    actions, report = read_coordinator(coordinator, manifests, progress)
    done = journal.apply(actions, reimport=True)
    outcomes = defaultdict(int)
    for item in done:
        outcomes[item.outcome] += 1
    seqs = [item.action.seq for item in done if item.logged]
    report.update({
        "Journaled": len(seqs),
        "Skipped": len(done) - len(seqs),
        "Outcomes": dict(sorted(outcomes.items())),
        "FirstSeq": min(seqs) if seqs else None,
        "LastSeq": max(seqs) if seqs else None,
    })
    return report
