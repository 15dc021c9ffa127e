"""``uvctl beacon run|status``: the persistence beacon a running Ultravisor writes into."""

from __future__ import annotations

import logging
import sys

import click

from .coordinator import _open
from .output import echo, emit, json_option


@click.group(name="beacon")
def beacon_group():
    """The persistence beacon: a running, unmodified Ultravisor writes its queue and manifests here.

    \b
    Ultravisor dispatches every QP_* / MS_* call to a beacon advertising QueuePersistence /
    ManifestStore while its own (MeadowProxy) persistence is unassigned, and replays its
    local store into it on every connect. 'uvctl beacon run' is that beacon: each write is
    journaled (durable) before it is answered, then delivered in the background to the
    backend 'uvctl persistence assign' chose. See docs/beacon.md.
    """


@beacon_group.command(name="run")
@click.option("--coordinator", "coordinator_url", envvar="UVCTL_COORDINATOR", default=None, metavar="URL",
              help="The Ultravisor coordinator, e.g. http://127.0.0.1:54321 (else $UVCTL_COORDINATOR).")
@click.option("--user", envvar="UVCTL_COORDINATOR_USER", default=None, metavar="NAME",
              help="User for a secured coordinator (else $UVCTL_COORDINATOR_USER or the cached session of "
                   "'uvctl coordinator login'); the password comes from $UVCTL_COORDINATOR_PASSWORD.")
@click.option("--name", default="uvctl-persistence", show_default=True, metavar="NAME",
              help="The beacon's name on the coordinator (WebSocket; the HTTP transport uses fixed names).")
@click.option("--transport", type=click.Choice(["websocket", "http"]), default="websocket", show_default=True,
              help="websocket: one beacon, work pushed (recommended). http: two polling beacons named exactly "
                   "'queue-persistence' and 'manifest-store', the only names whose items the coordinator does "
                   "not strand (any other name loses writes to its 500 ms scheduler tick).")
@click.option("--max-concurrent", type=click.IntRange(1, 64), default=8, show_default=True, metavar="N",
              help="Work items in flight at once (the MaxConcurrent registered; HTTP uses at least 2).")
@click.option("--keep-log", type=click.IntRange(0, None), default=None, metavar="N",
              help="Log rows kept per bridge (default 100000); older rows every assigned backend "
                   "acknowledged (all older rows of a bridge with no backend) are pruned as the beacon "
                   "runs. The current state is never pruned: a backend assigned later is filled from it.")
@click.option("--quiet", is_flag=True, help="Log only warnings and errors.")
def run_command(coordinator_url, user, name, transport, max_concurrent, keep_log, quiet):
    """Attach to the coordinator and journal its persistence writes until SIGTERM / SIGINT.

    Logs one line per event worth knowing (registered, disconnected, delivery failing or
    back, retention) on stderr. On SIGTERM it stops taking work, answers what is in flight,
    deregisters and exits 0. 'uvctl beacon status' (or SIGUSR1) says its state.
    """
    from ..beacon.delivery import DEFAULT_KEEP_LOG
    from ..beacon.service import Beacon

    _log_to_stderr(logging.WARNING if quiet else logging.INFO)
    coordinator = _open(coordinator_url, user)
    beacon = Beacon(coordinator, name=name, transport=transport, max_concurrent=max_concurrent,
                    keep_log=DEFAULT_KEEP_LOG if keep_log is None else keep_log)
    sys.exit(beacon.run())


@beacon_group.command(name="status")
@json_option
def status_command(as_json):
    """Whether the beacon runs and is attached, its BeaconIDs, answers, errors and pending records."""
    from ..beacon.status import beacon_status

    emit(beacon_status(), as_json, _print_status)


def _print_status(data: dict) -> None:
    for line in describe(data):
        echo(line)


def describe(data: dict) -> list[str]:
    """The beacon status as text lines (also used by 'uvctl persistence status')."""
    if not data.get("Known"):
        return ["beacon: never run with this data dir ('uvctl beacon run --coordinator URL')"]
    if not data["Running"]:
        head = f"beacon: not running (last update {data.get('UpdatedAt') or 'unknown'})"
    elif data["Connected"]:
        ids = ", ".join(sorted(set(data["BeaconIDs"].values())))
        head = f"beacon: connected to {data['Coordinator']} over {data['Transport']} as {ids} since {data['ConnectedSince']}"
    else:
        head = f"beacon: running, not connected to {data['Coordinator']} (reconnecting)"
    lines = [head, f"  answered {data['WritesAnswered']} writes and {data['ReadsAnswered']} reads; "
                   f"{data['AnswersFailed']} failed, {data['AnswersLate']} late, {data['AnswersUndelivered']} not delivered; "
                   f"{data['Reconnects']} reconnects"]
    latency = data.get("LatencyMs")
    if latency:
        lines.append(f"  answer latency p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms (last {latency['Samples']})")
    pending = data.get("Pending") or {}
    if pending:
        lines.append("  pending: " + ", ".join(f"{b} {n if n is not None else 'unknown'}" for b, n in pending.items()))
    delivery = data.get("Delivery") or {}
    if delivery.get("LastError"):
        lines.append(f"  delivery: {delivery['LastError']}")
    if data.get("LastError"):
        lines.append(f"  last error ({data.get('LastErrorAt')}): {data['LastError']}")
    return lines


def _log_to_stderr(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s uvctl beacon: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    logger = logging.getLogger("uvctl.beacon")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


COMMANDS = [beacon_group]
