"""The uvctl plugin module of the `legacy_beacons` backend (entry point group `uvctl`)."""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.backend import BackendInfo, BootstrapResult

NAME = "legacy_beacons"


@hookimpl
def uvctl_register_backends(register):
    register(BackendInfo(name=NAME, summary="legacy_beacons backend (not implemented yet)"))


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    return BootstrapResult("error", reason="the legacy_beacons backend is not implemented yet")
