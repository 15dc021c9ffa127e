"""Delivery: the one way journal records reach a backend and move its high-water mark.

Both a flush batch and a bridge's write-through deliver through here, holding the bridge's
delivery lock (``delivery-<bridge>.lock`` in the data dir, an OS file lock: threads and
processes alike take turns). Under the lock the mark is read fresh, only records past it
are sent, in seq order, and the mark moves to the last one once all are acknowledged. So:

- a record is never sent after a later one of its bridge has been acknowledged (a slow
  write-through cannot land under a replay or a flush batch and be overwritten by older
  records, nor the other way round);
- whoever holds the lock delivers every pending record up to its own, so a write-through
  that lost a race to another thread is delivered by the next one instead of stalling
  write-through until someone runs ``uvctl flush``.
"""

from __future__ import annotations

import contextlib
import threading

from ..errors import BackendUnavailable, UvctlError, mask_secrets

#: How long a write-through waits for the lock (a flush batch may hold it): the caller then
#: gets ``Pending: True`` and the next write or flush delivers the record.
WRITE_THROUGH_WAIT = 0.5
#: How long a flush batch waits for the lock (a write-through holds it for one dispatch).
FLUSH_WAIT = 60.0
#: How long a delivery waits for other threads of its own process.
THREAD_WAIT = 5.0
_THREAD_LOCKS: dict = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class Refused(UvctlError):
    """The backend did not acknowledge a record of the batch (nothing of it counts)."""

    def __init__(self, message: str, reason: str, needs_bootstrap: bool = False):
        super().__init__(message)
        self.reason = reason
        self.needs_bootstrap = needs_bootstrap


class Delivery:
    """The delivery lock of one bridge, held, and what may be done while holding it."""

    def __init__(self, bridge: str, identity: str, marks):
        self.bridge, self.identity, self.marks = bridge, identity, marks
        #: Records the backend answered AlreadyPresent for, over this delivery's sends.
        self.already_present = 0
        #: Snapshot actions sent (see :meth:`send_snapshot`).
        self.snapshot_sent = 0

    def mark(self) -> int:
        """The backend's mark now (nobody else moves it while the lock is held)."""
        return self.marks.get(self.bridge, self.identity)

    def send(self, handle, actions: list) -> int:
        """Dispatch ``actions`` (records past the mark, in seq order) and, when every one is
        acknowledged, move the mark to the last; the mark after the call.

        Raises :class:`Refused` (and marks the assignment for a new bootstrap when the
        backend says it lost readiness), BackendUnavailable (and sets the assignment back to
        ``waiting-for-beacon``), or UvctlError for a plugin bug.
        """
        self._dispatch(handle, actions)
        return self.marks.advance(self.bridge, self.identity, actions[-1].seq)

    def send_snapshot(self, handle, journal, batch_size: int, sent=None) -> int:
        """When the mark is below what the journal pruned of this bridge, send the bridge's
        current state (:meth:`uvctl.journal.Journal.snapshot`, batch by batch, each checked as
        :meth:`send` checks one), then move the mark to the pruned seq; the mark after the call.

        The mark moves only once the whole snapshot is acknowledged: one cut short is sent
        again from its start by the next delivery (the backend absorbs what it already has:
        upserts converge, inserts answer AlreadyPresent). ``sent(n)`` is called per batch.
        """
        pruned = journal.pruned_upto(self.bridge)
        if self.mark() >= pruned:
            return self.mark()
        for batch in journal.snapshot(self.bridge, batch_size):
            self._dispatch(handle, batch)
            self.snapshot_sent += len(batch)
            if sent is not None:
                sent(len(batch))
        return self.marks.advance(self.bridge, self.identity, pruned)

    def _dispatch(self, handle, actions: list) -> None:
        """Dispatch ``actions`` and check every answer (see :meth:`send`); the mark stays."""
        from .. import host

        try:
            answers = host.dispatch(handle, actions)
        except BackendUnavailable as exc:
            note_state("mark_unreachable", self.bridge, str(exc))
            raise
        except UvctlError:
            raise
        except Exception as exc:  # a third-party backend's bug stops the delivery with its message
            raise UvctlError(f"backend {handle.name!r} failed: {type(exc).__name__}: {mask_secrets(str(exc))}") from None
        present = 0
        for action, answer in zip(actions, answers):
            if answer.get("AlreadyPresent"):
                present += 1
            elif not answer.get("Success"):
                reason = answer.get("Reason") or "no reason given"
                needs = bool(answer.get("NeedsBootstrap"))
                if needs:
                    note_state("mark_needs_bootstrap", action.bridge, reason)
                if action.seq is None:
                    where = f"the snapshot of the current state was refused at {action.name}"
                else:
                    where = f"the batch of seq {actions[0].seq}..{actions[-1].seq} was refused at seq {action.seq} ({action.name})"
                raise Refused(f"{where}: {reason}", mask_secrets(reason), needs)
        self.already_present += present

    def rewind(self) -> None:
        """Set the mark back to 0 (a replay: every record is pending again until re-sent)."""
        self.marks.rewind(self.bridge, self.identity, 0)


@contextlib.contextmanager
def delivering(bridge: str, identity: str, timeout: float, marks=None):
    """Hold ``bridge``'s delivery lock, waiting at most ``timeout`` seconds (UvctlError after:
    another delivery holds it)."""
    from ..paths import data_file
    from ..statefile import file_lock
    from .hwm import HighWaterMarks

    path = data_file(f"delivery-{bridge.lower()}")
    busy = (f"another delivery to the {bridge} backend (a flush batch or a write) held the lock for {timeout:g} s; "
            f"the next write or 'uvctl flush' delivers what waits")
    # Threads of this process queue on a thread lock (the file lock's waiters poll every 50 ms).
    # They may wait longer than ``timeout``: each holds it for one delivery of a few records,
    # but a queue of them behind an fsync the disk is slow to finish can exceed half a second.
    with _THREAD_LOCKS_GUARD:
        local = _THREAD_LOCKS.setdefault(path, threading.Lock())
    if not local.acquire(timeout=max(timeout, THREAD_WAIT)):
        raise UvctlError(busy)
    try:
        with file_lock(path, what="delivery lock", timeout=timeout, busy=busy):
            yield Delivery(bridge, identity, marks or HighWaterMarks())
    finally:
        local.release()


def note_state(mark: str, bridge: str, reason: str) -> None:
    """Record what a delivery learnt about the backend: the assignment service's ``mark``
    (``mark_needs_bootstrap`` or ``mark_unreachable``). Bookkeeping only: a failure to record
    it (a corrupt assignment file) never hides the delivery's own outcome."""
    from .. import assignment

    try:
        getattr(assignment, mark)(bridge, reason)
    except Exception:
        pass
