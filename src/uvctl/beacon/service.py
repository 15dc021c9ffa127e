"""``uvctl beacon run``: the persistence beacon a running, unmodified Ultravisor writes into.

While no MeadowProxy assignment is active, the coordinator dispatches every ``QP_*`` /
``MS_*`` call verbatim to a beacon advertising ``QueuePersistence`` / ``ManifestStore``
(reference: ultravisor-persistence-beacon.md). This runner is that beacon:

1. checks ``GET /Ultravisor/Persistence/Status`` (logging in when the coordinator asks),
   and says in one line when an active assignment keeps the coordinator from sending it
   anything;
2. registers (:mod:`.transport`); the frames that arrive together (up to ``max_concurrent``)
   are journaled together through the local-only bridges (:mod:`.handler`: one commit, one
   fsync) and answered only then, so every write it answered is durable;
3. delivers in the background (:mod:`.delivery`), never holding up an answer;
4. reconnects with backoff (0.5 s doubling to 30 s) when the socket drops or the
   coordinator restarts (which replays its local store into the new registration);
5. on SIGTERM / SIGINT stops taking work, answers what is in flight (5 s at most),
   deregisters and returns 0. SIGUSR1 logs its state; ``uvctl beacon status`` reads it.

What the beacon cannot promise: a write received but not yet answered when the process is
killed is dropped by the coordinator at its 5 s timeout, never retried. The window is the
frames in flight (``max_concurrent``) times the time to durability (milliseconds).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from ..errors import BackendUnavailable, UvctlError, mask_secrets
from .delivery import DEFAULT_KEEP_LOG, BackgroundDelivery
from .handler import Handler
from .protocol import HTTP_NAMES, ProtocolError, parse_work_item
from .state import BeaconState
from .transport import HttpSession, WebSocketSession

log = logging.getLogger("uvctl.beacon")

TRANSPORTS = ("websocket", "http")
RECONNECT_MIN, RECONNECT_MAX = 0.5, 30.0
#: Seconds a stopping beacon waits for the answers in flight.
DRAIN_SECONDS = 5.0


class Beacon:
    """One persistence beacon attached to one coordinator; see the module docstring."""

    def __init__(self, coordinator, *, name: str = "uvctl-persistence", transport: str = "websocket",
                 max_concurrent: int = 8, keep_log: int = DEFAULT_KEEP_LOG, journal=None, state_path=None):
        if transport not in TRANSPORTS:
            raise UvctlError(f"--transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}", exit_code=2)
        self.coordinator = coordinator
        self.name, self.transport, self.max_concurrent = name, transport, max_concurrent
        self.keep_log = keep_log
        self._journal, self._owns_journal = journal, journal is None
        names = [name] if transport == "websocket" else list(HTTP_NAMES.values())
        self.state = BeaconState(coordinator.display_url, transport, names, path=state_path)
        self.stopping = threading.Event()
        self.session = None
        self._in_flight = 0
        self._idle = threading.Condition()
        self._assignment_seen = None

    # -- control ---------------------------------------------------------------------
    def stop(self, *_signal) -> None:
        """Ask the beacon to stop (a signal handler, or another thread)."""
        if not self.stopping.is_set():
            log.info("stopping: no new work is taken, answering what is in flight")
        self.stopping.set()

    def log_state(self, *_signal) -> None:
        """Log one line with the beacon's state (SIGUSR1)."""
        s = self.state.snapshot()
        log.info("state: %s, BeaconIDs %s, %d writes and %d reads answered, %d failed, delivery %s",
                 "connected" if s["Connected"] else "not connected", ", ".join(sorted(set(s["BeaconIDs"].values()))) or "-",
                 s["WritesAnswered"], s["ReadsAnswered"], s["AnswersFailed"], s["Delivery"]["State"])

    def run(self, install_signals: bool = True) -> int:
        """Serve until stopped; 0 after a clean stop."""
        from ..journal import Journal

        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
            if hasattr(signal, "SIGUSR1"):
                signal.signal(signal.SIGUSR1, self.log_state)
        journal = self._journal or Journal.open()
        self.handler = Handler(journal)
        self.delivery = BackgroundDelivery(journal, self.state, keep_log=self.keep_log)
        self.delivery.start()
        self.delivery.wake()
        self.state.write(force=True)
        log.info("journal %s (synchronous=%s); %s", journal.path, journal.synchronous.upper(), _assigned_line())
        try:
            self._serve_until_stopped()
        finally:
            self._drain()
            if self.session is not None:
                self.session.close()
                log.info("deregistered from %s", self.coordinator.display_url)
            self.delivery.stop()
            self.state.set(Connected=False, Stopped=True, StoppedAt=time.time())
            if self._owns_journal:
                journal.close()
            self.coordinator.close()
        log.info("stopped")
        return 0

    # -- the attachment ----------------------------------------------------------------
    def _serve_until_stopped(self) -> None:
        wait = RECONNECT_MIN
        while not self.stopping.is_set():
            try:
                self._check_assignment()
                session = WebSocketSession(self.coordinator, self.name, self.max_concurrent) \
                    if self.transport == "websocket" else HttpSession(self.coordinator, self.max_concurrent)
                ids = session.open()
            except BackendUnavailable as exc:  # down, restarting, rejected: try again later
                self.state.disconnected(str(exc))
                log.warning("cannot attach to %s: %s; retrying in %.1f s", self.coordinator.display_url, exc, wait)
                self.stopping.wait(wait)
                wait = min(RECONNECT_MAX, wait * 2)
                continue
            self.session = session
            wait = RECONNECT_MIN
            self.state.connected(ids)
            log.info("registered with %s over %s as %s", self.coordinator.display_url, self.transport,
                     ", ".join(f"{HTTP_NAMES[b] if self.transport == 'http' else self.name}={i}" for b, i in ids.items()))
            lost = session.serve(self.stopping, self._received)
            if lost is None:
                return
            session.close(deregister=self.transport == "http")
            self.session = None
            self.state.disconnected(lost)
            log.warning("disconnected: %s; reconnecting in %.1f s", lost, wait)
            self.stopping.wait(wait)

    def _check_assignment(self) -> None:
        """Say (once per change) when the coordinator's own persistence assignment is active."""
        from ..mesh import persistence
        from ..mesh.client import MeshError

        try:
            statuses = persistence.status(self.coordinator)
        except MeshError as exc:  # an older coordinator without the route: nothing to warn about
            log.debug("persistence status unknown: %s", exc)
            return
        active = {b: s for b, s in statuses.items() if s.get("State") not in (None, "unassigned")}
        summary = {b: s.get("State") for b, s in statuses.items()}
        self.state.set(CoordinatorPersistence=summary)
        seen = tuple(sorted(summary.items()))
        if active and seen != self._assignment_seen:
            parts = ", ".join(f"{b} {s.get('State')} to {s.get('AssignedBeaconID')}" for b, s in active.items())
            log.warning("the coordinator has its own persistence assignment (%s): while it is active it sends this "
                        "beacon nothing; clear it with 'uvctl coordinator persistence clear'", parts)
        self._assignment_seen = seen

    # -- work ----------------------------------------------------------------------------
    def _received(self, batch: list) -> None:
        """Journal and answer a batch of ``(raw, received_at, reply)`` in the receiving thread:
        what arrived together shares one commit, and every answer waits for it."""
        with self._idle:
            self._in_flight += len(batch)
        try:
            items = []
            for raw, received, reply in batch:
                try:
                    items.append((parse_work_item(raw), received, reply))
                except ProtocolError as exc:
                    self._refused(raw, received, reply, exc)
            answers = self.handler.handle_batch([item for item, _, _ in items]) if items else []
            woke = False
            for (item, received, reply), answer in zip(items, answers):
                sent = reply(item.hash, answer.outputs, answer.error)
                elapsed = time.perf_counter() - received
                late = elapsed * 1000 > item.timeout_ms
                self.state.answered(read=answer.read, ok=answer.ok, seconds=elapsed, late=late, sent=sent)
                if answer.seq is not None and not woke:
                    self.delivery.wake()
                    woke = True
                if not answer.ok:
                    log.warning("answered %s with an error: %s", item.action, answer.error)
                elif late:
                    log.warning("answered %s after %.0f ms, past the coordinator's %d ms: it has dropped the answer "
                                "(the write is journaled)", item.action, elapsed * 1000, item.timeout_ms)
        except Exception as exc:  # never lose the receiving thread
            log.error("a batch of %d work items failed: %s", len(batch), mask_secrets(str(exc) or type(exc).__name__))
        finally:
            with self._idle:
                self._in_flight -= len(batch)
                self._idle.notify_all()

    def _refused(self, raw, received: float, reply, exc: ProtocolError) -> None:
        work_hash = raw.get("WorkItemHash") if isinstance(raw, dict) else None
        log.warning("refused a work item: %s", exc)
        if isinstance(work_hash, str):
            sent = reply(work_hash, None, str(exc))
            self.state.answered(read=False, ok=False, seconds=time.perf_counter() - received, late=False, sent=sent)

    def _drain(self) -> None:
        """Answer what was already pushed when the stop came, for DRAIN_SECONDS at most."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            received = self.session.receive_pending(self._received, 0.1) if self.session is not None else 0
            if not received and self.wait_idle(max(0.0, deadline - time.monotonic())):
                return
        if self._in_flight:
            log.warning("%d answers were still in flight after %.0f s", self._in_flight, DRAIN_SECONDS)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no work item is in flight; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


def _assigned_line() -> str:
    """Which backend each bridge delivers to, as one log phrase."""
    from .. import assignment

    try:
        entries = assignment.load()
    except UvctlError as exc:
        return f"assignment unknown ({exc})"
    parts = [f"{b} → {e.get('Backend')}" for b, e in entries.items() if e]
    if not parts:
        return "no backend is assigned: writes stay in the journal until 'uvctl persistence assign'"
    return "delivering " + ", ".join(parts)
