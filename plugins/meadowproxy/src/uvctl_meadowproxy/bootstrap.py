"""Make a meadowproxy backend ready, idempotently, and say how far it got.

mesh with a connection: look the beacon up → derive the route hash and refuse one that
another connection shares →
``DataBeaconSchema.EnsureSchema`` → ``DataBeaconManagement.Introspect`` per table →
``UpdateProxyConfig`` with an allowlist pattern for this route hash and the UV tables
only → ``EnableEndpoint`` per table → a read on every base. direct (or mesh with only
a route hash): every table must answer ``<base>s/Count``; what is missing is named.
"""

from __future__ import annotations

import json

from uvctl.backend import BootstrapResult
from uvctl.errors import BackendUnavailable, UvctlError
from uvctl.mesh import MeshError

from . import config, routes

SCHEMA_NAME = "ultravisor"


class StepFailed(Exception):
    """A bootstrap step failed; the message becomes the LastError."""


def run(backend) -> BootstrapResult:
    """The bootstrap of ``backend`` (see the module docstring)."""
    state = config.session(backend)
    for key in ("bases", "route_hash"):
        state.pop(key, None)
    state["ids"].clear()
    transport = state["transport"]
    options = backend.options
    try:
        if options.get("Transport") == "mesh":
            record = transport.coordinator.find_beacon(transport.beacon)
            transport.beacon_id = record.get("BeaconID") if record else None
            if record is None:
                return BootstrapResult(
                    "waiting-for-beacon",
                    reason=f"beacon {transport.beacon!r} is not registered with the coordinator at "
                    f"{transport.coordinator.display_url}",
                )
            details = _mesh(backend) if options.get("IDBeaconConnection") not in (None, "") else {}
        else:
            details = {}
        details.update(_verify(backend))
    except BackendUnavailable as exc:
        return BootstrapResult("waiting-for-beacon", reason=str(exc))
    except (StepFailed, MeshError, UvctlError) as exc:
        return BootstrapResult("error", reason=str(exc))
    state.pop("needs_bootstrap", None)
    return BootstrapResult("bootstrapped", details=details)


def _step(transport, capability: str, action: str, settings: dict, label: str, timeout_factor: int = 1) -> dict:
    try:
        outputs = transport.run(capability, action, settings, transport.timeout_ms * timeout_factor)
    except MeshError as exc:
        raise StepFailed(f"{label} failed: {exc}") from None
    if outputs.get("Success") is False or outputs.get("Error"):
        raise StepFailed(f"{label} failed: {outputs.get('Error') or 'the beacon reported Success: false'}")
    return outputs


def _mesh(backend) -> dict:
    transport = config.session(backend)["transport"]
    connection = int(backend.options["IDBeaconConnection"])
    rows = config.list_connections(transport)
    hash_ = backend.options.get("RouteHash") or config.hash_of_connection(transport, connection, rows)
    config.session(backend)["route_hash"] = hash_
    clash = [f"{row.get('IDBeaconConnection')} {row.get('Name')!r}"
             for row in routes.route_hash_clashes(rows, connection, hash_)]
    if clash:
        raise StepFailed(
            f"route hash {hash_!r} of connection {connection} is also the route hash of connection "
            f"{', '.join(clash)} on the databeacon: requests could land in the other database; rename one"
        )
    from uvctl.schema import UV_TABLES, builtin_descriptor

    ensured = _step(
        transport, "DataBeaconSchema", "EnsureSchema",
        {"IDBeaconConnection": connection, "SchemaName": SCHEMA_NAME, "SchemaJSON": builtin_descriptor()},
        "EnsureSchema", timeout_factor=4,
    )
    for table in UV_TABLES:
        _step(transport, "DataBeaconManagement", "Introspect",
              {"IDBeaconConnection": connection, "TableName": table}, f"Introspect({table})")
    pattern = routes.allowlist_pattern(hash_)
    proxy = _step(transport, "DataBeaconManagement", "UpdateProxyConfig", {"PathAllowlist": [pattern]},
                  "UpdateProxyConfig")
    active = (proxy.get("ActiveConfig") or {}).get("PathAllowlist")
    if isinstance(active, list) and _js_source(pattern) not in {_js_source(p) for p in active}:
        raise StepFailed(f"UpdateProxyConfig did not keep the pattern {pattern!r} (active: {active})")
    bases = {}
    for table in UV_TABLES:
        outputs = _step(transport, "DataBeaconManagement", "EnableEndpoint",
                        {"IDBeaconConnection": connection, "TableName": table}, f"EnableEndpoint({table})")
        # An already-enabled table answers without an EndpointBase: derive it then.
        bases[table] = outputs.get("EndpointBase") or routes.endpoint_base(hash_, table)
    config.session(backend)["bases"] = bases
    return {
        "RouteHash": hash_,
        "Engine": ensured.get("Engine"),
        "TablesCreated": ensured.get("TablesCreated", []),
        "PathAllowlist": pattern,
    }


def _js_source(pattern: str) -> str:
    # A JavaScript RegExp reports '/' as '\/' in its source; compare without that.
    return pattern.replace("\\/", "/")


def _verify(backend) -> dict:
    """Every UV table answers a count on its base; otherwise say what is missing and why."""
    from .normalize import error_text

    bases = config.bases(backend)
    transport = config.session(backend)["transport"]
    counts, problems = {}, []
    for table, base in bases.items():
        try:
            answer = transport.request("GET", routes.count_path(base))
        except MeshError as exc:
            problems.append(f"{table}: {exc}")
            continue
        try:
            data = json.loads(answer.text)
        except ValueError:
            data = None
        if answer.status == 200 and isinstance(data, dict) and "Count" in data:
            counts[table] = data["Count"]
        elif answer.status == 404:
            problems.append(f"{table} is not served at {base} (404)")
        else:
            problems.append(f"{table} at {base} answered {answer.status}: {error_text(data) or answer.text[:80]}")
    if problems:
        hint = (
            "create the tables (uvctl schema ensure on that database) and enable their endpoints "
            "on the databeacon (EnableEndpoint), or fix --route-hash"
        )
        if backend.options.get("Transport") == "mesh" and backend.options.get("IDBeaconConnection"):
            hint = "check the databeacon's log; the bootstrap steps reported success"
        raise StepFailed(f"{'; '.join(problems)}; {hint}")
    return {"EndpointBases": bases, "RowCounts": counts}
