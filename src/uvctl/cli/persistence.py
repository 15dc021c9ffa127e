"""``uvctl persistence assign|status|clear``: which backend each bridge writes to, and its state.

The backend options of ``assign`` (``--db`` for ``sql``, ...) are generated from the
installed backends' ``BackendInfo.options`` when the command runs or shows its help, so a
plugin's options appear there without this module importing anything heavy.
"""

from __future__ import annotations

import re

import click

from ..errors import UvctlError
from .output import echo, emit, json_option

_PREFIX = "backend_opt_"


def _bridge_options(func):
    func = click.option("--manifest-only", is_flag=True, help="Only the Manifest bridge.")(func)
    return click.option("--queue-only", is_flag=True, help="Only the Queue bridge.")(func)


def _bridges(queue_only: bool, manifest_only: bool) -> tuple:
    from ..errors import UsageError

    if queue_only and manifest_only:
        raise UsageError("--queue-only and --manifest-only exclude each other; give at most one")
    if queue_only:
        return ("Queue",)
    if manifest_only:
        return ("Manifest",)
    return ("Queue", "Manifest")


def _param_name(flag: str) -> str:
    return _PREFIX + re.sub(r"[^a-z0-9]+", "_", flag.lstrip("-").lower())


def backend_flags() -> dict:
    """``{flag: [(backend name, OptionSpec), ...]}`` over every installed backend."""
    from .. import host

    flags: dict = {}
    for name, info in sorted(host.backends().items()):
        for spec in info.options:
            flags.setdefault(spec.flag, []).append((name, spec))
    return flags


class AssignCommand(click.Command):
    """``persistence assign``, whose backend options come from the installed backends."""

    def get_params(self, ctx):
        generated = [self._option(flag, owners) for flag, owners in backend_flags().items()]
        help_option = self.get_help_option(ctx)
        return [*self.params, *generated, *([help_option] if help_option is not None else [])]

    @staticmethod
    def _option(flag: str, owners: list) -> click.Option:
        parts = []
        for backend, spec in owners:
            text = f"[{backend}] {spec.help}"
            if spec.required:
                text += " Required."
            if spec.choices:
                text += f" One of: {', '.join(spec.choices)}."
            if spec.default is not None and not callable(spec.default) and not spec.secret:
                text += f" Default: {spec.default}."
            parts.append(text)
        is_flag = all(spec.is_flag for _, spec in owners)
        return click.Option([flag, _param_name(flag)], is_flag=is_flag, default=None, help=" ".join(parts),
                            metavar=None if is_flag else "VALUE")


def _given_options(ctx, backend: str, values: dict) -> dict:
    """The options the user really typed, keyed by the backend's option names."""
    from ..errors import UsageError

    own = {spec.flag: spec for spec in _specs_of(backend)}
    options = {}
    for flag, owners in backend_flags().items():
        param = _param_name(flag)
        source = ctx.get_parameter_source(param)
        if source not in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
            continue
        if flag not in own:
            known = ", ".join(own) or "none"
            raise UsageError(f"{flag} is not an option of backend {backend!r} (its options: {known})")
        options[own[flag].name] = values.get(param)
    return options


def _specs_of(backend: str):
    from .. import host

    return host.backend_info(backend).options


@click.group(name="persistence")
def persistence_group():
    """Assign a backend to the Queue and Manifest bridges, see its state, or clear it."""


@persistence_group.command(name="assign", cls=AssignCommand)
@click.option("--backend", required=True, metavar="NAME", help="Backend to assign (see 'uvctl plugins'); built in: sql.")
@_bridge_options
@json_option
@click.pass_context
def assign_command(ctx, backend, queue_only, manifest_only, as_json, **values):
    """Assign a backend and bootstrap it (for sql: --db URL; schema ensure runs on it).

    The assignment is kept in persistence-assignment.json in the data dir. Journal records
    written before the backend is ready stay pending until 'uvctl flush'.
    """
    from .. import assignment

    bridges = _bridges(queue_only, manifest_only)
    options = _given_options(ctx, backend, values)
    written = assignment.assign(backend, options, bridges)
    report = _status()  # both bridges, whichever was assigned: a script reads the same keys every time
    emit(report, as_json, _print_status)
    replaced = [b for b in bridges if report[b].get("AssignedAt") != written[b]["AssignedAt"]]
    if replaced:  # another assign ran meanwhile: what the report shows is not this one
        raise UvctlError(f"another 'uvctl persistence assign' replaced this assignment of {' and '.join(replaced)} "
                         f"meanwhile; the status above is that one's (run 'uvctl persistence status')")
    _fail_on_error({bridge: report[bridge] for bridge in bridges}, "assigned, but the bootstrap failed")


def _fail_on_error(report: dict, what: str) -> None:
    """Exit 1 (after the report) when a bridge is in ``error``: nothing reaches its backend until
    the cause is fixed, and a script must see that."""
    failed = {bridge: row for bridge, row in report.items() if row.get("State") == "error"}
    if failed:
        row = next(iter(failed.values()))
        raise UvctlError(f"{' and '.join(failed)} {what}: {row.get('LastError')}; fix that, then run "
                         f"'uvctl persistence status' to bootstrap again")


@persistence_group.command(name="status")
@click.option("--no-bootstrap", is_flag=True, help="Only report; do not try to bootstrap a backend that is not ready.")
@json_option
def status_command(no_bootstrap, as_json):
    """Show each bridge's backend, state, last error, high-water mark and pending records
    (and, when 'uvctl beacon run' uses this data dir, the beacon's state in one line).

    Exits 1 (after the report) while a bridge is in state error."""
    report = _status(bootstrap=not no_bootstrap)
    emit(report, as_json, _print_status)
    if not as_json:
        from ..beacon.status import beacon_status
        from .beacon import describe

        beacon = beacon_status()
        if beacon["Known"]:
            echo(describe(beacon)[0])
    _fail_on_error(report, "in state error")


@persistence_group.command(name="clear")
@_bridge_options
@json_option
def clear_command(queue_only, manifest_only, as_json):
    """Unassign the backend of both bridges (or one); journal records are kept."""
    from .. import assignment

    bridges = _bridges(queue_only, manifest_only)
    assignment.clear(bridges)
    emit(_status(bootstrap=False), as_json, _print_status)  # both bridges: the one kept says what still runs


def _status(bootstrap: bool = True) -> dict:
    from .. import assignment
    from ..journal import Journal

    with Journal.open(read_only=True) as journal:  # only read: a missing journal is not created
        return assignment.status(journal, bootstrap=bootstrap)


def _print_status(report: dict) -> None:
    for bridge, row in report.items():
        if row["State"] == "unassigned":
            echo(f"{bridge}: unassigned ({row['Pending']} journal records pending)")
            continue
        echo(f"{bridge}: {row['State']} on {row['Identity'] or row['Backend']}")
        echo(f"  assigned {row['AssignedAt']}; bootstrapped {row['BootstrappedAt'] or 'never'}")
        if row["Identity"] is None:  # its plugin is gone: which mark is its own cannot be known
            echo("  high-water mark unknown; pending records unknown")
        else:
            echo(f"  high-water mark {row['HighWaterMark'] or 0}; {row['Pending']} journal records pending")
        if row["LastError"]:
            echo(f"  last error: {row['LastError']}")


COMMANDS = [persistence_group]
