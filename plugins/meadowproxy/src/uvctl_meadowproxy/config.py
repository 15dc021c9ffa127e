"""The backend's assign options: their specs, validation, identity, and the live session.

Options as stored in the assignment: ``Transport`` (mesh|direct), ``Url``, ``Beacon``,
``IDBeaconConnection`` (``--connection``; also Ultravisor's field of the assignment file),
``RouteHash``, ``RemoteUser``, ``TimeoutMs``.
``session(backend)`` builds (once per Backend handle) the transport, the endpoint bases
and the natural-key → ID cache that the hooks share through ``backend.state``.
"""

from __future__ import annotations

import getpass

from uvctl.backend import OptionSpec
from uvctl.errors import UsageError, mask_url

from . import routes

DEFAULT_TIMEOUT_MS = 30000

OPTIONS = (
    OptionSpec("Transport", "--transport", "How requests travel: 'mesh' (work items through an Ultravisor "
               "coordinator to the assigned databeacon) or 'direct' (HTTP to a databeacon / meadow REST server).",
               required=True, choices=("mesh", "direct")),
    OptionSpec("Url", "--url", "The coordinator URL (mesh) or the databeacon / meadow REST base URL (direct); "
               "a secured coordinator takes https://USER:PASSWORD@host:port.", required=True, secret=True),
    OptionSpec("Beacon", "--beacon", "mesh: the Name of the databeacon beacon that owns the data."),
    OptionSpec("IDBeaconConnection", "--connection", "The databeacon's IDBeaconConnection of the target database "
               "(mesh bootstrap runs EnsureSchema, Introspect and EnableEndpoint on it)."),
    OptionSpec("RouteHash", "--route-hash", "The route hash the tables are served under (/1.0/<hash>/<Table>); "
               "default: derived from the connection's name, or none for a plain meadow server."),
    OptionSpec("RemoteUser", "--remote-user", "The RemoteUser sent with every request (audit trail); "
               "default uvctl:<os user>."),
    OptionSpec("TimeoutMs", "--timeout-ms", f"Per-request timeout in milliseconds (default {DEFAULT_TIMEOUT_MS})."),
)


def default_remote_user() -> str:
    try:
        return f"uvctl:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "uvctl:unknown"


def validate(options: dict) -> None:
    """Refuse an incomplete or inconsistent option set with one line saying how to fix it."""
    from uvctl.mesh import split_credentials

    transport = options.get("Transport")
    if transport not in ("mesh", "direct"):
        raise UsageError("--transport must be 'mesh' or 'direct'")
    if not options.get("Url"):
        raise UsageError("--url is required (the coordinator URL for mesh, the server URL for direct)")
    split_credentials(str(options["Url"]), what="--url")
    connection = options.get("IDBeaconConnection")
    if connection not in (None, ""):
        if not str(connection).isdigit() or int(connection) <= 0:
            raise UsageError(f"--connection must be a positive IDBeaconConnection number, got {connection!r}")
    if options.get("RouteHash") not in (None, ""):
        routes.check_route_hash(str(options["RouteHash"]))
    if options.get("TimeoutMs") not in (None, ""):
        if not str(options["TimeoutMs"]).isdigit() or int(options["TimeoutMs"]) < 100:
            raise UsageError(f"--timeout-ms must be a whole number of at least 100, got {options['TimeoutMs']!r}")
    if transport == "mesh":
        if not options.get("Beacon"):
            raise UsageError("--transport mesh needs --beacon NAME: persistence goes to that beacon and nowhere else")
        if connection in (None, "") and options.get("RouteHash") in (None, ""):
            raise UsageError("--transport mesh needs --connection ID (to bootstrap the tables) or --route-hash HASH")
    elif options.get("Beacon"):
        raise UsageError("--beacon only applies to --transport mesh; drop it or use --transport mesh")


def identity(options: dict) -> str:
    """Stable and secret-free: the target database, not how it is reached."""
    target = (
        f"conn-{options['IDBeaconConnection']}" if options.get("IDBeaconConnection") not in (None, "")
        else f"rh-{options.get('RouteHash') or ''}"
    )
    if options.get("Transport") == "mesh":
        return f"meadowproxy:mesh:{options.get('Beacon')}:{target}"
    from uvctl.mesh import split_credentials

    try:
        url = split_credentials(str(options.get("Url", "")))[0]
    except UsageError:
        url = mask_url(str(options.get("Url", "")))
    return f"meadowproxy:direct:{url}:{target}"


def timeout_ms(options: dict) -> int:
    value = options.get("TimeoutMs")
    return int(value) if value not in (None, "") else DEFAULT_TIMEOUT_MS


def session(backend) -> dict:
    """``backend.state`` filled with the transport and the ID cache (built once)."""
    state = backend.state
    if "transport" not in state:
        options = backend.options
        remote_user = options.get("RemoteUser") or default_remote_user()
        seconds = timeout_ms(options) / 1000
        if options.get("Transport") == "mesh":
            from uvctl.mesh import Coordinator

            from .transport import MeshTransport

            coordinator = Coordinator(str(options["Url"]), timeout=min(seconds, 10.0))
            if not coordinator.username:  # a session cached by 'uvctl coordinator login'
                from uvctl.mesh.session import SessionCache

                cached = SessionCache().get(coordinator.base_url)
                if cached:
                    coordinator.use_session(cached["SessionID"])
            state["transport"] = MeshTransport(coordinator, options["Beacon"], remote_user, timeout_ms=timeout_ms(options))
        else:
            from .transport import DirectTransport

            state["transport"] = DirectTransport(str(options["Url"]), remote_user, timeout=seconds)
        state["ids"] = {}
    return state


def route_hash(backend) -> str:
    """The route hash of the tables: the option, else derived from the connection's name."""
    state = session(backend)
    if "route_hash" in state:
        return state["route_hash"]
    options = backend.options
    value = options.get("RouteHash")
    if value in (None, ""):
        connection = options.get("IDBeaconConnection")
        value = "" if connection in (None, "") else hash_of_connection(state["transport"], int(connection))
    state["route_hash"] = str(value)
    return state["route_hash"]


def bases(backend) -> dict:
    """``{table: endpoint base}``: what bootstrap learned, else derived from the route hash."""
    state = session(backend)
    if "bases" not in state:
        state["bases"] = routes.bases_for(route_hash(backend))
    return state["bases"]


def list_connections(transport) -> list[dict]:
    """The databeacon's connections (``DataBeaconAccess.ListConnections`` over the mesh)."""
    outputs = transport.run("DataBeaconAccess", "ListConnections", {})
    rows = outputs.get("Connections")
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def hash_of_connection(transport, connection: int, rows: list[dict] | None = None) -> str:
    """Ask the databeacon for the connection's Name (``rows``: its connections, when already
    listed) and sanitize it as the databeacon does."""
    from .transport import MeshTransport

    if isinstance(transport, MeshTransport):
        rows = list_connections(transport) if rows is None else rows
        match = [row for row in rows if str(row.get("IDBeaconConnection")) == str(connection)]
        if not match:
            known = ", ".join(f"{r.get('IDBeaconConnection')} {r.get('Name')!r}" for r in rows) or "none"
            raise UsageError(
                f"connection {connection} does not exist on {transport.describe()} (connections: {known}); "
                f"fix --connection"
            )
        return routes.route_hash_for(match[0].get("Name"), connection)
    answer = transport.request("GET", f"/beacon/connection/{connection}")
    import json

    try:
        data = json.loads(answer.text)
    except ValueError:
        data = None
    record = data.get("Connection") if isinstance(data, dict) else None
    if answer.status != 200 or not isinstance(record, dict):
        raise UsageError(
            f"cannot read connection {connection} from the databeacon at {transport.base_url} "
            f"(HTTP {answer.status}); give --route-hash instead"
        )
    return routes.route_hash_for(record.get("Name"), connection)
