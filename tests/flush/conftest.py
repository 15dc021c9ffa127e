"""Fixtures of the flush / sql-backend / assignment tests: journals of realistic traffic and
a full-row comparison of a target database with the journal's current state."""

from __future__ import annotations

import random

import pytest

from uvctl.testing.rows import TABLES, database_rows, journal_rows


def traffic(items: int, manifests: int = 0, seed: int = 7) -> list[tuple[str, dict]]:
    """Bridge calls as Ultravisor makes them, interleaved across work items like a live queue.

    Each work item: enqueue (upsert + event), dispatch (update + attempt + event), a health
    patch, then complete or fail (attempt outcome + update + event); some retry. Manifests
    are upserted while running, finalized, and a few removed and re-upserted.
    """
    rng = random.Random(seed)
    scripts = []
    for n in range(items):
        h = f"wi-run{n % 17}-node{n}-1732600000000-{n}"
        steps = [
            ("QP_UpsertWorkItem", {"WorkItem": {
                "WorkItemHash": h, "RunHash": f"run{n % 17}", "RunID": f"R{n % 17}", "NodeHash": f"node{n}",
                "OperationHash": f"op{n % 5}", "Capability": "Shell", "Action": "Execute",
                "Settings": {"Command": f"echo {n}", "Args": [n]}, "AffinityKey": "", "RequireAffinityMatch": False,
                "AssignedBeaconID": None, "Status": "Pending", "TimeoutMs": 30000, "Priority": n % 3,
                "CreatedAt": f"2026-11-26T10:00:{n % 60:02d}.000Z", "EnqueuedAt": f"2026-11-26T10:00:{n % 60:02d}.000Z",
                "MaxAttempts": 2, "Result": None, "CancelRequested": False}}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "RunID": f"R{n % 17}", "EventType": "enqueued",
                                          "FromStatus": "", "ToStatus": "Pending", "Payload": {"n": n}}}),
            ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Dispatched", "AssignedBeaconID": f"bcn-{n % 4}",
                                                              "AttemptNumber": 1, "QueueWaitMs": n % 100, "Settings": {"x": n}}}),
            ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": h, "AttemptNumber": 1, "BeaconID": f"bcn-{n % 4}",
                                              "DispatchedAt": "2026-11-26T10:01:00.000Z", "Outcome": "Dispatched"}}),
            ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventType": "dispatched", "FromStatus": "Pending",
                                          "ToStatus": "Dispatched", "BeaconID": f"bcn-{n % 4}", "Payload": {}}}),
            ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Health": rng.random(), "HealthLabel": "Healthy",
                                                              "HealthReason": "", "HealthComputedAt": "2026-11-26T10:01:30.000Z"}}),
        ]
        if n % 3:
            steps += [
                ("QP_UpdateAttemptOutcome", {"WorkItemHash": h, "AttemptNumber": 1, "Patch": {
                    "CompletedAt": "2026-11-26T10:02:00.000Z", "Outcome": "Complete", "DurationMs": 60000}}),
                ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Complete", "CompletedAt": "2026-11-26T10:02:00.000Z",
                                                                  "Result": {"ok": True, "n": n}}}),
                ("QP_AppendEvent", {"Event": {"WorkItemHash": h, "EventType": "completed", "FromStatus": "Dispatched",
                                              "ToStatus": "Complete", "Payload": {"ExitCode": 0}}}),
            ]
        else:
            steps += [
                ("QP_UpdateAttemptOutcome", {"WorkItemHash": h, "AttemptNumber": 1, "Patch": {
                    "CompletedAt": "2026-11-26T10:02:00.000Z", "Outcome": "Error", "ErrorMessage": f"boom {n}"}}),
                ("QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Error", "LastError": f"boom {n}", "StalledAt": "x"}}),
                ("QP_InsertAttempt", {"Attempt": {"WorkItemHash": h, "AttemptNumber": 2, "BeaconID": "bcn-0", "Outcome": "Dispatched"}}),
            ]
        scripts.append(steps)
    for m in range(manifests):
        run = f"run-op{m}-1732600000{m:03d}"
        steps = [
            ("MS_UpsertManifest", {"Manifest": {"Hash": run, "OperationHash": f"op{m % 5}", "OperationName": f"Op {m}",
                                                "Status": "Running", "RunMode": "Live", "Live": True,
                                                "StartTime": f"2026-11-26T09:{m % 60:02d}:00.000Z", "TaskOutputs": {"t": m}}}),
            ("MS_UpsertManifest", {"Manifest": {"Hash": run, "OperationHash": f"op{m % 5}", "OperationName": f"Op {m}",
                                                "Status": "Complete", "RunMode": "Live", "Live": False, "ElapsedMs": 1000 + m,
                                                "StartTime": f"2026-11-26T09:{m % 60:02d}:00.000Z",
                                                "StopTime": "2026-11-26T11:00:00.000Z", "Output": {"m": m}}}),
        ]
        if m % 4 == 0:
            steps.append(("MS_RemoveManifest", {"RunHash": run}))
        if m % 8 == 0:
            steps.append(("MS_UpsertManifest", {"Manifest": {"Hash": run, "Status": "Resumed", "StartTime": "2026-11-27T00:00:00.000Z"}}))
        scripts.append(steps)
    calls = []
    while scripts:  # interleave: a random live script takes its next step
        i = rng.randrange(len(scripts))
        calls.append(scripts[i].pop(0))
        if not scripts[i]:
            scripts.pop(i)
    return calls


def record(journal, calls) -> None:
    """Journal ``calls`` (bridge action name, Settings) through normalize_action."""
    from uvctl.journal import normalize_action

    journal.record_many([normalize_action(name, settings) for name, settings in calls])


@pytest.fixture
def journal(data_dir):
    """The data dir's journal, open."""
    from uvctl.journal import Journal

    with Journal.open() as j:
        yield j


def assert_database_equals_journal(url: str, journal) -> None:
    """Every row of every UV table, column by column."""
    db, jr = database_rows(url), journal_rows(journal)
    for name in TABLES:
        assert len(db[name]) == len(jr[name]), name
        for got, want in zip(db[name], jr[name]):
            assert got == want, name


@pytest.fixture
def sql_assigned():
    """``sql_assigned(url)``: assign the sql backend on ``url`` to both bridges (bootstraps it)."""
    from uvctl import assignment

    def assign(url):
        assignment.assign("sql", {"Db": url})
        handle = assignment.backend_for("Queue", bootstrap=True)
        assert handle is not None, assignment.load()["Queue"]
        return handle

    return assign


class TcpProxy:
    """A loopback TCP forwarder that can be stopped and started again on the same port:
    a database behind it goes away (connections refused, open ones cut) and comes back."""

    def __init__(self, target_port: int):
        import socket

        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener = None
        self._sockets = []

    def start(self):
        import socket
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener):
        import socket
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self):
        import socket

        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self._sockets = []


def via_proxy(url: str, proxy: TcpProxy) -> str:
    """``url`` rewritten to reach its server through ``proxy``."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
