"""Import into the journal: a JSONL file of bridge actions, or an Ultravisor data directory.

Both imports are all or nothing (one journal transaction) and idempotent: importing the same
source again journals nothing.

- JSONL lines are a history: each line is remembered by its content and its occurrence in
  the file, so re-importing the file (or a longer version of it) journals only new lines.
  Events without an EventGUID get a deterministic one (UUIDv5 of the same key).
- A data dir is a snapshot: events get deterministic EventGUIDs (UUIDv5 of the source row);
  work items, attempts and manifests are matched by natural key and skipped when unchanged,
  so a later import of the same data dir brings only what changed there since (an attempt
  that changed becomes an outcome update).

Ultravisor data directory (reference: ultravisor-datadir.md):

- ``<data>/beacon/beacon-queue.sqlite`` (WAL mode; the ``-wal`` file holds live rows that
  Ultravisor never checkpoints). It is copied with its ``-wal`` into a temporary folder and
  read there, so the source is never touched (even ``mode=ro`` rewrites ``-shm``).
- ``<staging root>/*/Manifest_*.json``: the run manifests; ``StagingPath`` (the run folder)
  and ``Live: false`` are added, since the files carry neither.

Mapping (bridge reference §8.4, with the data-dir corrections): work items as they are, with
``Settings.QueueMetadata`` stripped (the scheduler injects it into a few rows only); events get
``Seq = IDBeaconWorkItemEvent``, ``EmittedAt`` from the matching ``TimelineRecord.At`` (same
work item and event type) or else the item's own timestamp for that step, or ``''``; attempts
map ``DispatchedAt`` → ``StartedAt``, ``CompletedAt`` → ``EndedAt``, ``ErrorMessage`` → ``Error``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

from ..actions import Action
from ..errors import UsageError
from .normalize import normalize_action

#: Namespace of the deterministic EventGUIDs minted by imports.
IMPORT_NAMESPACE = uuid.UUID("5b0f5cc4-7d5a-4b8e-9a57-2f3c0b7f0e11")
QUEUE_DB = Path("beacon") / "beacon-queue.sqlite"
_QUEUE_TABLES = ("BeaconWorkItem", "BeaconWorkItemEvent", "BeaconWorkItemAttempt")
#: Which work-item timestamp dates an event when the timeline has no row for it.
_EVENT_TIME = {"enqueued": "EnqueuedAt", "dispatched": "DispatchedAt", "completed": "CompletedAt",
               "failed": "CompletedAt", "stalled": "CompletedAt", "canceled": "CanceledAt"}


def import_path(journal, path, staging=None, manifests: bool = True) -> dict:
    """Import ``path`` (a ``.jsonl`` file or an Ultravisor data dir) into ``journal``; a report."""
    path = Path(path).expanduser().resolve()  # StagingPath is stored absolute, as Ultravisor writes it
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a JSONL file of bridge actions or an Ultravisor data directory")
    keys = None
    if path.is_dir():
        actions, report = read_datadir(path, staging, manifests)
    else:
        if staging is not None:
            raise UsageError("--staging only applies to an Ultravisor data directory, not to a JSONL file")
        keyed = read_jsonl(path)
        actions, keys = [a for a, _ in keyed], [k for _, k in keyed]
        report = {"Source": str(path), "Kind": "jsonl", "Read": {"Actions": len(actions)}}
    done = journal.apply(actions, reimport=True, source_keys=keys)
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


# ---------------------------------------------------------------------- JSONL
def read_jsonl(path: Path) -> list[tuple[Action, str]]:
    """Every line of a JSONL file of bridge actions, normalized, with its source key.

    The key is the line's content and its occurrence in the file, so re-importing the file
    (or a longer version of it) skips the lines imported before. The first bad line is an error.
    """
    actions, seen = [], defaultdict(int)
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    actions.append(_jsonl_action(path, number, line, seen))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); nothing was imported") from None
    return actions


def _jsonl_action(path: Path, number: int, line: str, seen: dict) -> tuple[Action, str]:
    where = f"{path} line {number}"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); fix the line, nothing was imported") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("Action"), str):
        hint = (" (this looks like Ultravisor's queue-journal.jsonl, which is not a history: import the data directory instead)"
                if isinstance(entry, dict) and {"t", "op"} <= set(entry) else "")
        raise UsageError(f'{where}: expected {{"Action": "QP_...", "Settings": {{...}}}}{hint}; nothing was imported')
    name, settings = entry["Action"], entry.get("Settings")
    canonical = json.dumps([name, settings], sort_keys=True, separators=(",", ":"), default=str)
    seen[canonical] += 1
    source_key = f"jsonl|{uuid.uuid5(IMPORT_NAMESPACE, canonical)}|{seen[canonical]}"
    if name == "QP_AppendEvent" and isinstance(settings, dict) and isinstance(settings.get("Event"), dict):
        event = settings["Event"]
        if not event.get("EventGUID"):
            # Same event text, same occurrence in the file → same GUID on every import.
            guid = uuid.uuid5(IMPORT_NAMESPACE, f"jsonl|{canonical}|{seen[canonical]}")
            settings = {**settings, "Event": {**event, "EventGUID": str(guid)}}
    try:
        action = normalize_action(name, settings)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}; nothing was imported") from None
    if not action.is_write:
        raise UsageError(f"{where}: {name} is a read action; only write actions can be imported, nothing was imported")
    return action, source_key


# ---------------------------------------------------------------------- data dir
def find_queue_db(path: Path) -> Path | None:
    """``beacon/beacon-queue.sqlite`` under ``path`` or its ``data`` / ``ultravisor_datastore`` folder."""
    for base in (path, path / "data", path / "ultravisor_datastore"):
        if (base / QUEUE_DB).is_file():
            return base / QUEUE_DB
    return None


def find_staging(path: Path, queue_db: Path | None) -> Path | None:
    """The staging root next to the data: ``staging`` or ``ultravisor_staging``."""
    bases = [path]
    if queue_db is not None:
        data = queue_db.parent.parent
        bases += [data, data.parent]
    for base in bases:
        for name in ("staging", "ultravisor_staging"):
            if (base / name).is_dir():
                return base / name
    return None


def read_datadir(path: Path, staging=None, manifests: bool = True) -> tuple[list[Action], dict]:
    """The bridge actions that recreate an Ultravisor data dir's queue history and manifests."""
    queue_db = find_queue_db(path)
    if staging is not None:
        staging = Path(staging).expanduser().resolve()
        if not staging.is_dir():
            raise UsageError(f"--staging {staging} is not a directory")
    elif manifests:
        staging = find_staging(path, queue_db)
    if queue_db is None and staging is None:
        raise UsageError(
            f"{path} is not an Ultravisor data directory: no beacon/beacon-queue.sqlite "
            f"(looked in {path}, {path / 'data'}) and no staging folder; pass the folder Ultravisor's "
            f"UltravisorFileStorePath points to"
        )
    actions = read_queue_db(queue_db) if queue_db is not None else []
    manifest_actions = read_manifests(staging) if (manifests and staging is not None) else []
    report = {
        "Source": str(path),
        "Kind": "ultravisor-datadir",
        "QueueDatabase": str(queue_db) if queue_db else None,
        "StagingRoot": str(staging) if staging and manifests else None,
        "Read": {
            "WorkItems": sum(a.name == "QP_UpsertWorkItem" for a in actions),
            "Events": sum(a.name == "QP_AppendEvent" for a in actions),
            "Attempts": sum(a.name == "QP_InsertAttempt" for a in actions),
            "Manifests": len(manifest_actions),
        },
    }
    return actions + manifest_actions, report


def read_queue_db(db: Path) -> list[Action]:
    """Work items (by EnqueuedAt), each followed by its events and attempts; then orphans."""
    with tempfile.TemporaryDirectory(prefix="uvctl-import-") as tmp:
        copy = Path(tmp) / db.name
        try:
            shutil.copyfile(db, copy)
            wal = Path(f"{db}-wal")
            if wal.exists():
                shutil.copyfile(wal, Path(f"{copy}-wal"))
        except OSError as exc:
            raise UsageError(f"cannot read {db}: {exc.strerror or exc}") from exc
        conn = sqlite3.connect(copy)
        conn.row_factory = sqlite3.Row
        try:
            return _queue_actions(conn, db)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{db} is not a readable Ultravisor queue database ({exc})") from None
        finally:
            conn.close()


def _queue_actions(conn: sqlite3.Connection, db: Path) -> list[Action]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in _QUEUE_TABLES if t not in present]
    if missing:
        raise UsageError(f"{db} has no {', '.join(missing)} table(s); is it Ultravisor's beacon-queue.sqlite?")
    items = [dict(r) for r in conn.execute("SELECT * FROM BeaconWorkItem ORDER BY EnqueuedAt, IDBeaconWorkItem")]
    events, attempts = defaultdict(list), defaultdict(list)
    for r in conn.execute("SELECT * FROM BeaconWorkItemEvent ORDER BY IDBeaconWorkItemEvent"):
        events[r["WorkItemHash"]].append(dict(r))
    for r in conn.execute("SELECT * FROM BeaconWorkItemAttempt ORDER BY AttemptNumber, IDBeaconWorkItemAttempt"):
        attempts[r["WorkItemHash"]].append(dict(r))
    timeline = _timeline(conn) if "TimelineRecord" in present else {}
    by_hash = {item["WorkItemHash"]: item for item in items}
    actions = []
    for item in items:
        actions.append(_normalize(db, "QP_UpsertWorkItem", {"WorkItem": _work_item(item)}, item["IDBeaconWorkItem"]))
        actions += _item_history(db, item["WorkItemHash"], events.pop(item["WorkItemHash"], []),
                                 attempts.pop(item["WorkItemHash"], []), item, timeline)
    for work_hash in sorted(set(events) | set(attempts)):  # history of items the table no longer has
        actions += _item_history(db, work_hash, events.get(work_hash, []), attempts.get(work_hash, []),
                                 by_hash.get(work_hash), timeline)
    return actions


def _item_history(db, work_hash, events, attempts, item, timeline) -> list[Action]:
    out, nth = [], defaultdict(int)
    for event in events:
        kind = (event.get("EventType") or "").lower()
        nth[kind] += 1
        stamps = timeline.get((work_hash, kind), [])
        emitted = stamps[nth[kind] - 1] if len(stamps) >= nth[kind] else ((item or {}).get(_EVENT_TIME.get(kind, "")) or "")
        record = {**event, "Seq": event["IDBeaconWorkItemEvent"], "EmittedAt": emitted,
                  "EventGUID": str(uuid.uuid5(IMPORT_NAMESPACE, f"beacon-queue|{work_hash}|{event['IDBeaconWorkItemEvent']}|{kind}"))}
        out.append(_normalize(db, "QP_AppendEvent", {"Event": record}, event["IDBeaconWorkItemEvent"]))
    for attempt in attempts:
        out.append(_normalize(db, "QP_InsertAttempt", {"Attempt": attempt}, attempt["IDBeaconWorkItemAttempt"]))
    return out


def _timeline(conn: sqlite3.Connection) -> dict:
    stamps = defaultdict(list)
    try:
        rows = conn.execute("SELECT WorkItemHash, EventType, At FROM TimelineRecord WHERE WorkItemHash != '' ORDER BY At, IDTimelineRecord")
        for work_hash, kind, at in rows:
            if at:
                stamps[(work_hash, (kind or "").lower())].append(at)
    except sqlite3.OperationalError:  # an older layout without these columns: infer instead
        return {}
    return stamps


def _work_item(row: dict) -> dict:
    item = dict(row)
    settings = item.get("Settings")
    if isinstance(settings, str) and "QueueMetadata" in settings:
        try:
            parsed = json.loads(settings)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "QueueMetadata" in parsed:
            parsed.pop("QueueMetadata")
            item["Settings"] = parsed
    return item


def _normalize(db: Path, name: str, settings: dict, row_id) -> Action:
    try:
        return normalize_action(name, settings)
    except UsageError as exc:
        where = f"{db}: row {row_id}" if row_id != "" else str(db)
        raise UsageError(f"{where}: {exc}; nothing was imported") from None


def read_manifests(staging: Path) -> list[Action]:
    """``MS_UpsertManifest`` per ``<staging>/*/Manifest_*.json``, oldest run first."""
    found = []
    for file in sorted(staging.glob("*/Manifest_*.json")):
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read manifest {file}: {exc}; nothing was imported") from None
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"manifest {file} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                f"fix or move it away, or import with --no-manifests; nothing was imported"
            ) from None
        if not isinstance(manifest, dict) or not manifest.get("Hash"):
            raise UsageError(f"manifest {file} has no Hash; fix or move it away; nothing was imported")
        manifest.setdefault("StagingPath", str(file.parent))
        manifest.setdefault("Live", False)
        found.append((str(manifest.get("StartTime") or ""), str(manifest.get("StopTime") or ""), str(file), manifest))
    found.sort(key=lambda entry: entry[:3])
    return [_normalize(file, "MS_UpsertManifest", {"Manifest": manifest}, "") for _, _, file, manifest in found]
