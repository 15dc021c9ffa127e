"""The public contract between uvctl and its plugins.

Every hook below is a documented function with no body: pluggy matches a plugin's
``@uvctl.hookimpl`` functions to these by name. A plugin may accept any *subset* of a
hook's arguments (pluggy's argument pruning), so new arguments can be added later
without breaking existing plugins. See docs/plugins.md for the compatibility promise.

Backend hooks (``uvctl_bootstrap``, ``uvctl_dispatch``, ``uvctl_lookup``,
``uvctl_normalize``) are ``firstresult``: uvctl calls them with a
:class:`uvctl.backend.Backend` handle, and the plugin that owns ``backend.name``
answers; every other plugin returns ``None``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("uvctl")
hookimpl = pluggy.HookimplMarker("uvctl")

#: Bumped only when a hook changes incompatibly (see docs/plugins.md).
PLUGIN_API_VERSION = 1


@hookspec
def uvctl_register_backends(register):
    """Announce the backends this plugin provides.

    Call ``register(BackendInfo(...))`` once per backend. ``BackendInfo`` (in
    :mod:`uvctl.backend`) names the backend, describes it, lists its assign options and
    says how its identity (the key of its high-water mark) is derived from them.
    Called once when the plugin host starts; must not import heavy libraries.
    """


@hookspec
def uvctl_register_commands(cli):
    """Add click commands or groups to the ``uvctl`` command line.

    ``cli`` is the top-level :class:`click.Group`. Import heavy modules inside the
    command bodies, never at the top of the plugin module.
    """


@hookspec(firstresult=True)
def uvctl_bootstrap(backend):
    """Make ``backend`` ready to take writes, and say how far it got.

    Called by ``uvctl persistence status`` / ``assign``, before a flush, and again
    whenever a dispatch result carries ``NeedsBootstrap``. Return a
    :class:`uvctl.backend.BootstrapResult` whose ``state`` is ``waiting-for-beacon``
    (the target cannot be reached yet), ``bootstrapped`` or ``error`` (with ``reason``).
    Must be idempotent: it runs many times over the life of an assignment.
    Return ``None`` when ``backend.name`` is not yours.
    """


@hookspec(firstresult=True)
def uvctl_dispatch(backend, actions):
    """Execute a batch of bridge actions against ``backend``; return raw results.

    ``actions`` is a list of :class:`uvctl.actions.Action` (``QP_*`` / ``MS_*``), in
    journal order, with payloads already projected to the UV schema columns. Return a
    list with exactly one raw result per action, in the same order; each raw result is
    later passed to ``uvctl_normalize``. A plugin may apply the batch in one transaction
    or one request. Raise :class:`uvctl.errors.BackendUnavailable` when the backend
    cannot be reached at all (the records stay pending). Return ``None`` when
    ``backend.name`` is not yours.
    """


@hookspec(firstresult=True)
def uvctl_lookup(backend, table, key):
    """Resolve a natural key to the backend's row ID, or ``None`` when absent.

    ``table`` is a UV table name; ``key`` a dict of its natural key columns:
    ``{"WorkItemHash"}`` for UVQueueWorkItem, ``{"WorkItemHash", "AttemptNumber"}`` for
    UVQueueWorkItemAttempt, ``{"EventGUID"}`` for events, ``{"Hash"}`` for UVManifest.
    A backend that upserts by natural key natively need not implement this hook.
    """


@hookspec(firstresult=True)
def uvctl_normalize(backend, action, raw):
    """Turn one raw dispatch result into Ultravisor's bridge envelope (a dict).

    The envelope has ``Available`` and ``Success`` and, as the action calls for,
    ``AlreadyPresent``, ``Reason``, ``WorkItem``, ``WorkItems``, ``Events``,
    ``Manifest``, ``Manifests``. Set ``NeedsBootstrap: True`` when the answer shows the
    backend lost its readiness (a write must then stay pending). uvctl's own
    fallback implementation accepts raw results that already are envelopes, so a
    backend that returns envelopes from ``uvctl_dispatch`` need not implement this.
    """


@hookspec
def uvctl_close(backend):
    """Release what the plugin keeps in ``backend.state`` (connections, clients)."""
