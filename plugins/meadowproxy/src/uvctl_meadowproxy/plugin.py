"""The uvctl plugin module of the `meadowproxy` backend (entry point group `uvctl`)."""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.backend import BackendInfo, BootstrapResult

NAME = "meadowproxy"


@hookimpl
def uvctl_register_backends(register):
    register(BackendInfo(name=NAME, summary="meadowproxy backend (not implemented yet)"))


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    return BootstrapResult("error", reason="the meadowproxy backend is not implemented yet")
