"""The uvctl plugin module of the `memory` backend (entry point group `uvctl`)."""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.backend import BackendInfo, BootstrapResult

NAME = "memory"


@hookimpl
def uvctl_register_backends(register):
    register(BackendInfo(name=NAME, summary="memory backend (not implemented yet)"))


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    return BootstrapResult("error", reason="the memory backend is not implemented yet")
