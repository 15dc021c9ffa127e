"""The plugin host: one pluggy PluginManager("uvctl"), its loading, and backend calls.

Built-in plugins are ordinary plugins registered by module name; third-party plugins
come from the ``uvctl`` entry-point group, loaded one at a time so that one broken
plugin is reported as a warning and never takes the command line down with it.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import UsageError

ENTRY_POINT_GROUP = "uvctl"
BUILTIN_PLUGINS = ("uvctl.plugins.sql", "uvctl.plugins.normalize")

pm = pluggy.PluginManager("uvctl")
pm.add_hookspecs(hookspecs)
#: pluggy's own hook runner, as long as nobody has installed hook-call monitoring (tracing).
_PLAIN_HOOKEXEC = getattr(pm, "_inner_hookexec", None)


@dataclass
class PluginRecord:
    """What ``uvctl plugins`` shows about one plugin."""

    name: str
    version: str | None = None
    builtin: bool = False
    error: str | None = None
    backends: list = field(default_factory=list)


_loaded = False
_records: dict[str, PluginRecord] = {}
_backends: dict = {}
_warned: set = set()  # problems already said on stderr


def _allowed() -> set[str] | None:
    value = os.environ.get("UVCTL_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def load_plugins() -> None:
    """Register the built-ins and every allowed entry-point plugin, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
        _records[module_name] = PluginRecord(name=module_name, builtin=True, version=_own_version())
    allowed = _allowed()
    entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    unknown = sorted((allowed or set()) - {entry_point.name for entry_point in entry_points})
    if unknown:  # a typo would otherwise leave a backend silently missing
        print(f"uvctl: warning: UVCTL_LOAD_PLUGINS names {', '.join(map(repr, unknown))}, which no installed "
              f"plugin provides; installed: {', '.join(sorted(ep.name for ep in entry_points)) or 'none'}",
              file=sys.stderr)
    for entry_point in entry_points:
        if allowed is not None and entry_point.name not in allowed:
            continue
        if pm.has_plugin(entry_point.name) or pm.is_blocked(entry_point.name):
            continue
        version = entry_point.dist.version if entry_point.dist else None
        record = PluginRecord(name=entry_point.name, version=version)
        _records[entry_point.name] = record
        try:
            plugin = entry_point.load()
            pm.register(plugin, name=entry_point.name)
            pm.check_pending()
        except Exception as exc:  # a broken plugin must not break uvctl
            if pm.has_plugin(entry_point.name):
                pm.unregister(name=entry_point.name)
            record.error = " ".join(f"{type(exc).__name__}: {exc}".split())  # pluggy's messages span lines
            print(
                f"uvctl: warning: plugin {entry_point.name!r} failed to load ({record.error}); "
                f"other commands still work. Set UVCTL_LOAD_PLUGINS to skip it.",
                file=sys.stderr,
            )
    _collect_backends()


def register_plugin(plugin, name: str) -> None:
    """Register an in-process plugin (tests, embedding applications) and its backends."""
    load_plugins()
    pm.register(plugin, name=name)
    _records[name] = PluginRecord(name=name)
    _collect_backends()


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`."""
    pm.unregister(name=name)
    _records.pop(name, None)
    _collect_backends()


def _own_version() -> str | None:
    try:
        return metadata.version("uvctl")
    except metadata.PackageNotFoundError:
        return None


def _collect_backends() -> None:
    """Ask every plugin for its backends. Two plugins announcing one name would both answer
    the first-result hooks for it (pluggy asks the newest first), so the one with the weaker
    claim (:func:`_claim`) is unregistered, with a warning: it could otherwise take over what
    an existing assignment runs, and its mark key."""
    from .backend import BackendInfo

    _backends.clear()
    for record in _records.values():
        record.backends = []
    losers: dict = {}  # plugin name -> the problem
    for plugin_name, plugin in pm.list_name_plugin():
        impl = getattr(plugin, "uvctl_register_backends", None)
        if impl is None:
            continue

        def register(info: BackendInfo, _plugin_name=plugin_name):
            if not isinstance(info, BackendInfo):
                raise TypeError("register() takes a uvctl.backend.BackendInfo")
            info = BackendInfo(**{**info.__dict__, "plugin": _plugin_name})
            taken = _backends.get(info.name)
            if taken is not None and taken.plugin != _plugin_name:
                keeper, other = (info, taken) if _claim(info) < _claim(taken) else (taken, info)
                losers[other.plugin] = (f"plugin {other.plugin!r} is not loaded: its backend {info.name!r} is already "
                                        f"provided by plugin {keeper.plugin!r} (rename that backend)")
            _backends.setdefault(info.name, info)
            if _claim(info) < _claim(_backends[info.name]):
                _backends[info.name] = info
            if _plugin_name in _records:
                _records[_plugin_name].backends.append(info.name)

        try:
            impl(register=register)
        except Exception as exc:
            record = _records.setdefault(plugin_name, PluginRecord(name=plugin_name))
            record.error = f"uvctl_register_backends failed: {type(exc).__name__}: {exc}"
    if losers:
        for plugin_name, problem in losers.items():
            if pm.has_plugin(plugin_name):
                pm.unregister(name=plugin_name)
            _warn_once(plugin_name, problem)
        _collect_backends()


def _claim(info) -> int:
    """How strongly the plugin of ``info`` claims its backend name (lower wins)."""
    record = _records.get(info.plugin)
    if record is not None and record.builtin:
        return 0
    return 1 if info.plugin == info.name else 2


def _warn_once(plugin_name: str, problem: str) -> None:
    """Record ``problem`` on the plugin and say it once on stderr (the backends are collected
    again whenever a plugin is registered)."""
    record = _records.setdefault(plugin_name, PluginRecord(name=plugin_name))
    record.error = problem
    if problem not in _warned:
        _warned.add(problem)
        print(f"uvctl: warning: {problem}", file=sys.stderr)


def register_commands(cli) -> None:
    """Let each plugin add its click commands to ``cli``; a plugin that fails is reported
    in one line and left out, and every other command still works."""
    load_plugins()
    for impl in pm.hook.uvctl_register_commands.get_hookimpls():
        try:
            impl.function(**{name: cli for name in impl.argnames})  # the spec's one argument, if taken
        except Exception as exc:
            _warn_once(impl.plugin_name, f"plugin {impl.plugin_name!r} failed to add its commands "
                                         f"({type(exc).__name__}: {exc}); other commands still work")


def plugin_records() -> list[PluginRecord]:
    """Every plugin the host knows, loaded or failed, with its hooks and backends."""
    load_plugins()
    return list(_records.values())


def hooks_of(name: str) -> list[str]:
    """The hook names the plugin registered as ``name`` implements."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))


def backends() -> dict:
    """``{name: BackendInfo}`` for every announced backend."""
    load_plugins()
    return dict(_backends)


def backend_info(name: str):
    """The :class:`BackendInfo` called ``name``, or a UsageError listing what exists."""
    known = backends()
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise UsageError(f"unknown backend {name!r}; installed backends: {names} (see 'uvctl plugins')")
    return known[name]


def open_backend(name: str, options: dict):
    """A :class:`Backend` handle for the backend ``name`` configured with ``options``."""
    from .backend import Backend
    from .paths import ensure_data_dir

    info = backend_info(name)
    return Backend(name=name, options=dict(options), identity=info.identity_of(options), data_dir=str(ensure_data_dir()))


def bootstrap(backend):
    """Run the owning plugin's ``uvctl_bootstrap``; a BootstrapResult."""
    from .backend import BootstrapResult

    try:
        result = pm.hook.uvctl_bootstrap(backend=backend)
    except Exception as exc:
        return BootstrapResult("error", reason=_reason(exc))
    if result is None:
        return BootstrapResult("error", reason=f"no plugin bootstraps backend {backend.name!r}")
    if not isinstance(result, BootstrapResult):
        return BootstrapResult("error", reason=f"the plugin of backend {backend.name!r} answered the bootstrap with "
                                               f"{type(result).__name__}, not a BootstrapResult; update or fix the plugin")
    return result


def dispatch(backend, actions: list) -> list[dict]:
    """Dispatch ``actions`` to ``backend`` and normalize each answer into an envelope.

    Raises :class:`uvctl.errors.BackendUnavailable` when the backend cannot be reached.
    """
    if not actions:
        return []
    raw = pm.hook.uvctl_dispatch(backend=backend, actions=actions)
    if raw is None:
        raise UsageError(f"no plugin dispatches for backend {backend.name!r}; is its plugin installed?")
    if len(raw) != len(actions):
        raise RuntimeError(
            f"backend {backend.name!r} returned {len(raw)} results for {len(actions)} actions"
        )
    normalize = _normalizer(backend)
    envelopes = [normalize(a, r) for a, r in zip(actions, raw)]
    if not all(type(e) is dict and type(e.get("Success")) is bool and type(e.get("AlreadyPresent")) in _FLAG_TYPES
               for e in envelopes):
        envelopes = [_checked(backend, a, e) for a, e in zip(actions, envelopes)]
    return envelopes


_FLAG_TYPES = (bool, type(None))  # AlreadyPresent: a boolean, or left out


def _checked(backend, action, answer):
    """``answer`` when it is an envelope whose ``Success`` is a boolean (and ``AlreadyPresent``
    one or None); otherwise a failure that says so. A string "false" never counts as delivered."""
    if not isinstance(answer, dict):
        shown = f"a {type(answer).__name__}"
    elif type(answer.get("Success")) is not bool:
        shown = f"Success={answer.get('Success')!r}"
    elif type(answer.get("AlreadyPresent")) not in _FLAG_TYPES:
        shown = f"AlreadyPresent={answer.get('AlreadyPresent')!r}"
    else:
        return answer
    return {"Available": True, "Success": False,
            "Reason": f"backend {backend.name!r} answered {action.name} with {shown[:80]}, where an envelope has "
                      f"booleans; update or fix its plugin"}


def _normalizer(backend):
    """``(action, raw) -> envelope``: ``uvctl_normalize`` for one action of this batch.

    The hook is still called once per action, with pluggy's semantics (implementations in
    pluggy's call order, the first non-None answer wins, exceptions propagate). Only pluggy's
    per-call dispatch machinery is skipped: the implementations are looked up once per batch,
    which makes normalizing a 5,000-action flush batch several times cheaper. Hook wrappers,
    historic calls and hook-call monitoring (tracing) need pluggy itself: then every call goes
    through ``pm.hook.uvctl_normalize`` as usual.
    """
    caller = pm.hook.uvctl_normalize
    impls = caller.get_hookimpls()
    if (_PLAIN_HOOKEXEC is None or getattr(pm, "_inner_hookexec", None) is not _PLAIN_HOOKEXEC
            or any(impl.hookwrapper or impl.wrapper for impl in impls)):
        return lambda action, raw: caller(backend=backend, action=action, raw=raw)
    calls = [_positional(impl.function, impl.argnames, backend) for impl in reversed(impls)]  # pluggy calls the last first
    if len(calls) == 1:
        return calls[0]

    def normalize(action, raw):
        for call in calls:
            answer = call(action, raw)
            if answer is not None:
                return answer
        return None

    return normalize


def _positional(function, argnames: tuple, backend):
    """``(action, raw) -> function(...)`` passing the hook arguments ``function`` names, in its order."""
    if argnames == ("backend", "action", "raw"):
        return functools.partial(function, backend)
    return lambda action, raw: function(*[{"backend": backend, "action": action, "raw": raw}[n] for n in argnames])


def lookup(backend, table: str, key: dict):
    """The backend's row ID for a natural key, or None."""
    return pm.hook.uvctl_lookup(backend=backend, table=table, key=key)


def close(backend) -> None:
    """Let plugins release what they hold in ``backend.state``."""
    pm.hook.uvctl_close(backend=backend)


def _reason(exc: Exception) -> str:
    from .errors import mask_secrets

    return mask_secrets(str(exc) or type(exc).__name__)
