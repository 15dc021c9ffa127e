"""What a backend is, as seen by the plugin host: its announcement, its handle, its state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

#: The states of ``uvctl persistence status``, in the order an assignment moves through them.
STATES = ("unassigned", "waiting-for-beacon", "bootstrapping", "bootstrapped", "error")


@dataclass(frozen=True)
class OptionSpec:
    """One ``uvctl persistence assign`` option a backend accepts.

    ``name`` is the option key as stored in the assignment (``Url``); ``flag`` the
    command-line flag (``--url``); ``secret`` options are masked in every output.
    ``default`` may be a callable: it is then called at assign time (for a default that
    depends on the environment, such as the data dir) and the result is stored.
    """

    name: str
    flag: str
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    is_flag: bool = False


@dataclass(frozen=True)
class BackendInfo:
    """A backend announced through ``uvctl_register_backends``.

    ``identity`` maps the stored options to a stable, secret-free string that keys the
    backend's high-water mark (for example ``sql:postgresql://u@host/db``). ``legacy``
    marks backends kept for older deployments; ``--help`` and ``uvctl plugins`` say so.
    """

    name: str
    summary: str
    options: tuple[OptionSpec, ...] = ()
    identity: Callable[[dict], str] | None = None
    validate: Callable[[dict], None] | None = None
    legacy: bool = False
    plugin: str = ""

    def identity_of(self, options: dict) -> str:
        """The secret-free identity of this backend configured with ``options``."""
        if self.identity is not None:
            return self.identity(options)
        return self.name


@dataclass
class Backend:
    """The handle a plugin's hooks receive: which backend, configured how.

    ``state`` is the plugin's own scratch space for the life of the handle (an engine,
    an HTTP client, a natural-key → row-ID cache); uvctl never looks inside it.
    """

    name: str
    options: dict
    identity: str
    data_dir: str
    state: dict = field(default_factory=dict)


@dataclass
class BootstrapResult:
    """What ``uvctl_bootstrap`` reports: one of STATES (not ``unassigned``) and why."""

    state: str
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.state not in STATES or self.state == "unassigned":
            raise ValueError(f"bootstrap state must be one of {STATES[1:]}, got {self.state!r}")
