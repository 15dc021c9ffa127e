"""Flush: send every journal record past a backend's high-water mark, in seq order, in batches.

Per bridge: read the log rows with ``seq > HWM(identity)`` a batch at a time (the journal is
streamed, never loaded whole), dispatch the batch, and only when every action of it is
acknowledged (``AlreadyPresent`` counts) write the new mark. The first failing batch stops
the run; its mark stays at the last acknowledged batch and the next run resumes there.
A crash between a commit and the mark write only makes the next run resend one batch,
which the backend absorbs: upserts and updates converge, inserts come back AlreadyPresent.
A backend whose mark is below what ``journal prune`` deleted of the bridge gets a snapshot of
the current state first (:meth:`uvctl.flush.delivery.Delivery.send_snapshot`).
"""

from __future__ import annotations

import contextlib
import gc
import math
from dataclasses import asdict, dataclass, field

from ..actions import MANIFEST, QUEUE
from ..errors import BackendUnavailable, UsageError, UvctlError, mask_secrets
from .delivery import FLUSH_WAIT, delivering

BRIDGES = (QUEUE, MANIFEST)
MAX_BATCH = 10000
#: Records per batch: one transaction and one mark write each; large enough that those
#: fixed costs stay small, small enough that a crash resends little (see bench_flush_throughput).
DEFAULT_BATCH = 5000


@dataclass
class BridgeFlush:
    """What a flush did for one bridge."""

    Bridge: str
    State: str = "unassigned"  # unassigned | up-to-date | flushed | dry-run | failed
    Backend: str | None = None
    Identity: str | None = None
    FromSeq: int = 0
    HighWaterMark: int | None = None
    Sent: int = 0  # records of the log and of a snapshot
    Snapshot: int = 0  # of them, current-state records sent because the log below PrunedUpto was pruned
    PrunedUpto: int = 0
    AlreadyPresent: int = 0
    Batches: int = 0
    Pending: int | None = 0  # None when the mark cannot be known
    Error: str | None = None


@dataclass
class FlushReport:
    """The result of :func:`flush`: one :class:`BridgeFlush` per bridge asked for."""

    Replay: bool
    DryRun: bool
    BatchSize: int
    Bridges: list = field(default_factory=list)
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        return all(b.State != "failed" for b in self.Bridges)

    @property
    def error(self) -> str | None:
        """The first failure, as one line."""
        for b in self.Bridges:
            if b.State == "failed":
                target = b.Identity or b.Backend
                return f"flush of {b.Bridge}{f' to {target}' if target else ''} stopped: {b.Error}"
        return None

    def to_dict(self) -> dict:
        return {
            "Replay": self.Replay,
            "DryRun": self.DryRun,
            "BatchSize": self.BatchSize,
            "Success": self.ok,
            "Error": self.error,
            "Bridges": {b.Bridge: asdict(b) for b in self.Bridges},
        }


@contextlib.contextmanager
def _no_progress(total, label):
    class _Bar:
        def update(self, n):
            pass

    yield _Bar()


def flush(bridges=BRIDGES, replay: bool = False, batch_size: int = DEFAULT_BATCH, dry_run: bool = False,
          progress=None, journal=None) -> FlushReport:
    """Flush the journal to each bridge's assigned backend; see the module docstring.

    ``progress(total, label)`` is a context manager yielding an object with ``update(n)``
    (:func:`uvctl.cli.output.progress`). ``journal`` defaults to the data dir's journal.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size must be a whole number from 1 to {MAX_BATCH}, got {batch_size!r}")
    bridges = tuple(bridges)
    for bridge in bridges:
        if bridge not in BRIDGES:
            raise UsageError(f"unknown bridge {bridge!r}; use one of {', '.join(BRIDGES)}")
    from ..journal import Journal
    from .lock import FlushLock

    report = FlushReport(Replay=replay, DryRun=dry_run, BatchSize=batch_size)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_young_gc_only())
        if journal is None:
            journal = stack.enter_context(Journal.open(read_only=dry_run))
        if not dry_run:
            stack.enter_context(FlushLock())
        for bridge in bridges:
            # the bridges are independent: one whose backend fails does not hold back the other
            report.Bridges.append(_flush_bridge(bridge, journal, replay, batch_size, dry_run, progress or _no_progress, report))
    return report


@contextlib.contextmanager
def _young_gc_only():
    """Pause automatic garbage collection for the run.

    A batch is thousands of small dicts that reference counting frees; the automatic cyclic
    collector would still walk every live object over and over while they are built (a third
    of a flush's CPU). The young generations are collected after each batch instead, so cyclic
    garbage (a few objects per statement) stays bounded.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _flush_bridge(bridge, journal, replay, batch_size, dry_run, progress, report) -> BridgeFlush:
    from .. import assignment
    from .hwm import HighWaterMarks

    result = BridgeFlush(Bridge=bridge)
    try:
        handle = assignment.backend_for(bridge)
    except UvctlError as exc:  # a corrupt assignment file: nothing known about its mark
        result.Pending = None
        return _failed(result, str(exc))
    if handle is None:
        result.Pending = journal.pending(bridge, 0)
        return result
    marks = HighWaterMarks(journal=journal)
    result.Backend, result.Identity = handle.name, handle.identity
    mark = marks.get(bridge, handle.identity)
    result.HighWaterMark = mark
    result.FromSeq = 0 if replay else mark
    result.PrunedUpto = journal.pruned_upto(bridge)
    end = journal.last_seq(bridge)
    # a mark below what was pruned: the log cannot bring the backend up to date, the state can
    snapshot = result.FromSeq < result.PrunedUpto
    total = journal.pending(bridge, result.FromSeq)
    result.Pending = journal.pending(bridge, mark)
    if dry_run:
        result.State, result.Sent = "dry-run", 0
        result.Pending = total
        return result
    if total == 0:
        result.State = "up-to-date"
        return result
    try:
        handle = assignment.backend_for(bridge, bootstrap=True)
    except UvctlError as exc:
        return _failed(result, str(exc))
    if handle is None:
        entry = assignment.load()[bridge] or {}
        if entry.get("State") == "waiting-for-beacon":  # unreachable, as when a batch cannot connect
            report.unavailable = True
        return _failed(result, f"the backend is not ready ({entry.get('State')}: {entry.get('LastError')}); "
                               f"see 'uvctl persistence status'")
    if replay:  # every record is pending again until re-sent: a replay cut short resumes as a flush
        with delivering(bridge, handle.identity, FLUSH_WAIT, marks) as delivery:
            delivery.rewind()
        result.HighWaterMark = 0
    with progress(total, f"flush {bridge}") as bar:
        if snapshot:
            try:  # under the delivery lock throughout: no write-through moves the mark meanwhile
                with delivering(bridge, handle.identity, FLUSH_WAIT, marks) as delivery:
                    result.HighWaterMark = delivery.send_snapshot(handle, journal, batch_size, sent=bar.update)
            except UvctlError as exc:
                return _stopped(result, journal, report, exc)
            result.Snapshot = result.Sent = delivery.snapshot_sent
            result.AlreadyPresent += delivery.already_present
            result.Batches += math.ceil(delivery.snapshot_sent / batch_size)
        with contextlib.closing(_read_ahead(journal, bridge, result.FromSeq, batch_size, end)) as batches:
            for batch in batches:
                try:
                    with delivering(bridge, handle.identity, FLUSH_WAIT, marks) as delivery:
                        # a write-through may have delivered the first records meanwhile
                        mark = delivery.mark()
                        fresh = batch if batch[0].seq > mark else [a for a in batch if a.seq > mark]
                        if fresh:
                            mark = delivery.send(handle, fresh)
                except UvctlError as exc:  # BackendUnavailable, Refused, a busy lock or a plugin's bug
                    return _stopped(result, journal, report, exc)
                result.HighWaterMark = mark
                result.AlreadyPresent += delivery.already_present
                result.Batches += 1
                result.Sent += len(fresh)
                bar.update(len(batch))
                del batch, fresh
                gc.collect(1)
    result.State = "flushed"
    result.Pending = journal.pending(bridge, result.HighWaterMark)
    return result


def _stopped(result: BridgeFlush, journal, report: FlushReport, exc: UvctlError) -> BridgeFlush:
    """A delivery of the run failed: the bridge's run stops there, its mark where it was."""
    if isinstance(exc, BackendUnavailable):  # (the delivery set the bridge back to waiting)
        report.unavailable = True
    result.Pending = journal.pending(result.Bridge, result.HighWaterMark)
    return _failed(result, str(exc))


def _read_ahead(journal, bridge: str, after: int, batch_size: int, end: int):
    """The journal's records of ``bridge`` in ``(after, end]``, a batch at a time.

    The next batch is read in a worker thread while the caller sends this one, so reading
    and decoding the journal overlap the backend's work (a database statement or an HTTP
    request releases the GIL). Closing the generator waits for that read to end.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="uvctl-flush-read") as pool:
        ahead = pool.submit(journal.read, bridge, after, batch_size, upto_seq=end)
        while True:
            batch = ahead.result()
            if not batch:
                return
            ahead = pool.submit(journal.read, bridge, batch[-1].seq, batch_size, upto_seq=end)
            yield batch


def _failed(result: BridgeFlush, message: str) -> BridgeFlush:
    result.State = "failed"
    result.Error = mask_secrets(message)
    return result
