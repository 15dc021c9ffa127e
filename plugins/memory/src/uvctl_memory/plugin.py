"""The ``memory`` backend: the whole plugin contract in one short module.

Copy this file to start a backend. It announces the backend and its one option,
bootstraps (nothing to prepare), dispatches each action to :class:`MemoryStore`, and
answers natural-key lookups. It needs no ``uvctl_normalize``: its raw results already are
envelopes, which uvctl's fallback passes through.

Where the data lives: in a module-level dict of stores keyed by the ``Store`` option
(``--store``, default ``default``), not in ``backend.state``. Every handle opened with the
same store name, in the same process, sees the same data: the handle a test reads with and
the one ``uvctl flush`` opens from the assignment. Different names are isolated from each
other, and nothing survives the process.
"""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec

from .store import MemoryStore

NAME = "memory"
_STORES: dict[str, MemoryStore] = {}


def get_store(name: str = "default") -> MemoryStore:
    """The store called ``name`` (created empty on first use)."""
    return _STORES.setdefault(name, MemoryStore())


def drop_store(name: str = "default") -> None:
    """Forget the store called ``name`` and everything in it."""
    _STORES.pop(name, None)


def _store_name(options: dict) -> str:
    return options.get("Store") or "default"


@hookimpl
def uvctl_register_backends(register):
    register(
        BackendInfo(
            name=NAME,
            summary="In-process store for tests and embedding (data lives as long as the process).",
            options=(OptionSpec("Store", "--store", "Name of the in-process store; separate names are isolated.", default="default"),),
            identity=lambda options: f"memory:{_store_name(options)}",
        )
    )


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None  # another plugin's backend
    get_store(_store_name(backend.options))
    return BootstrapResult("bootstrapped")


@hookimpl
def uvctl_dispatch(backend, actions):
    if backend.name != NAME:
        return None
    store = get_store(_store_name(backend.options))
    return [store.apply(action.name, action.settings) for action in actions]


@hookimpl
def uvctl_lookup(backend, table, key):
    if backend.name != NAME:
        return None
    return get_store(_store_name(backend.options)).lookup(table, key)
