"""`uvctl coordinator ...`: the operator's console for a running Ultravisor's persistence.

Everything goes through the coordinator's HTTP API (``--coordinator URL`` or
``$UVCTL_COORDINATOR``). The services live in :mod:`uvctl.coordinator`.
"""

from __future__ import annotations

import sys

import click

from .output import echo, emit, emit_json, json_option

_EXIT_CODES = """\b
Exit codes: 0 bootstrapped and writes land, 4 the databeacon is not registered or does not
answer, 5 a bridge reached 'error', 6 timed out (still waiting-for-beacon or bootstrapping),
7 nothing assigned (status --watch), 8 bootstrapped but the doctor's checks fail (assign),
2 bad input (also a connection sharing its route hash), 3 coordinator unreachable."""


def coordinator_options(func):
    """``--coordinator``, ``--user`` and ``--json``, shared by every console command."""
    func = json_option(func)
    func = click.option("--user", envvar="UVCTL_COORDINATOR_USER", default=None, metavar="NAME",
                        help="User for a secured coordinator (else $UVCTL_COORDINATOR_USER, the cached session "
                             "or a prompt). The password comes from $UVCTL_COORDINATOR_PASSWORD or a prompt.")(func)
    return click.option("--coordinator", "coordinator_url", envvar="UVCTL_COORDINATOR", default=None, metavar="URL",
                        help="The Ultravisor coordinator, e.g. http://127.0.0.1:54321 (else $UVCTL_COORDINATOR).")(func)


def _open(coordinator_url, user):
    from ..coordinator.connect import open_coordinator

    ctx = click.get_current_context()
    source = ctx.get_parameter_source("coordinator_url")
    return open_coordinator(coordinator_url, user, url_from_flag=source == click.core.ParameterSource.COMMANDLINE)


class _LiveLine:
    """State changes: rewritten in place on a terminal, one plain line each in a pipe."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tty = sys.stdout.isatty()
        self.width = 0

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            click.echo("\r" + text + " " * max(0, self.width - len(text)), nl=False)
            self.width = len(text)
        else:
            echo(text)

    def end(self) -> None:
        if self.enabled and self.tty and self.width:
            click.echo("")
            self.width = 0

    def on_change(self, statuses, seconds) -> None:
        from ..coordinator.watch import describe

        self.show(f"[{seconds:5.1f}s] {describe(statuses)}")


def _finish(report: dict, as_json: bool, success_text: str) -> None:
    """Print the outcome of a watch and exit with its code."""
    from ..coordinator.watch import describe

    if as_json:
        emit_json(report)
    elif report["ExitCode"] == 0:
        echo(success_text)
    elif report["Outcome"] == "writes-fail":
        first = report["Problems"][0]
        echo(f"uvctl: bootstrapped, but writes do not land (after {report['Trigger']}): {first['Check']}: "
                   f"{first['Detail']}; fix: {first['Fix'] or 'see uvctl coordinator persistence doctor'}", err=True)
    else:
        status = describe(report["Status"])
        reason = {"error": f"a bridge failed: {status}",
                  "timeout": f"timed out after {report['ElapsedSeconds']:g} s: {status}",
                  "unassigned": "nothing is assigned"}.get(report["Outcome"], status)
        if report["Outcome"] == "timeout" and "waiting-for-beacon" in status:
            reason += "; no beacon is online under the assigned BeaconID ('uvctl coordinator persistence doctor' says why)"
        echo(f"uvctl: {reason}", err=True)
    click.get_current_context().exit(report["ExitCode"])


@click.group("coordinator")
def coordinator_group():
    """The console of a running Ultravisor coordinator's own persistence.

    \b
    Pick a databeacon and a connection inside it, assign them, watch the state go
    unassigned → waiting-for-beacon → bootstrapping → bootstrapped, and check that
    writes really land. Everything goes through the coordinator's HTTP API.
    """


@coordinator_group.command("login")
@coordinator_options
def login_command(coordinator_url, user, as_json):
    """Log in (POST /1.0/Authenticate) and cache the session cookie.

    The password comes from $UVCTL_COORDINATOR_PASSWORD or a hidden prompt, never an option.
    A promiscuous coordinator (AuthEnabled false in /status) needs none: nothing is asked.
    The cookie is kept (mode 0600) in coordinator-sessions.json in the data dir; the other
    commands send it, and log in again by themselves when it has expired.
    """
    coordinator = _open(coordinator_url, user)
    with coordinator:
        required = coordinator.auth_enabled() is not False
        if required:
            coordinator.login()
    result = {"Coordinator": coordinator.display_url, "LoginRequired": required,
              "UserName": coordinator.username if required else None, "LoggedIn": required,
              "SessionCached": coordinator.sessions.get(coordinator.base_url) is not None,
              "SessionFile": str(coordinator.sessions.path)}
    emit(result, as_json, lambda r: echo(
        f"logged in to {r['Coordinator']} as {r['UserName']}; session cached in {r['SessionFile']}" if required else
        f"{r['Coordinator']} is promiscuous (its /status says AuthEnabled false): no login is needed"))


@coordinator_group.command("beacons")
@click.option("--capability", default=None, metavar="NAME", help="Only beacons with this capability (e.g. MeadowProxy).")
@coordinator_options
def beacons_command(capability, coordinator_url, user, as_json):
    """The registered beacons: name, BeaconID, status, capabilities, tags."""
    from ..coordinator import databeacon

    with _open(coordinator_url, user) as coordinator:
        rows = databeacon.beacons(coordinator, capability)
    emit(rows, as_json, _print_beacons)


def _print_beacons(rows) -> None:
    if not rows:
        echo("no beacons registered")
        return
    for row in rows:
        tags = ", ".join(f"{k}={v}" for k, v in row["Tags"].items()) or "-"
        echo(f"{row['Name']:<20} {row['BeaconID']:<32} {row['Status']:<8} "
                   f"{','.join(row['Capabilities']) or '-'}  tags: {tags}")


@coordinator_group.command("connections")
@click.option("--beacon", "beacon", required=True, metavar="NAME", help="The databeacon's name.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for each answer of the databeacon.")
@coordinator_options
def connections_command(beacon, timeout, coordinator_url, user, as_json):
    """A databeacon's connections: ID, name, engine, connected, route hash, UV tables.

    Read through dispatched DataBeaconAccess work items (ListConnections, then ListTables per
    connection). The route hash is the one its endpoints use: /1.0/<hash>/<Table>.
    Exit code 4 when the beacon is not registered or does not answer, 2 when it is not a
    databeacon (it lacks the capabilities).
    """
    from ..coordinator import databeacon
    from ..coordinator.assign import wait_for_beacon

    with _open(coordinator_url, user) as coordinator:
        databeacon.require_databeacon(wait_for_beacon(coordinator, beacon, 0))
        rows = databeacon.connections(coordinator, beacon, int(timeout * 1000))
    emit(rows, as_json, _print_connections)


def _print_connections(rows) -> None:
    if not rows:
        echo("no connections")
    for row in rows:
        connected = {True: "connected", False: "not connected", None: "unknown"}[row["Connected"]]
        tables = row.get("UVTables")
        uv = ", ".join(f"{t}{'' if on else ' (endpoint off)'}" for t, on in tables.items()) if tables else "none"
        echo(f"{row['IDBeaconConnection']:>4}  {row['Name']!s:<24} {row['Type']!s:<10} {connected:<13} "
                   f"route hash {row['RouteHash'] or '(none)'}  UV tables: {uv}")


@coordinator_group.group("persistence")
def persistence_group():
    """The coordinator's own persistence assignment (/Ultravisor/Persistence/*)."""


@persistence_group.command("assign", epilog=_EXIT_CODES)
@click.option("--beacon", "beacon", required=True, metavar="NAME", help="The databeacon's name (resolved to its current BeaconID).")
@click.option("--connection", "connection", required=True, type=click.IntRange(min=1), metavar="ID",
              help="The IDBeaconConnection inside the databeacon (see 'connections').")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Follow the status until bootstrapped, error or the timeout.")
@click.option("--timeout", default=90.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for the beacon to register and the bootstrap to finish.")
@coordinator_options
def assign_command(beacon, connection, wait, timeout, coordinator_url, user, as_json):
    """Make a databeacon connection the coordinator's persistence, by the beacon's name.

    The name is resolved to the beacon's current BeaconID (they change on every reconnect),
    its capabilities and the connection are checked, then POST /Ultravisor/Persistence/Assign.
    With --wait each state change is shown on one live line, and once bootstrapped the
    doctor's checks run: success only when the coordinator's writes land.
    """
    from ..coordinator.assign import assign_by_name

    live = _LiveLine(enabled=not as_json)
    with _open(coordinator_url, user) as coordinator:
        try:
            report = assign_by_name(coordinator, beacon, connection, wait=wait, timeout=timeout,
                                    on_wait=lambda n: live.show(f"waiting for beacon {n!r} to register ..."),
                                    on_change=live.on_change)
        finally:
            live.end()
    if not as_json:
        for note in report["Notes"]:
            echo(f"uvctl: note: {note}", err=True)
    conn = report["Connection"]
    target = (f"{report['Beacon']['BeaconID']} connection {conn['IDBeaconConnection']} {conn['Name']!r} "
              f"(route hash {conn['RouteHash'] or '(none)'})")
    if not wait:
        emit(report, as_json, lambda r: echo(f"assigned {target}; now {_states(r['Status'])}"))
        return
    _finish(report, as_json, f"bootstrapped on {target} in {report['ElapsedSeconds']:g} s")


def _states(statuses) -> str:
    from ..coordinator.watch import describe

    return describe(statuses)


@persistence_group.command("status", epilog=_EXIT_CODES)
@click.option("--watch", is_flag=True, help="Follow the status until bootstrapped, error, unassigned or the timeout.")
@click.option("--timeout", default=90.0, show_default=True, type=click.FloatRange(min=0), help="Seconds --watch waits.")
@coordinator_options
def status_command(watch, timeout, coordinator_url, user, as_json):
    """Both bridges' state, assigned BeaconID and connection, last error."""
    from ..coordinator.watch import follow, overall
    from ..mesh import persistence

    with _open(coordinator_url, user) as coordinator:
        if not watch:
            statuses = persistence.status(coordinator)
            emit({"Coordinator": coordinator.display_url, "State": overall(statuses), "Status": statuses},
                 as_json, _print_status)
            return
        live = _LiveLine(enabled=not as_json)
        try:
            result = follow(coordinator, timeout, on_change=live.on_change)
        finally:
            live.end()
    report = {"Coordinator": coordinator.display_url, "State": overall(result.status), **result.to_dict()}
    _finish(report, as_json, f"bootstrapped ({_states(result.status)})")


def _print_status(data) -> None:
    echo(f"coordinator {data['Coordinator']}: {data['State']}")
    for bridge, st in data["Status"].items():
        line = f"  {bridge:<9} {st.get('State')}"
        if st.get("AssignedBeaconID"):
            line += f"  {st['AssignedBeaconID']} connection {st.get('IDBeaconConnection')}"
        if st.get("BootstrappedAt"):
            line += f"  bootstrapped at {st['BootstrappedAt']}"
        if st.get("LastError"):
            line += f"  last error: {st['LastError']}"
        echo(line)


@persistence_group.command("clear")
@coordinator_options
def clear_command(coordinator_url, user, as_json):
    """Clear both bridges' assignment: the coordinator writes to its local store again."""
    from ..coordinator.watch import overall
    from ..mesh import persistence

    with _open(coordinator_url, user) as coordinator:
        statuses = persistence.clear(coordinator)
    data = {"Coordinator": coordinator.display_url, "Cleared": True, "State": overall(statuses), "Status": statuses}
    emit(data, as_json, lambda d: echo(f"cleared; now {_states(d['Status'])}"))


@persistence_group.command("doctor", epilog="""\b
Exit codes: 0 healthy, 8 problems found (after --repair: problems left), 4 the databeacon
does not answer, 5/6 the repair's bootstrap failed / timed out, 2 bad input.""")
@click.option("--repair", is_flag=True,
              help="Apply the fix that worked live: disable the UV endpoints, clear, assign the current BeaconID "
                   "again; or, when only the persistence beacon can land the writes and it runs, clear the assignment.")
@click.option("--yes", is_flag=True, help="Do not ask before --repair (for scripts).")
@click.option("--timeout", default=90.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds the repair waits for the bootstrap.")
@coordinator_options
def doctor_command(repair, yes, timeout, coordinator_url, user, as_json):
    """Check that the coordinator's persistence writes really land.

    A coordinator can say 'bootstrapped' while every write fails (stale BeaconID after a
    restart, paths the MeadowProxy allowlist refuses, missing columns, values SQLite cannot
    bind). The doctor sends one harmless read through the databeacon's MeadowProxy per UV
    table, checks the columns and the coordinator's own bridge read, then looks for the rows
    the coordinator wrote for its own probe read; exit 0 only when they landed.
    """
    from ..coordinator import EXIT_OK, EXIT_UNHEALTHY, doctor
    from ..errors import UsageError

    fixed = None
    with _open(coordinator_url, user) as coordinator:
        report = doctor.diagnose(coordinator)
        if not as_json:
            _print_doctor(report)
        if repair and not report["Healthy"] and report["Repairable"]:
            if not yes:
                if not sys.stdin.isatty():
                    raise UsageError("--repair changes the coordinator's assignment: confirm on a terminal or pass --yes")
                click.confirm(_repair_question(report), abort=True, err=True)
            live = _LiveLine(enabled=not as_json)
            try:
                fixed = doctor.repair(coordinator, report, timeout=timeout, on_change=live.on_change)
            finally:
                live.end()
            if not as_json:
                echo("repair: " + "; ".join(fixed["Steps"]))
                echo("after the repair:")
                _print_doctor(fixed["After"])
        elif repair and not report["Healthy"]:
            echo("uvctl: --repair cannot fix these problems; apply the fixes listed", err=True)
    if as_json:
        emit_json({**report, "Repair": fixed})
    if fixed is not None:
        code = (fixed["Watch"] or {}).get("ExitCode") or (EXIT_OK if fixed["After"]["Healthy"] else EXIT_UNHEALTHY)
    else:
        code = EXIT_OK if report["Healthy"] else EXIT_UNHEALTHY
    click.get_current_context().exit(code)


def _repair_question(report) -> str:
    if report["RepairKind"] == "switch":
        return (f"Clear the MeadowProxy assignment, so that the coordinator writes to the persistence beacon "
                f"{report['PersistenceBeacon']!r}?")
    return (f"Disable the UV endpoints of connection {report['Connection']['IDBeaconConnection']} on "
            f"{report['Beacon']['Name']!r}, clear the assignment and assign {report['Beacon']['BeaconID']} again?")


def _print_doctor(report) -> None:
    echo(f"coordinator {report['Coordinator']}: persistence {report['State']}")
    for check in report["Checks"]:
        echo(f"  {'ok  ' if check['OK'] else 'FAIL'}  {check['Check']}: {check['Detail']}")
        if check["Fix"]:
            echo(f"        fix: {check['Fix']}")
    for note in report["Notes"]:
        echo(f"  note: {note}")
    if report["Healthy"]:
        echo("writes land: no problem found")
        return
    echo("writes do not land: see the FAIL lines")
    if report["Repairable"]:
        echo("--repair can fix the problems marked with a repair fix")


def import_from_coordinator(url: str, path, staging, manifests: bool) -> dict:
    """``uvctl journal import --coordinator URL``: the coordinator's history into the journal."""
    import os

    from ..coordinator.connect import USER_ENV, open_coordinator
    from ..errors import UsageError
    from ..journal import Journal
    from ..journal.coordinator_import import import_coordinator

    if path is not None or staging is not None:
        raise UsageError("--coordinator reads the coordinator's HTTP API: give it without PATH and --staging")
    with open_coordinator(url, os.environ.get(USER_ENV), url_from_flag=True) as coordinator:
        with Journal.open() as journal:
            report = import_coordinator(journal, coordinator, manifests)
    for note in report["Notes"]:
        echo(f"uvctl: note: {note}", err=True)
    return report


COMMANDS = [coordinator_group]
