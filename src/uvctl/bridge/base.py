"""What both bridges share: journal first, then write-through; reads with read-your-writes.

A write is normalized, journaled (one transaction) and only then offered to the assigned
backend when its assignment is ``bootstrapped``, through :mod:`uvctl.flush.delivery`: under
the bridge's delivery lock, after every earlier record the backend has not acknowledged yet
(the oldest ``CATCH_UP`` at most), so a backend only ever sees a bridge's records in order and
a write that lost a race to another is delivered by the next. Whatever the backend does
(down, slow to answer, a failed envelope, ``NeedsBootstrap``), the caller gets
``Success: True`` because the journal holds the record; ``Pending: True`` says it still waits.
A backend found unreachable is set back to ``waiting-for-beacon`` and bootstrapped again by a
later write once its retry interval is over.

Reads come from the backend only when it is bootstrapped *and* has acknowledged every
journaled record of the bridge; otherwise (or when it fails) from the journal, which
always has every write. The envelope's ``Source`` says which one answered.

The assignment and flush services are imported inside functions, so a bridge used as a
library loads them only when it writes or reads; with nothing assigned it is journal-only.
"""

from __future__ import annotations

from ..actions import Action, envelope, failure
from ..errors import UsageError, mask_secrets
from ..journal import Journal, normalize_action
from ..journal.store import Recorded

#: The most earlier pending records one write-through delivers before its own.
CATCH_UP = 500


class BridgeBase:
    """The plumbing of :class:`QueueBridge` and :class:`ManifestBridge`."""

    bridge = ""  # "Queue" or "Manifest"

    def __init__(self, journal: Journal | None = None, local_only: bool = False):
        """``journal`` defaults to the data dir's, opened on first use. Threads should give
        their bridges one shared Journal: concurrent writes then share commits (group commit).

        ``local_only`` keeps the bridge to the journal: writes are answered once journaled
        (``Pending: True``, delivered by someone else, as ``uvctl beacon`` delivers in the
        background) and reads are answered from the journal, which holds every write.
        """
        self._journal = journal
        self._owns_journal = journal is None
        self.local_only = local_only

    @property
    def journal(self) -> Journal:
        """The journal, opened on first use (the data dir's) unless one was given."""
        if self._journal is None:
            self._journal = Journal.open()
        return self._journal

    def close(self) -> None:
        """Close the journal when this bridge opened it."""
        if self._owns_journal and self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ dispatch by name
    def execute(self, name: str, settings: dict | None = None) -> dict:
        """Run the bridge action ``name`` with Ultravisor's ``settings``; its envelope.

        Bad input (a missing field, an unknown action or filter key) answers ``Success: False``
        with the ``Reason``, as Ultravisor's bridges do, and journals nothing.
        """
        warnings: list = []
        try:
            action = self.normalize(name, settings, warnings)
            out = self._write(action) if action.is_write else self._read(action)
        except UsageError as exc:
            return failure(str(exc))
        if warnings:  # fields dropped so that the write itself never fails
            out["Warnings"] = warnings
        return out

    def normalize(self, name: str, settings, warnings: list) -> Action:
        """The action ``name`` of this bridge, validated; UsageError for bad input."""
        action = normalize_action(name, settings, warnings)
        if action.bridge != self.bridge:
            self._other(action)
        return action

    def _other(self, action: Action) -> dict:
        raise UsageError(f"{action.name} belongs to the {action.bridge} bridge, not the {self.bridge} bridge")

    # ------------------------------------------------------------------ writes
    def _write(self, action: Action) -> dict:
        done = self.journal.apply([action])[0]
        out = self.journaled(done)
        if not done.logged or self.local_only:
            return out
        backend, why = self._backend(retry=True)
        if backend is None:
            if why:
                out["PendingReason"] = why
            return out
        why = self._deliver(backend, done)
        if why is None:
            out["Pending"] = False
        else:
            out["PendingReason"] = why
        return out

    def journaled(self, done: Recorded) -> dict:
        """The envelope of a write the journal has just taken (``Pending`` until delivered)."""
        out = _write_envelope(done)
        if done.outcome == "duplicate" and done.action.name == "QP_AppendEvent":
            self._echo_stored_event(out)
        if done.logged:
            out["Pending"] = True
        return out

    def _echo_stored_event(self, out: dict) -> None:
        """A repeated EventGUID: answer with the event as journaled, and say so when the one
        sent differs from it (the journal keeps the first, as the backend's unique key does)."""
        sent = out["Event"]
        stored = self.journal.get_event(sent["EventGUID"])
        if stored is None:
            return
        differs = sorted(c for c in sent if c not in ("Seq", "EmittedAt") and c in stored and stored[c] != sent[c])
        out["Event"] = stored
        if differs:
            out["Warning"] = (f"event {sent['EventGUID']} was journaled before with other {', '.join(differs)}; "
                              f"the first one is kept (give each event its own EventGUID)")

    def _deliver(self, backend, done: Recorded) -> str | None:
        """Deliver the journaled ``done`` now, after the bridge's earlier pending records (the
        oldest CATCH_UP of them at most); None once the backend has acknowledged it, else why
        it still waits. Whatever happens, the journal holds the record."""
        from ..flush import HighWaterMarks
        from ..flush.delivery import WRITE_THROUGH_WAIT, Refused, delivering

        seq, records = done.action.seq, []
        try:
            marks = HighWaterMarks(journal=self.journal)
            with delivering(self.bridge, backend.identity, WRITE_THROUGH_WAIT, marks) as delivery:
                mark = delivery.mark()
                if mark >= seq:
                    return None  # another write delivered it with its own
                # a mark below what was pruned needs the state first (the write's predecessor
                # is never below it: the common case costs no look-up)
                if mark != done.previous and mark < self.journal.pruned_upto(self.bridge):
                    mark = delivery.send_snapshot(backend, self.journal, CATCH_UP)
                if mark == done.previous:
                    records = [done.action]
                else:  # earlier records wait (a lost race, an outage): they go first, in order
                    records = self.journal.read(self.bridge, mark, CATCH_UP, upto_seq=seq)
                mark = delivery.send(backend, records)
        except Refused as exc:
            if exc.needs_bootstrap:
                return f"needs bootstrap: {exc.reason}"
            return exc.reason if len(records) == 1 else _reason(exc)
        except Exception as exc:  # unreachable, a busy lock, a corrupt mark file, a plugin's bug
            return _reason(exc)
        if mark < seq:
            left = self.journal.pending(self.bridge, mark)
            return (f"{left} records of this bridge, this one among them, are still pending after this write "
                    f"delivered {len(records)} earlier ones; the next writes deliver them {CATCH_UP} at a time, "
                    f"or run 'uvctl flush'")
        return None

    # ------------------------------------------------------------------ reads
    def _read(self, action: Action) -> dict:
        backend = None if self.local_only else self._backend(caught_up=True)[0]
        if backend is not None:
            from .. import host

            try:
                answer = host.dispatch(backend, [action])[0]
            except Exception:
                answer = {}
            if answer.get("NeedsBootstrap"):
                from ..flush.delivery import note_state

                note_state("mark_needs_bootstrap", self.bridge, answer.get("Reason") or "the backend lost its readiness")
            # Only a successful answer counts: "not found" or an error there is checked
            # against the journal, which holds every write.
            elif answer.get("Success") and answer.get("Available", True):
                return self.shape(action, {**answer, "Source": "backend"})
        return self.shape(action, {**self.read_journal(action), "Source": "journal"})

    def read_journal(self, action: Action) -> dict:
        """The envelope answering the read ``action`` from the journal alone."""
        raise NotImplementedError

    def shape(self, action: Action, answer: dict) -> dict:
        """Adjust a read envelope before returning it (hook for the manifest bridge)."""
        return answer

    # ------------------------------------------------------------------ the backend
    def _backend(self, caught_up: bool = False, retry: bool = False):
        """``(handle, None)`` when the bridge's backend is bootstrapped, else ``(None, why)``.

        With ``caught_up``, also None while the journal holds records the backend has not
        acknowledged (reading there would miss them). With ``retry``, a backend waiting to be
        reached is bootstrapped again when its retry interval is over.
        """
        from .. import assignment

        try:
            entry = assignment.load()[self.bridge]
            if not entry:
                return None, None
            if entry.get("State") != "bootstrapped":
                if not (retry and assignment.due_for_retry(entry)) or assignment.backend_for(self.bridge, bootstrap=True) is None:
                    entry = assignment.load()[self.bridge] or entry
                    error = f" ({entry['LastError']})" if entry.get("LastError") else ""
                    return None, (f"backend {entry.get('Backend')!r} is {entry.get('State') or 'not bootstrapped'}{error}; "
                                  f"run 'uvctl flush' once it is reachable")
            handle = assignment.backend_for(self.bridge)  # the assignment service caches handles
            if handle is None:
                return None, None
            if caught_up and _mark(self.bridge, handle.identity, self.journal) < self.journal.last_seq(self.bridge):
                return None, None
            return handle, None
        except Exception as exc:  # a corrupt assignment file must not lose the write
            return None, _reason(exc)


def _write_envelope(done: Recorded) -> dict:
    """The envelope of a journaled write, by what journaling it did."""
    out = envelope(True)
    if done.logged:
        out["JournalSeq"] = done.action.seq
    if done.outcome == "duplicate":
        out["AlreadyPresent"] = True
    elif done.outcome == "unchanged":
        out["Unchanged"] = True
    elif done.outcome == "already-absent":
        out["AlreadyAbsent"] = True
    elif done.outcome == "not-found":
        out["NotFound"] = True
        out["Warning"] = _not_found_warning(done.action)
    if done.action.name == "QP_AppendEvent":
        out["Event"] = done.action.settings["Event"]
    return out


def _not_found_warning(action: Action) -> str:
    s = action.settings
    if action.name == "QP_UpdateWorkItem":  # (an attempt's outcome is never not-found: it creates the attempt)
        what = f"work item {s['WorkItemHash']!r}"
    else:
        what = f"manifest {s['RunHash']!r}"
    return (
        f"{what} is not in the journal: the change is journaled (seq {action.seq}) and sent to the backend, "
        f"where it applies if the record exists there; if the record arrives here within a minute, the change is applied to it"
    )


def _reason(exc: Exception) -> str:
    return mask_secrets(str(exc) or type(exc).__name__)


def _mark(bridge: str, identity: str, journal: Journal) -> int:
    from ..flush import HighWaterMarks

    return HighWaterMarks(journal=journal).get(bridge, identity)
