"""An Ultravisor data directory, read exactly as a real coordinator lays it out.

Reference: ultravisor-datadir.md (a real data dir) and bridge reference §8.

- ``<data>/beacon/beacon-queue.sqlite`` (WAL mode; the ``-wal`` file holds live rows that
  Ultravisor never checkpoints). It is copied into a temporary folder and read there: while
  it is open somewhere (a ``-shm`` file exists) as one consistent snapshot through SQLite's
  backup API, else as plain copies of the file and its ``-wal``, which leave the source untouched.
- ``<staging root>/*/Manifest_*.json``: the run manifests, oldest run first; ``StagingPath``
  (the run folder) and ``Live: false`` are added, since the files carry neither.

Mapping: work items as they are (normalization strips the ``Settings.QueueMetadata`` the
scheduler injects into a few rows); events get ``Seq = IDBeaconWorkItemEvent``, the UUIDv5
``EventGUID`` of the source row (``normalize.local_event_guid``, the one a live replay of the row gets), and ``EmittedAt`` from the matching ``TimelineRecord.At``
(same work item and event type, n-th with n-th) or else the item's own timestamp for that
step, or ``''``; attempts map ``DispatchedAt`` → ``StartedAt``, ``CompletedAt`` → ``EndedAt``,
``ErrorMessage`` → ``Error`` (normalization does that). Each work item is followed by its
events and attempts; history of items the work-item table no longer has comes last.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

from ...errors import UsageError
from ...paths import MAX_DOCUMENT, check_input, input_stat
from ...statefile import loads, process_alive
from ..normalize import local_event_guid, normalize_action
from . import Changes, without_queue_metadata

QUEUE_DB = Path("beacon") / "beacon-queue.sqlite"
#: Temporary copies of the queue database are ``<tmp>/uvctl-import-<pid>-<random>``.
_COPY_PREFIX = "uvctl-import-"
_QUEUE_TABLES = ("BeaconWorkItem", "BeaconWorkItemEvent", "BeaconWorkItemAttempt")
#: Which work-item timestamp dates an event when the timeline has no row for it.
_EVENT_TIME = {"enqueued": "EnqueuedAt", "dispatched": "DispatchedAt", "completed": "CompletedAt",
               "failed": "CompletedAt", "stalled": "CompletedAt", "canceled": "CanceledAt"}
_TABLE_OF = {"QP_UpsertWorkItem": "BeaconWorkItem", "QP_AppendEvent": "BeaconWorkItemEvent",
             "QP_InsertAttempt": "BeaconWorkItemAttempt"}
#: Bad records named in the report when they are left out (the rest are counted).
_EXAMPLES_KEPT = 20
_READ_KEYS = {"QP_UpsertWorkItem": "WorkItems", "QP_AppendEvent": "Events", "QP_InsertAttempt": "Attempts",
              "MS_UpsertManifest": "Manifests"}


def find_queue_db(path: Path) -> Path | None:
    """``beacon/beacon-queue.sqlite`` under ``path`` or its ``data`` / ``ultravisor_datastore`` folder."""
    for base in (path, path / "data", path / "ultravisor_datastore"):
        if (base / QUEUE_DB).is_file():
            return base / QUEUE_DB
    return None


def find_staging(path: Path, queue_db: Path | None) -> Path | None:
    """The staging root next to the data: a ``staging`` or ``ultravisor_staging`` folder."""
    bases = [path]
    if queue_db is not None:
        data = queue_db.parent.parent
        bases += [data, data.parent]
    for base in bases:
        for name in ("staging", "ultravisor_staging"):
            if (base / name).is_dir():
                return base / name
    return None


class DataDirSource:
    """Stream the queue history and the manifests of an Ultravisor data dir."""

    def __init__(self, path: Path, staging=None, manifests: bool = True, skip_bad: bool = False):
        self.path = Path(path)
        self.root = self.path.resolve()  # every file of the queue database must resolve inside it
        self.skip_bad = skip_bad
        self.left_out, self.left_out_examples, self.replaced_text = 0, [], 0
        self.changes = Changes()
        self.queue_db = find_queue_db(self.path)
        if staging is not None:
            staging = Path(staging).expanduser().resolve()
            if not stat.S_ISDIR(input_stat(staging, "--staging").st_mode):
                raise UsageError(f"--staging {staging} is not a directory")
        elif manifests:
            staging = find_staging(self.path, self.queue_db)
        self.staging = staging if manifests else None
        if self.queue_db is None and self.staging is None:
            raise UsageError(
                f"{self.path} is not an Ultravisor data directory: no beacon/beacon-queue.sqlite "
                f"(looked in {self.path}, {self.path / 'data'}) and no staging folder; pass the folder "
                f"Ultravisor's UltravisorFileStorePath points to"
            )
        self.read = dict.fromkeys(("WorkItems", "Events", "Attempts", "Manifests"), 0)
        self._tmp = None
        self._conn = None
        self._manifest_files: list[Path] = []
        self._bad_manifests: list[str] = []  # left out (--skip-bad-rows), counted again by every pass

    def __enter__(self):
        try:
            if self.queue_db is not None:
                self._conn = self._open_copy()
            if self.staging is not None:
                self._manifest_files = self._manifests_in_order()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def total(self) -> int:
        """How many records the import will read (rows and manifest files), for a progress bar."""
        rows = 0
        if self._conn is not None:
            rows = sum(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in _QUEUE_TABLES)
        return rows + len(self._manifest_files)

    def report(self) -> dict:
        return {"Source": str(self.path), "Kind": "ultravisor-datadir",
                "QueueDatabase": str(self.queue_db) if self.queue_db else None,
                "StagingRoot": str(self.staging) if self.staging else None, "Read": dict(self.read),
                "LeftOut": self.left_out, "LeftOutExamples": list(self.left_out_examples),
                "ReplacedText": self.replaced_text, **self.changes.report()}

    def pairs(self):
        """``(action, None)`` for every work item, event, attempt and manifest (from the start
        at each call: the copy does not change)."""
        self.read = dict.fromkeys(self.read, 0)
        self.left_out, self.left_out_examples, self.replaced_text = 0, [], 0
        self.changes.reset()
        for problem in self._bad_manifests:
            self._bad(problem)
        actions = self._queue_actions() if self._conn is not None else iter(())
        for action in _chain(actions, self._manifest_actions()):
            if action is None:  # a bad row, left out
                continue
            self.read[_READ_KEYS[action.name]] += 1
            yield action, None

    # ------------------------------------------------------------------ queue database
    def _open_copy(self) -> sqlite3.Connection:
        _remove_abandoned_copies()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{_COPY_PREFIX}{os.getpid()}-")
        copy = Path(self._tmp.name) / QUEUE_DB.name
        for file in (self.queue_db, Path(f"{self.queue_db}-wal"), Path(f"{self.queue_db}-shm")):
            if os.path.lexists(file) or file == self.queue_db:
                real = _inside(file, self.root)
                check_input(file, input_stat(real, "queue database file"), "queue database file", max_bytes=None)
        try:
            if Path(f"{self.queue_db}-shm").exists():
                _snapshot(self.queue_db, copy)
            else:  # nobody has it open: the files are at rest, and a plain copy leaves them untouched
                shutil.copyfile(self.queue_db, copy)
                wal = Path(f"{self.queue_db}-wal")
                if wal.exists():
                    shutil.copyfile(wal, Path(f"{copy}-wal"))
        except OSError as exc:
            raise UsageError(f"cannot read {self.queue_db}: {exc.strerror or exc}") from exc
        conn = sqlite3.connect(copy)
        conn.text_factory = self._text  # text that is not UTF-8 is read with U+FFFD in place (and counted)
        conn.row_factory = sqlite3.Row
        try:
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise UsageError(f"{self.queue_db} is not a readable Ultravisor queue database ({exc})") from None
        missing = [t for t in _QUEUE_TABLES if t not in present]
        if missing:
            conn.close()
            raise UsageError(f"{self.queue_db} has no {', '.join(missing)} table(s); is it Ultravisor's beacon-queue.sqlite?")
        self._has_timeline = "TimelineRecord" in present
        return conn

    def _queue_actions(self):
        try:
            yield from self._queue_rows()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.queue_db} could not be read to the end ({exc}); nothing was imported") from None

    def _queue_rows(self):
        conn = self._conn
        timeline = _timeline(conn) if self._has_timeline else {}
        # built once: reading the attempts table's columns for every work item would cost a query each
        self._attempts_sql = _latest_rows_sql(conn, "BeaconWorkItemAttempt", "AttemptNumber",
                                              "AttemptNumber, IDBeaconWorkItemAttempt", where="WorkItemHash = ?")
        for item in conn.execute(_latest_rows_sql(conn, "BeaconWorkItem", "WorkItemHash", "EnqueuedAt, IDBeaconWorkItem")):
            item = dict(item)
            del item["uvctl_rank"]
            yield self._normalize("QP_UpsertWorkItem", {"WorkItem": item}, item["IDBeaconWorkItem"])
            yield from self._history(item["WorkItemHash"], item, timeline)
        orphans = conn.execute(
            "SELECT WorkItemHash FROM BeaconWorkItemEvent UNION SELECT WorkItemHash FROM BeaconWorkItemAttempt "
            "EXCEPT SELECT WorkItemHash FROM BeaconWorkItem ORDER BY 1"
        ).fetchall()
        for (work_hash,) in orphans:
            yield from self._history(work_hash, None, timeline)

    def _history(self, work_hash: str, item, timeline: dict):
        nth: dict = {}
        for event in self._conn.execute(
            "SELECT * FROM BeaconWorkItemEvent WHERE WorkItemHash = ? ORDER BY IDBeaconWorkItemEvent", (work_hash,)
        ).fetchall():
            kind = (event["EventType"] or "").lower()
            nth[kind] = nth.get(kind, 0) + 1
            stamps = timeline.get((work_hash, kind), [])
            emitted = stamps[nth[kind] - 1] if len(stamps) >= nth[kind] else ((item or {}).get(_EVENT_TIME.get(kind, "")) or "")
            row_id = event["IDBeaconWorkItemEvent"]
            record = {**dict(event), "Seq": row_id, "EmittedAt": emitted,
                      "EventGUID": local_event_guid(work_hash, row_id, kind)}
            yield self._normalize("QP_AppendEvent", {"Event": record}, row_id)
        for attempt in self._conn.execute(self._attempts_sql, (work_hash,)).fetchall():
            attempt = dict(attempt)
            del attempt["uvctl_rank"]
            yield self._normalize("QP_InsertAttempt", {"Attempt": attempt}, attempt["IDBeaconWorkItemAttempt"])

    def _normalize(self, name: str, settings: dict, row_id):
        """The action of one source row; None when it is bad and bad rows are left out."""
        record = next(iter(settings.values()))
        for column, value in record.items():  # a BLOB where Ultravisor writes text
            if isinstance(value, bytes):
                record[column] = self._text(value)
        where = f"{self.queue_db}: {_TABLE_OF[name]} row {row_id}"
        try:
            action = normalize_action(name, settings, notes=(notes := []))
        except UsageError as exc:
            return self._bad(f"{where}: {exc}")
        self.changes.add(where, notes)
        return action

    def _bad(self, problem: str):
        """Leave a bad record out (listed in the report) or stop the import, as asked."""
        if not self.skip_bad:
            raise UsageError(f"{problem}; nothing was imported (or import with --skip-bad-rows to leave such "
                             f"records out, listed)")
        self.left_out += 1
        if len(self.left_out_examples) < _EXAMPLES_KEPT:
            self.left_out_examples.append(problem)
        return None

    def _text(self, value: bytes) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            self.replaced_text += 1
            return value.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ manifests
    def _manifests_in_order(self) -> list[Path]:
        """The manifest files, oldest run first (StartTime, StopTime, path); each is checked here,
        and one that cannot be read is left out (with --skip-bad-rows) or stops the import."""
        keyed = []
        self._staging_root = self.staging.resolve()
        for file in sorted(self.staging.glob("*/Manifest_*.json")):
            try:
                manifest = _read_manifest(file, self._staging_root)
            except UsageError as exc:
                problem = str(exc).removesuffix("; nothing was imported")
                self._bad(problem)  # raises unless bad records are left out
                self._bad_manifests.append(problem)
                continue
            keyed.append((str(manifest.get("StartTime") or ""), str(manifest.get("StopTime") or ""), str(file), file))
        keyed.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in keyed]

    def _manifest_actions(self):
        for file in self._manifest_files:
            try:
                manifest = _read_manifest(file, self._staging_root)
            except UsageError as exc:
                if self._bad(str(exc).removesuffix("; nothing was imported")) is None:
                    continue
            manifest.setdefault("StagingPath", str(file.parent))
            manifest.setdefault("Live", False)
            try:
                action = normalize_action("MS_UpsertManifest", {"Manifest": manifest}, notes=(notes := []))
            except UsageError as exc:
                self._bad(f"manifest {file}: {exc}")
                continue
            self.changes.add(f"manifest {file}", notes)
            yield action


def _latest_rows_sql(conn: sqlite3.Connection, table: str, key: str, order: str, where: str | None = None) -> str:
    """SELECT of ``table``'s rows, one per ``key`` (within ``where``): the last updated, then the
    last inserted. Ultravisor's tables have no unique index (its upsert is read-then-insert),
    so a natural key may have several rows; reading them all would journal the older one
    over the newer at every import."""
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    newest = ("COALESCE(UpdateDate, '') DESC, " if "UpdateDate" in columns else "") + f"ID{table} DESC"
    return (f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {newest}) AS uvctl_rank "
            f"FROM {table}{f' WHERE {where}' if where else ''}) WHERE uvctl_rank = 1 ORDER BY {order}")


def _snapshot(source: Path, copy: Path) -> None:
    """Copy the queue database as of one moment, while Ultravisor may be writing to it.

    Copying the file and then its ``-wal`` is not enough then: a checkpoint in between gives a
    torn copy (attempts of work items the copy does not hold). SQLite's backup API copies every
    page inside one read transaction, so the copy is one committed state. Reading takes the
    reader's place in ``-shm`` that any WAL reader takes; the database and ``-wal`` are not written.
    """
    try:
        reader = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            target = sqlite3.connect(copy)
            try:
                reader.backup(target)
            finally:
                target.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read a consistent copy of {source} ({exc}); check that uvctl may read the "
                         f"beacon folder and its -wal/-shm files, then run the import again") from None


def _remove_abandoned_copies() -> None:
    """Delete the copies left by imports that were killed (their process is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_COPY_PREFIX}*-*"):
        pid = folder.name[len(_COPY_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable


def _timeline(conn: sqlite3.Connection) -> dict:
    stamps: dict = {}
    try:
        rows = conn.execute("SELECT WorkItemHash, EventType, At FROM TimelineRecord WHERE WorkItemHash != '' ORDER BY At, IDTimelineRecord")
        for work_hash, kind, at in rows:
            if at:
                stamps.setdefault((work_hash, (kind or "").lower()), []).append(at)
    except sqlite3.OperationalError:  # an older layout without these columns: infer instead
        return {}
    return stamps


def _inside(file: Path, root: Path) -> Path:
    """``file`` with every link resolved, when that stays inside ``root``: a link in a data dir
    must not make uvctl read (and journal, and flush) a file from anywhere else."""
    real = file.resolve()
    if not real.is_relative_to(root):
        raise UsageError(f"{file} leads outside {root} (to {real}); the import reads only files inside it: "
                         f"replace the link by the file itself, or move it away; nothing was imported")
    return real


def _read_manifest(file: Path, root: Path) -> dict:
    try:
        real = _inside(file, root)
        check_input(file, os.stat(real), "manifest", MAX_DOCUMENT)
        manifest = loads(real.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read manifest {file}: {exc}; nothing was imported") from None
    except ValueError as exc:
        raise UsageError(f"manifest {file} is not valid JSON ({exc}); fix or move it away, or import with "
                         f"--no-manifests; nothing was imported") from None
    if not isinstance(manifest, dict) or not manifest.get("Hash"):
        raise UsageError(f"manifest {file} has no Hash; fix or move it away; nothing was imported")
    return manifest
