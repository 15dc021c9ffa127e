"""The ``legacy_beacons`` backend: Ultravisor's older persistence beacons, through a coordinator.

Legacy: upstream deleted the beacon modules that advertised ``QueuePersistence`` and
``ManifestStore`` and labels those beacon types "(legacy)"; this backend exists for
deployments that still run one. ``QP_*`` actions go to the assigned beacon as
``QueuePersistence/<action>``, ``MS_*`` actions as ``ManifestStore/<action>``, each through
``POST /Beacon/Work/Dispatch`` with ``AffinityKey`` = the beacon's name and
``RequireAffinityMatch: true`` (never to whichever beacon claims first). The coordinator
client is :mod:`uvctl.mesh`, shared with the meadowproxy backend.
"""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.actions import QUEUE, envelope, failure
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec
from uvctl.errors import BackendUnavailable, UsageError, mask_url

from . import translate

NAME = "legacy_beacons"
CAPABILITIES = tuple(translate.CAPABILITY.values())
ONLINE = ("Online", "Busy")


def _identity(options: dict) -> str:
    return f"{NAME}:{mask_url(options.get('Url', ''))}#{options.get('Beacon', '')}"


def _validate(options: dict) -> None:
    from uvctl.mesh import split_credentials

    split_credentials(options.get("Url") or "")
    if not options.get("Beacon"):
        raise UsageError("legacy_beacons needs --beacon NAME: the Name the persistence beacon registered with")
    timeout = str(options.get("TimeoutMs", 5000))
    if not timeout.isdigit() or int(timeout) < 1:
        raise UsageError(f"--timeout-ms must be a positive whole number of milliseconds, got {timeout!r}")


@hookimpl
def uvctl_register_backends(register):
    register(
        BackendInfo(
            name=NAME,
            summary="(legacy) Ultravisor's older QueuePersistence / ManifestStore beacons, through a coordinator.",
            options=(
                OptionSpec("Url", "--url", "(legacy) Ultravisor coordinator URL (http(s)://[user:password@]host:port).", required=True, secret=True),
                OptionSpec("Beacon", "--beacon", "(legacy) Name of the QueuePersistence / ManifestStore beacon to route every action to.", required=True),
                OptionSpec("TimeoutMs", "--timeout-ms", "(legacy) How long one dispatch may take (ms).", default=5000),
            ),
            identity=_identity,
            validate=_validate,
            legacy=True,
        )
    )


def _coordinator(backend):
    """The handle's coordinator client, created on first use."""
    if "coordinator" not in backend.state:
        from uvctl.mesh import Coordinator

        backend.state["coordinator"] = Coordinator(backend.options["Url"])
    return backend.state["coordinator"]


def _beacon(backend) -> dict | None:
    """The beacon's record when the coordinator lists it online, else None (cached per handle)."""
    if "beacon" not in backend.state:
        record = _coordinator(backend).find_beacon(backend.options["Beacon"])
        if record is None or record.get("Status") not in ONLINE:
            return None
        backend.state["beacon"] = record
    return backend.state["beacon"]


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    from uvctl.errors import BackendUnavailable, UvctlError

    backend.state.pop("beacon", None)
    name, url = backend.options["Beacon"], mask_url(backend.options["Url"])
    try:
        record = _beacon(backend)
    except BackendUnavailable as exc:
        return BootstrapResult("waiting-for-beacon", reason=str(exc))
    except UvctlError as exc:
        return BootstrapResult("error", reason=str(exc))
    if record is None:
        return BootstrapResult("waiting-for-beacon", reason=f"beacon {name!r} is not online at the coordinator {url}")
    offered = [c for c in CAPABILITIES if c in (record.get("Capabilities") or [])]
    if not offered:
        return BootstrapResult("error", reason=f"beacon {name!r} advertises neither {' nor '.join(CAPABILITIES)}; assign a legacy persistence beacon")
    return BootstrapResult("bootstrapped", details={"BeaconID": record.get("BeaconID"), "Capabilities": offered})


@hookimpl
def uvctl_dispatch(backend, actions):
    """One work item per action, in order; raw results are normalized by ``uvctl_normalize``."""
    if backend.name != NAME:
        return None
    from uvctl.mesh import BeaconNotFound, WorkError

    beacon, timeout = backend.options["Beacon"], _timeout_ms(backend)
    raw, stored_events = [], {}
    for action in actions:
        request = translate.work_item(action.name, action.settings)
        if isinstance(request, dict):  # refused before sending
            raw.append({"Envelope": request})
            continue
        capability, settings = request
        try:
            record = _beacon(backend)
            if record is None:
                raise BeaconNotFound(f"beacon {beacon!r} is not online at the coordinator {mask_url(backend.options['Url'])}")
            if capability not in (record.get("Capabilities") or []):
                raw.append({"Envelope": failure(f"beacon {beacon!r} does not advertise {capability}")})
                continue
            try:
                raw.append({"Outputs": _coordinator(backend).dispatch(capability, action.name, settings, beacon, timeout)})
            except WorkError as exc:
                raw.append(_error(backend, action, str(exc), stored_events))
            except BackendUnavailable as exc:
                if not isinstance(exc, BeaconNotFound) and record.get("MaxConcurrent") == 1:  # mesh reference §6.1
                    raise BackendUnavailable(
                        f"{exc} (beacon {beacon!r} is registered with MaxConcurrent 1, and the coordinator never "
                        f"hands name-routed work to an HTTP-polling beacon with a single slot: register it with "
                        f"MaxConcurrent 2 or more)") from None
                raise
        except BeaconNotFound as exc:
            backend.state.pop("beacon", None)
            raw.append({"Envelope": translate.beacon_missing(str(exc))})
        except WorkError as exc:
            raw.append({"Error": str(exc)})
    return raw


def _timeout_ms(backend) -> int:
    """How long one dispatch to the beacon may take (``--timeout-ms``)."""
    return int(backend.options.get("TimeoutMs") or 5000)


def _error(backend, action, message: str, stored_events: dict) -> dict:
    """The raw result of a beacon error. A duplicate of an append-only record counts as
    delivered only when it is one: a unique violation of the natural key and, for an event,
    the event read back from the beacon (``stored_events`` caches the reads of this batch).
    Attempts have no read action, so the key violation alone must do."""
    if not translate.is_duplicate(action.name, message):
        return {"Error": message}
    if action.name == "QP_AppendEvent":
        event = action.settings["Event"]
        hash_ = event["WorkItemHash"]
        if hash_ not in stored_events:
            answer = _coordinator(backend).dispatch(
                translate.CAPABILITY[QUEUE], "QP_GetEvents", {"WorkItemHash": hash_, "Limit": translate.READ_BACK_LIMIT},
                backend.options["Beacon"], _timeout_ms(backend))
            stored_events[hash_] = (answer.get("Events") or []) if isinstance(answer, dict) else []
        stored = stored_events[hash_]
        # a work item with more events than one read returns: the key violation has to do
        if len(stored) < translate.READ_BACK_LIMIT and not translate.holds_event(stored, event):
            return {"Error": f"{message} (yet the beacon does not return event {event['EventGUID']}; it stays pending)"}
    return {"Duplicate": True}


@hookimpl
def uvctl_normalize(backend, action, raw):
    if backend.name != NAME:
        return None
    if "Envelope" in raw:
        return raw["Envelope"]
    if raw.get("Duplicate"):
        return envelope(True, AlreadyPresent=True)
    if "Error" in raw:
        return translate.from_error(action.name, raw["Error"], backend.options["Beacon"])
    return translate.from_outputs(action.name, raw["Outputs"])


@hookimpl
def uvctl_close(backend):
    if backend.name == NAME and "coordinator" in backend.state:
        backend.state.pop("coordinator").close()
