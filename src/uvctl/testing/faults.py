"""Backend failures on demand: a plugin that wraps every backend's ``uvctl_dispatch``."""

from __future__ import annotations

from ..errors import BackendUnavailable
from ..hookspecs import hookimpl

PLUGIN_NAME = "uvctl.testing.faults"


class DispatchFault:
    """Make dispatch calls fail with :class:`BackendUnavailable`, whatever the backend.

    ``fail_after(n, bridge="Queue")`` lets ``n`` dispatch calls of that bridge through,
    then fails every later one until :meth:`heal`. Register it with
    ``uvctl.host.register_plugin`` (the ``uvctl_fault`` fixture does that for you).
    """

    def __init__(self):
        self.allowed: int | None = None
        self.bridge: str | None = None
        self.calls = 0
        self.failures = 0

    def fail_after(self, calls: int, bridge: str | None = None) -> None:
        """Let ``calls`` more dispatches (of ``bridge``, or of any bridge) succeed, then fail."""
        self.allowed, self.bridge, self.calls = calls, bridge, 0

    def heal(self) -> None:
        """Stop failing."""
        self.allowed = None

    @hookimpl(wrapper=True, tryfirst=True)
    def uvctl_dispatch(self, actions):
        concerned = self.allowed is not None and self.bridge in (None, _bridge_of(actions))
        if concerned:
            self.calls += 1
            if self.calls > self.allowed:
                self.failures += 1
                raise BackendUnavailable("backend failure injected by the uvctl conformance kit")
        return (yield)


def _bridge_of(actions) -> str | None:
    try:
        return actions[0].bridge if actions else None
    except ValueError:  # not a QP_* / MS_* action
        return None
