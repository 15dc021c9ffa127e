"""The beacon's background delivery: the journal to the assigned backends, and retention.

A thread runs :func:`uvctl.flush.flush` whenever a write was journaled (and every few
seconds regardless), so it delivers exactly what ``uvctl flush`` would, in journal order,
under the same locks: a ``uvctl flush`` run by hand meanwhile is safe (one of the two waits
or skips, the marks only move forward). It never holds up an answer: the coordinator's
writes are answered once journaled. A backend that is down only grows the pending count;
delivery retries with a backoff (1 s doubling to 30 s) and says so once per change of
state, not once per try.

Retention: after a delivery, at most every :data:`PRUNE_EVERY` seconds (and after the last
delivery of a stopping beacon), log rows that every
assigned backend acknowledged are pruned, keeping the newest ``keep_log`` rows of each
bridge. The current-state tables are never pruned, so a backend assigned later is still
filled (from that state); for that reason a bridge without a backend is pruned beyond the
newest ``keep_log`` rows as well.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from ..errors import mask_secrets

log = logging.getLogger("uvctl.beacon")

#: Seconds between deliveries when nothing new was journaled (a backend assigned meanwhile, a retry).
IDLE_EVERY = 5.0
#: Seconds between two rounds under load: the writes of that time go in one batch.
GATHER_SECONDS = 0.05
#: Backoff bounds after a failed delivery.
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
#: Seconds between two prunes.
PRUNE_EVERY = 60.0
#: Seconds between two full collections of cyclic garbage (see deliver_once).
COLLECT_EVERY = 10.0
#: Seconds a stopping beacon gives its last delivery.
FINAL_DELIVERY_SECONDS = 20.0
#: Log rows of each bridge kept however much was acknowledged (a default for --keep-log).
DEFAULT_KEEP_LOG = 100_000


class BackgroundDelivery(threading.Thread):
    """Deliver the journal in the background until :meth:`stop`; see the module docstring."""

    def __init__(self, journal, state, keep_log: int = DEFAULT_KEEP_LOG, batch_size: int = 5000):
        super().__init__(name="uvctl-beacon-delivery", daemon=True)
        self.journal, self.state = journal, state
        self.keep_log, self.batch_size = keep_log, batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._failing: str | None = None
        self._backoff = BACKOFF_MIN / 2  # doubled by the first failure
        self._last_prune = self._last_collect = time.monotonic()

    def wake(self) -> None:
        """A write was journaled: deliver soon."""
        self._wake.set()

    def stop(self, timeout: float = FINAL_DELIVERY_SECONDS) -> None:
        """Deliver once more (what the last answers journaled), for ``timeout`` s at most, and end.
        A delivery cut short loses nothing: the marks say what the next one sends."""
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)
            if self.is_alive():
                log.warning("the last delivery did not finish within %.0f s; 'uvctl flush' or the next "
                            "'uvctl beacon run' sends the rest", timeout)

    def run(self) -> None:
        while True:
            if self._failing:  # new writes do not hasten a retry: the backend is down
                self._stopping.wait(self._backoff)
            else:
                self._wake.wait(IDLE_EVERY)
            last = self._stopping.is_set()  # a round begun after stop() saw every answered write
            self._wake.clear()
            self.deliver_once()
            if last:
                return
            # writes arriving meanwhile are delivered together by the next round
            self._stopping.wait(GATHER_SECONDS)

    def deliver_once(self) -> None:
        """One flush of the bridges with records past their backend's mark, then retention when due."""
        from ..flush import flush

        try:
            bridges = self._due()
            report = flush(bridges, journal=self.journal, batch_size=self.batch_size) if bridges else None
            problem = report.error if report else None
        except Exception as exc:  # another flush holds the lock, a corrupt state file, ...
            report, problem = None, mask_secrets(str(exc) or type(exc).__name__)
        if problem:
            if problem != self._failing:
                log.warning("delivery: %s; writes stay in the journal, retrying with backoff", problem)
            self._failing = problem
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)
            self.state.delivery(State="retrying", LastError=problem)
        else:
            if self._failing:
                log.info("delivery: the backends are reachable again")
            self._failing, self._backoff = None, BACKOFF_MIN / 2
            sent = sum(b.Sent for b in report.Bridges) if report else 0
            if sent:
                self.state.delivery(State="delivering", LastError=None, LastDeliveredAt=time.time())
            else:
                self.state.delivery(State="idle", LastError=None)
            if self._stopping.is_set() or time.monotonic() - self._last_prune >= PRUNE_EVERY:
                self.prune()
        if time.monotonic() - self._last_collect >= COLLECT_EVERY:
            # a flush pauses the cyclic collector while it runs (uvctl.flush); back to back, as
            # here, that let cyclic garbage pile up in the oldest generation (RSS +2 MB per 100k writes)
            self._last_collect = time.monotonic()
            gc.collect()

    def _due(self) -> tuple:
        """The bridges whose assigned backend has not acknowledged the journal's last record
        (asked cheaply: a flush takes the flush lock and writes its holder note every time)."""
        from .. import assignment
        from ..flush import HighWaterMarks

        entries = assignment.load()
        marks = HighWaterMarks(journal=self.journal)  # a mark past the journal's end is an error, not "done"
        due = []
        for bridge, entry in entries.items():
            if not entry:
                continue
            handle = assignment.backend_for(bridge)
            if handle is None or marks.get(bridge, handle.identity) < self.journal.last_seq(bridge):
                due.append(bridge)
        return tuple(due)

    def prune(self) -> int:
        """Prune acknowledged log rows beyond the newest ``keep_log`` per bridge; rows pruned.

        A bridge with no backend is pruned beyond ``keep_log`` rows too: no backend waits for
        its log, and one assigned later is filled from the current state (its snapshot), which
        is what replaying the log would leave it with."""
        from ..journal.retention import prune_acknowledged

        self._last_prune = time.monotonic()
        try:
            report = prune_acknowledged(self.journal, keep=self.keep_log)
            pruned = sum(info.get("Pruned") or 0 for info in report.values())
            for bridge, info in report.items():
                if not info["Assigned"]:
                    pruned += self.journal.prune(bridge, self.journal.last_seq(bridge), keep=self.keep_log)
        except Exception as exc:
            log.warning("retention: %s", mask_secrets(str(exc) or type(exc).__name__))
            return 0
        if pruned:
            log.info("retention: pruned %d log rows every backend has (the newest %d of each bridge are kept)",
                     pruned, self.keep_log)
            self.state.pruned(pruned)
        return pruned
