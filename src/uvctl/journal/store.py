"""The journal: one SQLite file (WAL) with the ordered log and the current state.

``log`` holds every journaled write action with ``seq INTEGER PRIMARY KEY AUTOINCREMENT``:
a sequence, never a timestamp, never reused after a prune. Writers take the write lock
first (``BEGIN IMMEDIATE``), so seq order is commit order even with several processes
writing the same file, and a reader that has seen seq N has seen every seq below N.

The current-state tables carry the UV table names and columns (``UVQueueWorkItem``,
``UVQueueWorkItemEvent``, ``UVQueueWorkItemAttempt``, ``UVManifest``), so reads work with
no backend at all. The log row and the state change of a write share one transaction.
Beside the UV columns each state row has ``uvctl_extra`` and each log row ``extra``: the
fields the record was sent with that are no UV column (``Action.extra``, JSON text or NULL).
Reads of current state return them merged in under the UV columns; :meth:`Journal.read` and
:meth:`Journal.all_rows` (what backends receive and are compared with) never do.

What a running coordinator sends is journaled so that the state, and the log replayed to a
backend, end as the coordinator's truth (docs/architecture.md, "Live traffic"):

- a terminal work item (``actions.WORK_ITEM_TERMINAL``) is not taken back to a live Status by
  an upsert or patch of an attempt it already had (``_regresses``): an upsert then only fills
  columns still at their default, a patch loses its Status;
- a manifest stub (``actions.is_manifest_stub``) never replaces content: over a finished run
  (``actions.MANIFEST_TERMINAL``) it changes nothing, over another it brings only its
  non-empty fields;
- an attempt's outcome for an attempt not journaled is journaled as that attempt
  (``QP_InsertAttempt``); an insert of an attempt already there fills its default columns.

In each case the log gets the action as applied (the merged record, the patch without its
Status), never the one sent.

Durability: ``PRAGMA synchronous=FULL`` by default (each commit is fsynced: survives power
loss). ``UVCTL_JOURNAL_SYNC=normal`` trades that for speed: commits then survive a crash
or ``kill -9`` of the process, but the last ones may be lost if the machine loses power.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import orjson as _orjson

from .. import multirow
from ..actions import MANIFEST as MANIFEST_BRIDGE
from ..actions import QUEUE as QUEUE_BRIDGE
from ..actions import (MANIFEST_TERMINAL, WORK_ITEM_TERMINAL, WRITE_ACTIONS, Action, bridge_of, is_empty_value,
                       is_manifest_stub)
from ..errors import UsageError, UvctlError
from ..paths import check_data_dir, check_state_file, create_private
from .columns import ATTEMPT, EVENT, MANIFEST, WORK_ITEM, table, tables
from .filters import normalize_filter, normalize_limit, to_sql
from .normalize import now_iso, project_record

#: 2 added ``early_patch`` (changes that arrived before their record); 3 the fields that are
#: no UV column (``uvctl_extra`` in the state tables, ``extra`` in the log).
FORMAT_VERSION = 3
#: The state tables' column of a record's non-UV fields (JSON text, or NULL): the ``uvctl_``
#: prefix keeps it apart from every UV column.
EXTRA_COLUMN = "uvctl_extra"
#: Seconds within which a change that arrived before its record is folded into it (a race
#: between Ultravisor's concurrent bridge calls); older ones are dropped when the record comes.
EARLY_PATCH_WINDOW = 60.0
#: Actions per chunk of a transaction: existence checks and inserts are batched per chunk.
_CHUNK = 500
#: ... or fewer, once their text adds up to this many characters (rows of megabytes stay few in memory).
_CHUNK_TEXT = 8_000_000
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_orjson_dumps = _orjson.dumps
#: The largest seq SQLite can hold (the open upper bound of :meth:`Journal.read`).
_MAX_SEQ = 2**63 - 1
_SYNC_MODES = ("full", "normal")
BRIDGES = (QUEUE_BRIDGE, MANIFEST_BRIDGE)
#: The bridge of every journaled write action (a dict look-up per record instead of a call).
_BRIDGE_OF = {name: bridge_of(name) for name in WRITE_ACTIONS}

_INDEXES = (
    ("UX_WorkItem_Hash", WORK_ITEM, ("WorkItemHash",), True),
    ("IX_WorkItem_Status", WORK_ITEM, ("Status",), False),
    ("IX_WorkItem_RunID", WORK_ITEM, ("RunID",), False),
    ("IX_WorkItem_Assigned", WORK_ITEM, ("AssignedBeaconID", "Status"), False),
    ("IX_WorkItem_Enqueued", WORK_ITEM, ("EnqueuedAt",), False),
    ("UX_Event_GUID", EVENT, ("EventGUID",), True),
    ("IX_Event_HashSeq", EVENT, ("WorkItemHash", "Seq"), False),
    ("UX_Attempt_HashNum", ATTEMPT, ("WorkItemHash", "AttemptNumber"), True),
    ("UX_Manifest_Hash", MANIFEST, ("Hash",), True),
    ("IX_Manifest_OpHash", MANIFEST, ("OperationHash",), False),
)


@dataclass
class Recorded:
    """What journaling one action did.

    ``outcome`` is ``applied`` (logged, state changed), ``not-found`` (logged, but the
    record it patches is not in the journal: the backend may still have it),
    ``duplicate`` (an event or attempt already journaled: not logged again),
    ``already-imported`` (the same source line was imported before: not logged),
    ``unchanged`` (the state already equals it: not logged) or ``already-absent``
    (removing a manifest that is already removed: not logged).
    """

    action: Action
    outcome: str
    #: The bridge's last seq just before this record (what a contiguous high-water mark holds).
    previous: int | None = None

    @property
    def logged(self) -> bool:
        return self.action.seq is not None


def default_path() -> Path:
    """``<data dir>/journal.sqlite``."""
    from ..paths import JOURNAL_FILE, ensure_data_dir

    return ensure_data_dir() / JOURNAL_FILE


class Journal:
    """The local-first store. Open with :meth:`Journal.open`; usable as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection, synchronous: str):
        self.path = path
        self.synchronous = synchronous
        self._conn = conn
        self._lock = threading.RLock()
        #: ``(data_version, next seq, {bridge: last seq})`` as our last write left them; see
        #: :meth:`_start_numbering`. None when unknown.
        self._seq_cache = None
        # group commit (see apply): the requests waiting for the next commit, and whether a
        # thread is writing one now
        self._queue: list = []
        self._queue_lock = threading.Lock()
        self._leading = False
        self._journal_id = None
        #: Opened with ``read_only``: nothing of the file is created or changed.
        self.read_only = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path=None, synchronous: str | None = None, read_only: bool = False) -> "Journal":
        """Open (creating when missing) the journal at ``path`` (default: the data dir's).

        With ``read_only`` nothing is created or changed (not even the data dir): a missing,
        empty or table-less file reads as an empty journal, and writes fail. A database that
        holds tables but no uvctl format marker is refused untouched either way.
        """
        from ..paths import JOURNAL_FILE, data_file

        if path is not None:
            path = Path(path)
        else:
            path = data_file(JOURNAL_FILE) if read_only else default_path()
        mode = (synchronous or os.environ.get("UVCTL_JOURNAL_SYNC") or "full").lower()
        if mode not in _SYNC_MODES:
            raise UsageError(f"UVCTL_JOURNAL_SYNC must be 'full' or 'normal', got {mode!r}")
        try:
            check_data_dir(path.parent)
            if read_only:
                if path.exists():  # another user's journal is refused; nothing is changed
                    check_state_file(path, os.stat(path), "journal", tighten=False)
                conn = _connect_read_only(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                # a file is tightened to 0600 only once it is known to be a uvctl journal
                create_private(path, tighten=False)
                conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise UvctlError(f"cannot open the journal {path}: {exc}{_unwritable_hint(path, exc)}") from exc
        journal = cls(path, conn, mode)
        journal.read_only = read_only
        try:
            journal._setup()
        except sqlite3.DatabaseError as exc:
            conn.close()
            hint = _unwritable_hint(path, exc)
            if hint:  # the journal is fine: only the file system refuses the writes opening it needs
                raise UvctlError(f"cannot open the journal {path} ({exc}){hint}; nothing was changed") from exc
            raise UvctlError(
                f"the journal {path} is not usable ({exc}); move it away to start a new one "
                f"(its unflushed records are then lost)"
            ) from exc
        except BaseException:
            conn.close()
            raise
        if not read_only:
            check_state_file(path, os.stat(path), "journal")
        return journal

    def _setup(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 60000")
        found = _format_of(conn, self.path)  # before anything could change the file
        if not self.read_only:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise sqlite3.DatabaseError("it cannot switch to WAL mode")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = OFF")
        self._upsert_sql = {name: _upsert_sql(spec) for name, spec in tables().items()}
        self._event_row = itemgetter(*table(EVENT).columns)  # an event record -> its row, in column order
        self._insert_event_sql = self._upsert_sql[EVENT].split(" ON CONFLICT")[0] + ' ON CONFLICT ("EventGUID") DO NOTHING'
        if found is not None and found > FORMAT_VERSION:
            raise self._too_new(found)
        if found == FORMAT_VERSION or (found is not None and self.read_only):
            # an existing journal needs no DDL (and no write lock to open); read-only, an older
            # format is read as it is (what it lacks only writes use)
            present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            needed = ["log", *(spec.name for spec in tables().values())]
            if found == FORMAT_VERSION:
                needed += ["imported", "early_patch"]
            missing = [name for name in needed if name not in present]
            if missing:
                raise sqlite3.DatabaseError(f"its table {missing[0]} is missing")
            return
        if self.read_only:  # a missing, empty or table-less file: an empty journal, in memory
            conn.close()
            self._conn = conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        with self._transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, bridge TEXT NOT NULL, "
                "action TEXT NOT NULL, settings TEXT NOT NULL, recorded_at TEXT NOT NULL, extra TEXT)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS IX_log_bridge_seq ON log (bridge, seq)")
            conn.execute("CREATE TABLE IF NOT EXISTS imported (source_key TEXT PRIMARY KEY, seq INTEGER) WITHOUT ROWID")
            conn.execute("CREATE TABLE IF NOT EXISTS early_patch (tbl TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, "
                         "patch TEXT NOT NULL, PRIMARY KEY (tbl, key, seq)) WITHOUT ROWID")
            for spec in tables().values():
                cols = ", ".join(f'"{c}" {_sql_type(spec.types[c])}' for c in spec.columns)
                conn.execute(f'CREATE TABLE IF NOT EXISTS "{spec.name}" ({cols}, "{EXTRA_COLUMN}" TEXT)')
            # a journal of an older format: its tables gain the columns added since (nullable, so
            # its rows stay as they are)
            for tbl, col in (("log", "extra"), *((spec.name, EXTRA_COLUMN) for spec in tables().values())):
                if col not in {row[1] for row in conn.execute(f'PRAGMA table_info("{tbl}")')}:
                    conn.execute(f'ALTER TABLE "{tbl}" ADD COLUMN "{col}" TEXT')
            for name, tbl, cols, unique in _INDEXES:
                quoted = ", ".join(f'"{c}"' for c in cols)
                conn.execute(f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}" ON "{tbl}" ({quoted})')
            found = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None:
                conn.execute("INSERT INTO meta VALUES ('format', ?), ('created_at', ?), ('journal_id', ?)",
                             (str(FORMAT_VERSION), now_iso(), uuid.uuid4().hex))
            elif int(found[0]) > FORMAT_VERSION:  # another process made it meanwhile
                raise self._too_new(found[0])
            else:  # an older format: what it lacked was created above
                conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))

    def _too_new(self, found) -> UvctlError:
        return UvctlError(f"the journal {self.path} has format {found}, newer than this uvctl understands "
                          f"({FORMAT_VERSION}); upgrade uvctl")

    @property
    def journal_id(self) -> str | None:
        """A random id given to this journal file when it was made: high-water marks recorded
        for another journal file (one moved away and replaced) do not apply to this one."""
        if self._journal_id is None:
            with self._lock:
                query = "SELECT value FROM meta WHERE key = 'journal_id'"
                row = self._conn.execute(query).fetchone()
                if row is None and self.read_only:  # no mark file can name an id it never had
                    return None
                if row is None:  # a journal made before journals had ids
                    with self._transaction():
                        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('journal_id', ?)", (uuid.uuid4().hex,))
                    row = self._conn.execute(query).fetchone()
                self._journal_id = row[0]
        return self._journal_id

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _transaction(self):
        return _Transaction(self)

    # ------------------------------------------------------------------ writes
    def record(self, action: Action) -> Action:
        """Journal one write action: log row (next seq) and state change in one transaction.

        Returns the action as journaled (with ``seq``; an event with its ``Seq`` filled).
        ``seq`` is None when nothing needed logging (see :class:`Recorded`).
        """
        return self.apply([action])[0].action

    def record_many(self, actions) -> list[Action]:
        """Journal ``actions`` in order, all in one transaction (all or nothing)."""
        return [r.action for r in self.apply(actions)]

    def apply(self, actions, reimport: bool = False, source_keys=None) -> list[Recorded]:
        """Journal ``actions`` in one transaction and say what each one did.

        With ``reimport``, an attempt that is already journaled but differs becomes a
        ``QP_UpdateAttemptOutcome`` of the differing columns (a source re-read later).
        ``source_keys`` (one string per action) names where each action came from: an
        action whose key was imported before is skipped (outcome ``already-imported``).

        With ``synchronous=FULL``, threads sharing this journal are committed together (group
        commit): calls that arrive while a commit is being written wait for it, then share the
        next commit and its fsync. Each call stays all or nothing and sees only its own error.
        With NORMAL a commit has no fsync to share, and calls simply take turns.
        """
        actions = list(actions)
        keys = list(source_keys) if source_keys is not None else [None] * len(actions)
        request = _Request(list(zip(actions, keys)), reimport)
        if self.synchronous != "full":  # handing the lead between threads would cost more than it saves
            self._commit_group([request])
            if request.error is not None:
                raise request.error
            return request.results
        with self._queue_lock:
            self._queue.append(request)
            follow = self._leading
            if follow:
                request.wake = threading.Lock()
                request.wake.acquire()
            self._leading = True
        if follow:
            try:
                request.wake.acquire()  # released when our group is written, or when it is our turn to lead
            except BaseException:  # a signal (Ctrl-C) while waiting
                self._abandon(request)
                raise
        if not request.done:
            self._lead()
        if request.error is not None:
            raise request.error
        return request.results

    def _lead(self) -> None:
        """Write everything queued as one group, then pass the lead to the first call that
        queued meanwhile (only the threads that must wake are woken)."""
        with self._queue_lock:
            group, self._queue = self._queue, []
        try:
            self._commit_group(group)
        finally:
            with self._queue_lock:
                for request in group:
                    request.done = True
                    if request.wake is not None:
                        request.wake.release()
                self._pass_lead()

    def _pass_lead(self) -> None:
        """Wake the first queued call to lead the next group, or mark that nobody leads.
        Called with the queue lock held."""
        if self._queue:
            self._queue[0].leads = True
            self._queue[0].wake.release()
        else:
            self._leading = False

    def _abandon(self, request: "_Request") -> None:
        """A waiting call was interrupted: take it out of the queue unless a group already holds
        it, and pass the lead on if it had just been given the lead."""
        with self._queue_lock:
            if request.done or not any(queued is request for queued in self._queue):
                return  # written (or being written) by a group: nothing to undo
            self._queue.remove(request)
            if request.leads:
                self._pass_lead()

    def _commit_group(self, group: list) -> None:
        """Write every request of ``group`` in one transaction (savepoints keep them apart)."""
        try:
            with self._transaction() as tx:
                self._begin_numbering(tx)
                if len(group) == 1:  # alone: any error rolls back the transaction, as a plain call
                    results = []
                    self._apply_pairs(group[0].pairs, group[0].reimport, results.append)
                    group[0].results = results
                elif not self._apply_together(group):
                    for request in group:
                        self._apply_request(tx, request)
        except BaseException as exc:
            for request in group:
                if request.error is None:
                    request.results = None
                    request.error = exc if isinstance(exc, Exception) or request is group[0] else UvctlError(
                        f"the journal write was interrupted ({type(exc).__name__}); nothing was journaled")
            if not isinstance(exc, Exception):
                raise

    def _apply_together(self, group: list) -> bool:
        """The whole group as one pass (one set of queries and inserts); False, with nothing
        written, when any of it fails: then each request is written on its own."""
        if len({request.reimport for request in group}) != 1:
            return False
        try:
            results = self._apply_in_savepoint([pair for request in group for pair in request.pairs], group[0].reimport)
        except Exception:
            return False
        start = 0
        for request in group:  # one Recorded per pair, in order
            request.results = results[start:start + len(request.pairs)]
            start += len(request.pairs)
        return True

    def _apply_request(self, tx: "_Transaction", request: "_Request") -> None:
        """One request of a group: on failure only its own writes are undone, and it gets the error."""
        try:
            request.results = self._apply_in_savepoint(request.pairs, request.reimport)
        except Exception as exc:
            request.error = tx._failed(exc) if isinstance(exc, sqlite3.Error) else exc

    def _apply_in_savepoint(self, pairs: list, reimport: bool) -> list:
        """``pairs`` journaled inside a savepoint; their Recorded list. On any error the
        savepoint is rolled back, the numbering restored, and the error raised."""
        saved = (self._tx_next_seq, dict(self._tx_last_seq), dict(self._tx_known_last))
        self._conn.execute("SAVEPOINT grouped")
        results: list = []
        try:
            self._apply_pairs(pairs, reimport, results.append)
        except Exception:
            self._conn.execute("ROLLBACK TO grouped")
            self._conn.execute("RELEASE grouped")
            self._tx_next_seq, self._tx_last_seq, known = saved
            self._tx_known_last.clear()  # the very dict _begin_numbering's cache refers to
            self._tx_known_last.update(known)
            self._tx_log, self._tx_events = [], []
            raise
        self._conn.execute("RELEASE grouped")
        return results

    def apply_stream(self, pairs, reimport: bool = False, sink=None, commit_every: int | None = None,
                     pause: float = 0.0) -> dict:
        """Journal ``(action, source_key)`` pairs from any iterable, streamed (never held whole).

        In one transaction, so anything the iterable raises rolls everything back; or, with
        ``commit_every``, in one transaction per that many pairs, so other writers (bridge
        calls) get the journal between them instead of waiting for a long import. What a
        failure then leaves committed is a prefix the source keys make an exact resume of.
        ``pause`` seconds between two commits let a writer of another process in: SQLite has it
        poll for the lock (every 100 ms at most), and one taken again at once is never seen free.
        ``sink`` receives each :class:`Recorded`. Returns ``{"Outcomes": {outcome: n},
        "FirstSeq", "LastSeq"}`` over the whole stream.
        """
        pairs = iter(pairs)
        total: dict = {"Outcomes": {}, "FirstSeq": None, "LastSeq": None}
        first = True
        while True:
            if not first and pause:
                time.sleep(pause)
            first = False
            part = pairs if commit_every is None else itertools.islice(pairs, commit_every)
            with self._transaction() as tx:
                self._begin_numbering(tx)
                tally = self._apply_pairs(part, reimport, sink)
            for outcome, n in tally["Outcomes"].items():
                total["Outcomes"][outcome] = total["Outcomes"].get(outcome, 0) + n
            if total["FirstSeq"] is None:
                total["FirstSeq"] = tally["FirstSeq"]
            total["LastSeq"] = tally["LastSeq"] if tally["LastSeq"] is not None else total["LastSeq"]
            if commit_every is None or sum(tally["Outcomes"].values()) < commit_every:
                total["Outcomes"] = dict(sorted(total["Outcomes"].items()))
                return total

    def _begin_numbering(self, tx: "_Transaction") -> None:
        """Start a write transaction's numbering; the seq cache is renewed when ``tx`` commits."""
        # Taken under the transaction's lock: another thread sharing this journal may have
        # committed since (data_version does not change for our own connection's commits).
        cached, self._seq_cache = self._seq_cache, None  # unknown until this transaction commits
        self._tx_stamp = now_iso()
        self._tx_last_seq, self._tx_log, self._tx_events = {}, [], []
        version, known = self._start_numbering(cached)

        def committed():
            self._seq_cache = (version, self._tx_next_seq, {**known, **self._tx_last_seq})

        tx.on_commit = committed

    def _apply_pairs(self, pairs, reimport: bool, sink) -> dict:
        """Journal ``(action, source_key)`` pairs inside the open write transaction."""
        outcomes: dict = {}
        first = last = None
        pairs = iter(pairs)
        stamp = self._tx_stamp
        while True:
            chunk = _take(pairs, _CHUNK, _CHUNK_TEXT)
            if not chunk:
                break
            self._prefetch_events(chunk)
            for action, key in chunk:
                if action.name not in _BRIDGE_OF:
                    raise UsageError(f"{action.name} is a read; only write actions can be journaled")
                # a key, or a tuple of them: the current one and older forms a source also answers to
                keys = (key,) if key is None or type(key) is str else key
                if key is not None and any(self._conn.execute("SELECT 1 FROM imported WHERE source_key = ?", (k,)).fetchone()
                                           for k in keys):
                    done = Recorded(action, "already-imported")
                else:
                    done = self._apply_one(action, stamp, reimport)
                    if key is not None:
                        self._conn.execute("INSERT INTO imported VALUES (?, ?)", (keys[0], done.action.seq))
                outcomes[done.outcome] = outcomes.get(done.outcome, 0) + 1
                if done.logged:
                    first = done.action.seq if first is None else first
                    last = done.action.seq
                if sink is not None:
                    sink(done)
            self._write_buffers()
        return {"Outcomes": dict(sorted(outcomes.items())), "FirstSeq": first, "LastSeq": last}

    def _start_numbering(self, cached) -> tuple:
        """Set the next seq of this write transaction; ``(data_version, {bridge: last seq})``.

        Valid inside the transaction only: we hold the write lock, so nobody else appends
        meanwhile and the next seqs are ours to number (AUTOINCREMENT keeps sqlite_sequence
        at the highest seq ever written). ``PRAGMA data_version`` changes whenever another
        connection (any process) has committed since we last looked; while it has not, the
        numbers our own last commit left are still exact and cost no query.
        """
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if cached is not None and cached[0] == version:
            self._tx_next_seq = cached[1]
            self._tx_known_last = cached[2]
        else:
            self._tx_next_seq = self.last_seq() + 1
            self._tx_known_last = {}
        return version, self._tx_known_last

    def _prefetch_events(self, chunk) -> None:
        """For the events of ``chunk``: which EventGUIDs exist, and each item's highest Seq.

        Two queries per chunk instead of two per event. Events are inserted at the end of
        the chunk (:meth:`_write_buffers`), so these per-chunk caches are all that knows
        about the chunk's own events until then.
        """
        events = [a.settings["Event"] for a, _ in chunk if a.name == "QP_AppendEvent"]
        self._tx_guids, self._tx_event_seq = set(), {}
        if len(events) == 1:  # a single bridge call: both answers in one statement
            guid, hash_ = events[0]["EventGUID"], events[0]["WorkItemHash"]
            found, top = self._conn.execute(
                'SELECT EXISTS (SELECT 1 FROM "UVQueueWorkItemEvent" WHERE "EventGUID" = ?), '
                '(SELECT MAX("Seq") FROM "UVQueueWorkItemEvent" WHERE "WorkItemHash" = ?)', (guid, hash_)).fetchone()
            if found:
                self._tx_guids.add(guid)
            self._tx_event_seq[hash_] = top or 0
            return
        for part in _parts(sorted({e["EventGUID"] for e in events})):
            self._tx_guids.update(r[0] for r in self._conn.execute(
                f'SELECT "EventGUID" FROM "UVQueueWorkItemEvent" WHERE "EventGUID" IN ({_marks(part)})', part))
        for part in _parts(sorted({e["WorkItemHash"] for e in events})):
            self._tx_event_seq.update(dict.fromkeys(part, 0))
            self._tx_event_seq.update(self._conn.execute(
                f'SELECT "WorkItemHash", MAX("Seq") FROM "UVQueueWorkItemEvent" WHERE "WorkItemHash" IN ({_marks(part)}) '
                f'GROUP BY "WorkItemHash"', part).fetchall())

    def _write_buffers(self) -> None:
        if self._tx_events:
            self._insert_rows(self._insert_event_sql, self._tx_events)
            self._tx_events = []
        if self._tx_log:
            self._insert_rows("INSERT INTO log (seq, bridge, action, settings, recorded_at, extra) "
                              "VALUES (?, ?, ?, ?, ?, ?)", self._tx_log)
            self._tx_log = []

    def _insert_rows(self, sql: str, rows: list) -> None:
        """Run the single-row INSERT ``sql`` for every row: one row alone, more as multi-row statements."""
        if len(rows) == 1:
            self._conn.execute(sql, rows[0])
            return
        for text, flat in multirow.statements(sql, rows, multirow.variable_limit(self._conn)):
            self._conn.execute(text, flat)

    def _apply_one(self, action: Action, stamp: str, reimport: bool) -> Recorded:
        name, s = action.name, action.settings
        if name == "QP_AppendEvent":  # the most frequent action by far
            return self._append_event(action, stamp)
        if name in ("QP_UpsertWorkItem", "MS_UpsertManifest"):
            return self._upsert(action, stamp, reimport)
        if name == "QP_InsertAttempt":
            existing = self._stored(ATTEMPT, s["Attempt"])
            if existing is None:
                return self._insert(ATTEMPT, self._with_early_patches(action, ATTEMPT, "Attempt", reimport), stamp)
            filling = _attempt_fill(existing, action, reimport)
            if filling is None:
                return Recorded(action, "duplicate")
            action, name, s = filling, filling.name, filling.settings
        if name in ("QP_UpdateWorkItem", "QP_UpdateAttemptOutcome"):
            tbl = WORK_ITEM if name == "QP_UpdateWorkItem" else ATTEMPT
            key = {c: s[c] for c in table(tbl).key}
            existing = self._stored(tbl, key)
            if existing is None and tbl == ATTEMPT:
                # an outcome without its insert (an item pushed over WebSocket never gets one):
                # journaled as the attempt itself, so that every backend stores it
                return self._insert(ATTEMPT, _attempt_from_outcome(action), stamp)
            if existing is None:
                logged = self._log(action, stamp, "not-found")
                self._conn.execute("INSERT INTO early_patch VALUES (?, ?, ?, ?)",
                                   (tbl, _encode(list(key.values())), logged.action.seq, _encode(s["Patch"])))
                return logged
            if tbl == WORK_ITEM and self._regresses(existing, s["Patch"].get("Status"), s["Patch"].get("AttemptNumber")):
                action = Action(name, {**s, "Patch": {c: v for c, v in s["Patch"].items() if c != "Status"}},
                                extra=action.extra)
            patch = action.settings["Patch"]
            if _covers(existing, patch):
                return Recorded(action, "unchanged")
            self._update(tbl, key, patch, _merged_extra(existing, action, "Patch"))
            return self._log(action, stamp)
        if name == "MS_RemoveManifest":
            key = {"Hash": s["RunHash"]}
            existing = self._stored(MANIFEST, key)
            if existing is not None and existing["Deleted"]:
                return Recorded(action, "already-absent")
            if existing is None:
                return self._log(action, stamp, "not-found")
            self._update(MANIFEST, key, {"Deleted": True})
            return self._log(action, stamp)
        raise UsageError(f"{name} is not a journaled write action")

    def _upsert(self, action: Action, stamp: str, reimport: bool) -> Recorded:
        """A whole work item or manifest: inserted, replacing the stored one, or merged into it
        when it would take back what the stored one already has (:meth:`_effective_upsert`)."""
        tbl, field = (WORK_ITEM, "WorkItem") if action.name == "QP_UpsertWorkItem" else (MANIFEST, "Manifest")
        existing = self._stored(tbl, action.settings[field])
        if existing is None:
            if tbl == WORK_ITEM:
                action = self._with_early_patches(action, tbl, field, reimport)
            return self._insert(tbl, action, stamp)
        if _covers(existing, action.settings[field]):
            return Recorded(action, "unchanged")
        effective = self._effective_upsert(tbl, existing, action)
        if effective is None or _covers(existing, effective.settings[field]):
            return Recorded(action, "unchanged")
        return self._insert(tbl, effective, stamp, existing)

    def _effective_upsert(self, tbl: str, existing: dict, action: Action) -> Action | None:
        """What an upsert over the stored ``existing`` should leave, as the action to log (the
        log is replayed to backends); None to keep ``existing`` as it is.

        - A work item that is terminal (``WORK_ITEM_TERMINAL``) is not taken back to a live
          Status by an upsert of the same attempt (:meth:`_regresses`): Ultravisor serializes an
          item when the write is delivered, and replays old ones. The stored record is kept; the
          upsert only fills columns still at their default.
        - A manifest stub (``actions.is_manifest_stub``: a replay, a restart's ``Error`` mark)
          never replaces content: over a finished run (``MANIFEST_TERMINAL``) it changes
          nothing; over any other it brings only its non-empty fields, the stored manifest's
          content stays. A removed manifest is revived by it as by any upsert.
        """
        record = action.settings["WorkItem" if tbl == WORK_ITEM else "Manifest"]
        if tbl == WORK_ITEM:
            if not self._regresses(existing, record["Status"], record["AttemptNumber"]):
                return action
            defaults = table(WORK_ITEM).defaults
            fill = {c: v for c, v in record.items() if existing[c] == defaults[c] and v != existing[c]}
            if not fill:
                return None
            kept = {**{c: existing[c] for c in table(WORK_ITEM).columns}, **fill}
            extra = {**((action.extra or {}).get("WorkItem") or {}), **_extra_of(existing)}  # the stored ones win
            return Action(action.name, {"WorkItem": kept}, extra={"WorkItem": extra} if extra else None)
        if existing["Deleted"]:
            return action
        sent = _json_object(record["ManifestJSON"])
        if not is_manifest_stub(sent):
            return action
        if existing["Status"] in MANIFEST_TERMINAL:
            return None
        merged = _json_object(existing["ManifestJSON"]) or {}
        merged.update((k, v) for k, v in sent.items() if k not in merged or not is_empty_value(v))
        # the stub's values were checked when it was normalized; a field that would not fit is dropped
        return Action(action.name, {"Manifest": project_record(action.name, MANIFEST, merged, [])}, extra=action.extra)

    def _regresses(self, existing: dict, status, attempt) -> bool:
        """True when ``status`` would take the work item ``existing`` from a terminal Status
        back to a live one within an attempt it already had: ``attempt`` (the incoming
        AttemptNumber) is not higher than the highest the journal knows of the item."""
        if existing["Status"] not in WORK_ITEM_TERMINAL or status is None or status in WORK_ITEM_TERMINAL:
            return False
        if attempt is None:
            return True
        top = self._conn.execute('SELECT MAX("AttemptNumber") FROM "UVQueueWorkItemAttempt" WHERE "WorkItemHash" = ?',
                                 (existing["WorkItemHash"],)).fetchone()[0]
        # A terminal item was attempted at least once, whatever its AttemptNumber says: Ultravisor
        # leaves 0 on an item it pushed over WebSocket (its outcome says attempt 1), and after a
        # restart re-dispatches such an item as attempt 1 (captures qp1b/qp1d).
        return attempt <= max(existing["AttemptNumber"], top or 0, 1)

    def _insert(self, tbl: str, action: Action, stamp: str, existing: dict | None = None) -> Recorded:
        """Log the whole record of ``action`` and write it over ``existing`` (its extras merged)."""
        field = next(iter(action.settings))
        record = action.settings[field]
        logged = self._log(action, stamp)
        extra = _merged_extra(existing, action, field)
        self._conn.execute(self._upsert_sql[tbl], [*(record[c] for c in table(tbl).columns), extra])
        return logged

    def _with_early_patches(self, action: Action, tbl: str, field: str, imported: bool = False) -> Action:
        """``action`` (the first record of its key) with the changes that arrived before it.

        Ultravisor's bridge calls are concurrent: an update can arrive before the record it
        patches (upstream then loses it). The journal keeps such a change (``not-found``) and
        folds it into the record when that arrives, so the record is logged as it should end
        up. Replaying the log then gives the same tables as the first flush did: the early
        update patches the stored record with the values it already has.
        """
        record = action.settings[field]
        key = _encode([record[c] for c in table(tbl).key])
        rows = self._conn.execute(
            "SELECT e.seq, e.patch, l.recorded_at, i.seq IS NOT NULL FROM early_patch e LEFT JOIN log l ON l.seq = e.seq "
            "LEFT JOIN imported i ON i.seq = e.seq WHERE e.tbl = ? AND e.key = ? ORDER BY e.seq", (tbl, key)).fetchall()
        if not rows:
            return action
        self._conn.execute("DELETE FROM early_patch WHERE tbl = ? AND key = ?", (tbl, key))
        # Only a change that arrived shortly before is a race; an older one was for a record
        # this journal never held (the backend's, or one that never came) and must not
        # override a fresh record of the same key.
        # An import replays a history in its order, possibly over several runs (a stopped import
        # is finished by the next): there a change an import brought is folded whatever its age.
        # A change journaled in this very transaction (calls grouped into one commit) has its log
        # row still in the buffer: it is as fresh as can be.
        since = now_iso(ago=EARLY_PATCH_WINDOW)
        buffered = {row[0] for row in self._tx_log}
        fresh = [json.loads(patch) for seq, patch, recorded_at, from_import in rows
                 if (imported and from_import) or seq in buffered
                 or (recorded_at is not None and recorded_at >= since)]
        if not fresh:
            return action
        merged = dict(record)
        for patch in fresh:
            if tbl == WORK_ITEM and self._regresses(merged, patch.get("Status"), patch.get("AttemptNumber")):
                patch = {c: v for c, v in patch.items() if c != "Status"}  # the record was serialized later
            merged.update(patch)
        return Action(action.name, {**action.settings, field: merged}, action.seq, action.extra)

    def _append_event(self, action: Action, stamp: str) -> Recorded:
        event = dict(action.settings["Event"])
        guid, hash_ = event["EventGUID"], event["WorkItemHash"]
        if guid in self._tx_guids:  # a replayed event changes nothing and is not logged
            return Recorded(action, "duplicate")
        last = self._tx_event_seq[hash_]
        if not event.get("Seq"):
            event["Seq"] = last + 1
        self._tx_event_seq[hash_] = max(last, event["Seq"])
        self._tx_guids.add(guid)
        self._tx_events.append((*self._event_row(event), _merged_extra(None, action, "Event")))
        return self._log(action, stamp, settings={**action.settings, "Event": event})

    def _log(self, action: Action, stamp: str, outcome: str = "applied", settings: dict | None = None) -> Recorded:
        """Buffer the log row of ``action`` (with ``settings`` when they differ from its own)."""
        settings = action.settings if settings is None else settings
        bridge = _BRIDGE_OF[action.name]
        previous = self._tx_last_seq.get(bridge)
        if previous is None:
            previous = self._tx_known_last.get(bridge)
            if previous is None:
                previous = self.last_seq(bridge)
                self._tx_known_last[bridge] = previous
        seq = self._tx_next_seq
        self._tx_next_seq += 1
        extra = _encode_extra(action.extra) if action.extra else None
        self._tx_log.append((seq, bridge, action.name, _encode(settings), stamp, extra))
        self._tx_last_seq[bridge] = seq
        return Recorded(Action(action.name, settings, seq, action.extra), outcome, previous)

    def _update(self, tbl: str, key: dict, patch: dict, extra: str | None = None) -> None:
        if extra is not None:
            patch = {**patch, EXTRA_COLUMN: extra}
        if not patch:
            return
        sets = ", ".join(f'"{c}" = ?' for c in patch)
        where = " AND ".join(f'"{c}" = ?' for c in key)
        self._conn.execute(f'UPDATE "{tbl}" SET {sets} WHERE {where}', [*patch.values(), *key.values()])

    def _fetch_by_key(self, tbl: str, record: dict, extra: str = "merge") -> dict | None:
        key = table(tbl).key
        where = " AND ".join(f'"{c}" = ?' for c in key)
        rows = self._select(f'SELECT * FROM "{tbl}" WHERE {where}', [record[c] for c in key], tbl, extra)
        return rows[0] if rows else None

    def _stored(self, tbl: str, record: dict) -> dict | None:
        """The stored row of ``record``'s key: UV columns, and its extras as text under ``EXTRA_COLUMN``."""
        return self._fetch_by_key(tbl, record, "raw")

    # ------------------------------------------------------------------ the log
    def read(self, bridge: str, after_seq: int = 0, limit: int = 500, upto_seq: int | None = None) -> list[Action]:
        """Journaled write actions of ``bridge`` with ``seq > after_seq``, in seq order: what a
        backend receives, UV columns only (``extra`` stays None; the log row keeps it).

        ``upto_seq`` (added, optional) also leaves out every seq above it (a flush stops at
        the last seq it saw when it started).
        """
        upper = _MAX_SEQ if upto_seq is None else int(upto_seq)
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, action, settings FROM log WHERE bridge = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (bridge, int(after_seq), upper, int(limit)),
            ).fetchall()
        if not rows:
            return []
        settings = _decode_all([row[2] for row in rows])
        return [Action(name, values, seq) for (seq, name, _), values in zip(rows, settings)]

    def last_seq(self, bridge: str | None = None) -> int:
        """The highest seq ever journaled (for ``bridge``, or overall); pruning never lowers it."""
        with self._lock:
            if bridge is None:
                row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
                return int(row[0]) if row else 0
            row = self._conn.execute("SELECT MAX(seq) FROM log WHERE bridge = ?", (bridge,)).fetchone()
            if row[0] is not None:  # rows left after a prune are all above its mark
                return int(row[0])
            pruned = self._conn.execute("SELECT value FROM meta WHERE key = ?", (f"pruned_upto:{bridge}",)).fetchone()
        return int(pruned[0]) if pruned else 0

    def count_after(self, bridge: str, seq: int) -> int:
        """How many log rows of ``bridge`` have a seq above ``seq`` (the pending ones)."""
        with self._lock:
            return self._conn.execute(
                "SELECT COUNT(*) FROM log WHERE bridge = ? AND seq > ?", (bridge, int(seq))
            ).fetchone()[0]

    def prune(self, bridge: str, upto_seq: int, keep: int = 0, dry_run: bool = False) -> int:
        """Delete the log rows of ``bridge`` with ``seq <= upto_seq`` but the newest ``keep`` of the
        bridge; the state stays. How many rows went (``dry_run``: would go; nothing is deleted)."""
        if bridge not in BRIDGES:
            raise UsageError(f"unknown bridge {bridge!r}; use one of {', '.join(BRIDGES)}")
        upto = int(upto_seq)
        with self._lock:
            if keep > 0:  # the newest ``keep`` rows stay: prune below the oldest of them
                row = self._conn.execute("SELECT seq FROM log WHERE bridge = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                                         (bridge, int(keep) - 1)).fetchone()
                upto = min(upto, row[0] - 1) if row else 0
            if dry_run:
                return self._conn.execute("SELECT COUNT(*) FROM log WHERE bridge = ? AND seq <= ?", (bridge, upto)).fetchone()[0]
        with self._transaction():
            self._seq_cache = None
            before = self._conn.execute("SELECT MAX(seq) FROM log WHERE bridge = ? AND seq <= ?", (bridge, upto)).fetchone()[0]
            deleted = self._conn.execute("DELETE FROM log WHERE bridge = ? AND seq <= ?", (bridge, upto)).rowcount
            if before is not None:
                self._conn.execute(
                    "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                    "MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                    (f"pruned_upto:{bridge}", str(before)),
                )
        return deleted

    def pruned_upto(self, bridge: str) -> int:
        """The highest seq of ``bridge`` a prune deleted (0: none). A backend whose mark is below
        it can no longer get those records from the log: it gets a :meth:`snapshot` first."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (f"pruned_upto:{bridge}",)).fetchone()
        return int(row[0]) if row else 0

    def pending(self, bridge: str, mark: int) -> int:
        """How many records a backend whose mark is ``mark`` still needs: the snapshot rows when
        the mark is below :meth:`pruned_upto`, plus the log rows past the mark."""
        needs_snapshot = mark < self.pruned_upto(bridge)
        return (self.snapshot_size(bridge) if needs_snapshot else 0) + self.count_after(bridge, mark)

    def snapshot_size(self, bridge: str) -> int:
        """How many actions :meth:`snapshot` of ``bridge`` yields."""
        with self._lock:
            q = self._conn.execute
            if bridge == MANIFEST_BRIDGE:
                return q('SELECT COUNT(*) + SUM("Deleted" <> 0) FROM "UVManifest"').fetchone()[0] or 0
            return sum(q(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] * (2 if name == ATTEMPT else 1)
                       for name in (WORK_ITEM, EVENT, ATTEMPT))

    def snapshot(self, bridge: str, batch_size: int = 500):
        """The current state of ``bridge`` as write actions (``seq`` None), in lists of at most
        ``batch_size``, read a page at a time in natural-key order (never held whole).

        Queue: every work item as QP_UpsertWorkItem, every event as QP_AppendEvent, every attempt
        as QP_InsertAttempt followed by QP_UpdateAttemptOutcome of its other columns (an insert
        of an attempt the backend already holds changes nothing there, and that one may be an
        older state of it). Manifest: every manifest as MS_UpsertManifest, a removed one then
        MS_RemoveManifest. Rows changed while it is read are in the log past the snapshot's
        start, which is sent after it, so the backend ends with the journal's state.
        """
        if bridge not in BRIDGES:
            raise UsageError(f"unknown bridge {bridge!r}; use one of {', '.join(BRIDGES)}")
        batch: list = []
        for action in self._snapshot_actions(bridge, max(1, int(batch_size))):
            batch.append(action)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _snapshot_actions(self, bridge: str, page: int):
        if bridge == MANIFEST_BRIDGE:
            for row in self._pages(MANIFEST, page):
                yield Action("MS_UpsertManifest", {"Manifest": {**row, "Deleted": False}})
                if row["Deleted"]:
                    yield Action("MS_RemoveManifest", {"RunHash": row["Hash"]})
            return
        for row in self._pages(WORK_ITEM, page):
            yield Action("QP_UpsertWorkItem", {"WorkItem": row})
        for row in self._pages(EVENT, page):
            yield Action("QP_AppendEvent", {"Event": row})
        key = table(ATTEMPT).key
        unpatched = (*key, "Deleted")  # no action changes Deleted: the insert set it
        for row in self._pages(ATTEMPT, page):
            yield Action("QP_InsertAttempt", {"Attempt": row})
            yield Action("QP_UpdateAttemptOutcome", {**{c: row[c] for c in key},
                                                     "Patch": {c: v for c, v in row.items() if c not in unpatched}})

    def _pages(self, tbl: str, page: int):
        """Every row of the state table ``tbl``, ``page`` rows per query, by natural key."""
        key = table(tbl).key
        cols = ", ".join(f'"{c}"' for c in key)
        after: list = []
        while True:
            where = f"WHERE ({cols}) > ({_marks(key)}) " if after else ""
            rows = self._select(f'SELECT * FROM "{tbl}" {where}ORDER BY {cols} LIMIT ?', [*after, page], tbl)
            yield from rows
            if len(rows) < page:
                return
            after = [rows[-1][c] for c in key]

    # ------------------------------------------------------------------ state reads
    # Each read answers the row's UV columns with the fields it was sent beyond them (its
    # extras) merged in under them: a UV column always wins. ``all_rows`` answers UV columns only.
    def get_work_item(self, work_item_hash: str) -> dict | None:
        """The current work item ``work_item_hash`` (UV columns and extras), or None."""
        return self._fetch_by_key(WORK_ITEM, {"WorkItemHash": work_item_hash})

    def list_work_items(self, flt=None) -> list[dict]:
        """Work items matching the filter (see :mod:`uvctl.journal.filters`)."""
        return self._list(WORK_ITEM, flt)

    def get_events(self, work_item_hash: str, limit=None) -> list[dict]:
        """Events of a work item in ``Seq`` order; ``limit`` defaults to 500 (max 5000)."""
        return self._select(
            'SELECT * FROM "UVQueueWorkItemEvent" WHERE "WorkItemHash" = ? AND "Deleted" = 0 '
            'ORDER BY "Seq", rowid LIMIT ?',
            [work_item_hash, normalize_limit(limit)],
            EVENT,
        )

    def get_event(self, event_guid: str) -> dict | None:
        """The journaled event ``event_guid``, or None."""
        return self._fetch_by_key(EVENT, {"EventGUID": event_guid})

    def get_attempts(self, work_item_hash: str) -> list[dict]:
        """Attempts of a work item by ``AttemptNumber``."""
        return self._select(
            'SELECT * FROM "UVQueueWorkItemAttempt" WHERE "WorkItemHash" = ? ORDER BY "AttemptNumber"',
            [work_item_hash],
            ATTEMPT,
        )

    def get_manifest(self, run_hash: str) -> dict | None:
        """The manifest row ``run_hash`` (``ManifestJSON`` as text), removed ones included."""
        return self._fetch_by_key(MANIFEST, {"Hash": run_hash})

    def list_manifests(self, flt=None) -> list[dict]:
        """Manifest rows (not removed) matching the filter."""
        return self._list(MANIFEST, flt)

    def all_rows(self, tbl: str) -> list[dict]:
        """Every row of the state table ``tbl`` in natural-key order (for comparisons)."""
        order = ", ".join(f'"{c}"' for c in table(tbl).key)
        return self._select(f'SELECT * FROM "{table(tbl).name}" ORDER BY {order}', [], tbl, "omit")

    def _list(self, tbl: str, flt) -> list[dict]:
        where, params, order, limit = to_sql(tbl, normalize_filter(tbl, flt))
        return self._select(f'SELECT * FROM "{tbl}" WHERE {where} ORDER BY {order}, rowid LIMIT ?', [*params, limit], tbl)

    def _select(self, sql: str, params, tbl: str, extra: str = "merge") -> list[dict]:
        """Rows of ``sql`` as dicts; their extras ``merge``d under the UV columns, ``omit``ted, or
        left as text under ``EXTRA_COLUMN`` (``raw``)."""
        spec = table(tbl)
        with self._lock:
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        booleans = [i for i, n in enumerate(names) if n != EXTRA_COLUMN and spec.is_boolean(n)]
        out = []
        for row in rows:
            row = list(row)
            for i in booleans:
                row[i] = bool(row[i])
            row = dict(zip(names, row))
            if extra != "raw":
                text = row.pop(EXTRA_COLUMN, None)
                if text and extra == "merge":
                    row.update((k, v) for k, v in _decode_extra(text).items() if k not in row)
            out.append(row)
        return out

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict:
        """Sizes, sequences and row counts of the journal."""
        with self._lock:
            q = self._conn.execute
            log = {}
            for bridge in BRIDGES:
                rows, first, last = q("SELECT COUNT(*), MIN(seq), MAX(seq) FROM log WHERE bridge = ?", (bridge,)).fetchone()
                log[bridge] = {"Records": rows, "FirstSeq": first, "LastSeq": self.last_seq(bridge)}
            counts = {
                "WorkItems": q('SELECT COUNT(*) FROM "UVQueueWorkItem"').fetchone()[0],
                "Events": q('SELECT COUNT(*) FROM "UVQueueWorkItemEvent"').fetchone()[0],
                "Attempts": q('SELECT COUNT(*) FROM "UVQueueWorkItemAttempt"').fetchone()[0],
                "Manifests": q('SELECT COUNT(*) FROM "UVManifest" WHERE "Deleted" = 0').fetchone()[0],
                "ManifestsRemoved": q('SELECT COUNT(*) FROM "UVManifest" WHERE "Deleted" = 1').fetchone()[0],
            }
            by_status = dict(q('SELECT "Status", COUNT(*) FROM "UVQueueWorkItem" GROUP BY "Status" ORDER BY "Status"').fetchall())
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "Path": str(self.path),
            "SizeBytes": size,
            "Synchronous": self.synchronous.upper(),
            "LastSeq": self.last_seq(),
            "Log": log,
            "State": counts,
            "WorkItemsByStatus": by_status,
        }


def _format_of(conn: sqlite3.Connection, path: Path) -> int | None:
    """The format of the uvctl journal ``conn`` holds; None for a database with no tables yet
    (a new or empty file). A database holding other tables and no uvctl format marker is
    someone else's: an error, before anything could change it."""
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if not names:
        return None
    found = None
    if "meta" in names:
        try:
            found = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.OperationalError:  # a meta table of another shape
            found = None
    if found is None or not str(found[0]).isdigit():
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise UvctlError(f"{path} is not a uvctl journal (a SQLite database holding other tables ({shown}) and no uvctl "
                         f"format marker); it was left untouched: move it away (uvctl then starts a new journal) "
                         f"or set UVCTL_DATA_DIR to the data dir it belongs to")
    return int(found[0])


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change ``path``; to an empty database when it is missing or empty.

    On a read-only file system SQLite cannot make the ``-shm`` file a WAL journal needs to
    be read; with no ``-wal`` file beside it (the last writer closed cleanly) the file alone
    is the whole journal, and it is read as immutable.
    """
    if not path.exists() or path.stat().st_size == 0:
        return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    from urllib.parse import quote

    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        wal = Path(f"{path}-wal")
        if (wal.exists() and wal.stat().st_size) or not _unwritable(path):
            conn.close()
            raise
        conn.close()
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    return conn


def _unwritable(path: Path) -> bool:
    """True when the journal ``path`` or its folder cannot be written (a read-only file system,
    or modes that forbid it; ``access`` answers for the file system even to root)."""
    return any(p.exists() and not os.access(p, os.W_OK) for p in (path, path.parent))


def _unwritable_hint(path: Path, exc: Exception) -> str:
    """What to say when ``exc`` came from a journal the file system does not let us write."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, sqlite3.Error) and not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")):
        return ""  # a real problem of the file (not a database, corrupt): not the file system's
    if not _unwritable(path):
        return ""
    return "; it is on a read-only file system or not writable: make it (and its folder) writable"


class _Request:
    """One :meth:`Journal.apply` call waiting for (or in) a group commit."""

    __slots__ = ("pairs", "reimport", "done", "results", "error", "wake", "leads")

    def __init__(self, pairs: list, reimport: bool):
        self.pairs, self.reimport = pairs, reimport
        self.done, self.results, self.error = False, None, None
        self.wake = None  # a held lock a waiting thread blocks on; released to wake it
        self.leads = False  # set when the lead is passed to this call


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error), under the journal's lock."""

    def __init__(self, journal: Journal):
        self.journal = journal
        #: Called after a successful COMMIT, still under the journal's lock.
        self.on_commit = None

    def __enter__(self):
        self.journal._lock.acquire()
        if self.journal._conn is None:
            self.journal._lock.release()
            raise UvctlError("the journal is closed")
        try:
            self.journal._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self.journal._lock.release()
            raise self._failed(exc) from exc
        except BaseException:
            self.journal._lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        conn = self.journal._conn
        try:
            if exc_type is None:
                try:
                    conn.execute("COMMIT")
                    if self.on_commit is not None:
                        self.on_commit()
                    return False
                except sqlite3.Error as commit_error:
                    exc_type, exc = type(commit_error), commit_error
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self.journal._lock.release()
        if isinstance(exc, sqlite3.Error):  # disk full, read-only file, locked for too long
            raise self._failed(exc) from exc
        return False

    def _failed(self, exc: sqlite3.Error) -> UvctlError:
        path = self.journal.path
        if self.journal.read_only:
            return UvctlError(f"cannot write the journal {path}: it was opened read-only; nothing was journaled")
        return UvctlError(f"cannot write the journal {path} ({exc}){_unwritable_hint(path, exc)}; nothing was journaled")


def _parts(values: list, size: int = 500):
    """``values`` in slices small enough for one ``IN (...)`` list."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _covers(existing: dict, values: dict) -> bool:
    """True when ``existing`` already holds every value of ``values``."""
    return all(existing.get(col) == value for col, value in values.items())


def _sql_type(col_type: str) -> str:
    if col_type in ("Integer", "Boolean", "Deleted"):
        return "INTEGER NOT NULL DEFAULT 0"
    if col_type == "Float":
        return "REAL NOT NULL DEFAULT 0"
    return "TEXT NOT NULL DEFAULT ''"


def _upsert_sql(spec) -> str:
    names = (*spec.columns, EXTRA_COLUMN)
    cols = ", ".join(f'"{c}"' for c in names)
    marks = ", ".join("?" for _ in names)
    key = ", ".join(f'"{c}"' for c in spec.key)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c not in spec.key)
    return f'INSERT INTO "{spec.name}" ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}'


def _attempt_from_outcome(action: Action) -> Action:
    """The ``QP_InsertAttempt`` of an outcome patch whose attempt is not journaled: its key and
    the patch's columns, the rest at their defaults."""
    spec = table(ATTEMPT)
    record = {**spec.defaults, **action.settings["Patch"], **{c: action.settings[c] for c in spec.key}}
    extra = (action.extra or {}).get("Patch")
    return Action("QP_InsertAttempt", {"Attempt": record}, extra={"Attempt": extra} if extra else None)


def _attempt_fill(existing: dict, action: Action, reimport: bool) -> Action | None:
    """The ``QP_UpdateAttemptOutcome`` an insert of the stored attempt ``existing`` amounts to;
    None when it changes nothing (a duplicate).

    A live insert only fills the columns still at their default (it may come after the outcome
    that created the attempt); a re-import brings every column that differs (a source re-read).
    """
    spec = table(ATTEMPT)
    attempt = action.settings["Attempt"]
    patch = {c: v for c, v in attempt.items() if c not in spec.key and existing[c] != v
             and (reimport or existing[c] == spec.defaults[c])}
    if not patch:
        return None
    extra = (action.extra or {}).get("Attempt")
    if extra and not reimport:
        stored = _extra_of(existing)
        extra = {k: v for k, v in extra.items() if k not in stored}
    return Action("QP_UpdateAttemptOutcome", {**{c: attempt[c] for c in spec.key}, "Patch": patch},
                  extra={"Patch": extra} if extra else None)


def _json_object(text) -> dict | None:
    """``text`` parsed when it is a JSON object, else None."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _extra_of(row: dict | None) -> dict:
    """The extras of a stored (``raw``) row."""
    text = row.get(EXTRA_COLUMN) if row else None
    return _decode_extra(text) if text else {}


def _merged_extra(existing: dict | None, action: Action, field: str) -> str | None:
    """The extras text a row gets from ``action``'s record ``field`` over ``existing``'s: a
    field sent again replaces its value, one not sent again keeps it."""
    new = (action.extra or {}).get(field)
    stored = existing.get(EXTRA_COLUMN) if existing else None
    if not new:
        return stored
    return _encode_extra({**_extra_of(existing), **new} if stored else new)


def _encode_extra(value) -> str:
    """Extras as JSON text; a value JSON cannot hold (a Python caller's object) as its text."""
    try:
        return _encode(value)
    except (TypeError, ValueError):
        return json.dumps(value, separators=(",", ":"), default=str)


def _decode_extra(text: str) -> dict:
    try:
        value = _orjson.loads(text)
    except _orjson.JSONDecodeError:
        value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _encode(settings) -> str:
    """``settings -> compact JSON text`` for the log.

    orjson writes it several times faster than the json module. What it refuses (a lone
    surrogate, an integer beyond 64 bits) goes through the json module, as before.
    """
    try:
        return _orjson_dumps(settings).decode()
    except (TypeError, _orjson.JSONEncodeError):
        return _ENCODER.encode(settings)


def _take(pairs, count: int, text_budget: int) -> list:
    """The next ``(action, key)`` pairs of the iterator ``pairs``: ``count`` of them, or fewer
    when their text fields reach ``text_budget`` characters."""
    chunk, size = [], 0
    for pair in pairs:
        chunk.append(pair)
        for value in pair[0].settings.values():  # {"WorkItem": {...}} or {"WorkItemHash": ..., "Patch": {...}}
            if type(value) is dict:
                size += sum(len(v) for v in value.values() if type(v) is str)
            elif type(value) is str:
                size += len(value)
        if len(chunk) >= count or size >= text_budget:
            break
    return chunk


def _decode_all(texts: list) -> list:
    """The log texts ``texts`` (each one complete JSON object) decoded, in order.

    One decoder call for the whole batch, with orjson (a flush spends more time decoding the
    log than on anything but the target database). Every value uvctl journals reads back
    exactly: integers are range-checked at normalization (orjson would read one beyond
    64 bits as a float). What orjson refuses (a lone surrogate ``\\ud800``, ``NaN`` written
    by an older journal) is decoded by the json module instead.
    """
    text = "[" + ",".join(texts) + "]"
    try:
        return _orjson.loads(text)
    except _orjson.JSONDecodeError:
        return json.loads(text)
