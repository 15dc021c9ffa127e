"""The uvctl hooks of the ``meadowproxy`` backend (entry point group ``uvctl``).

Persistence through a retold-databeacon's MeadowProxy capability (``--transport mesh``)
or straight to a meadow REST server (``--transport direct``). The work is done in the
sibling modules; this module stays light so ``uvctl --help`` does not import httpx.
"""

from __future__ import annotations

from uvctl import hookimpl
from uvctl.backend import BackendInfo

NAME = "meadowproxy"


def _mine(backend) -> bool:
    return backend.name == NAME


@hookimpl
def uvctl_register_backends(register):
    from . import config

    register(
        BackendInfo(
            name=NAME,
            summary="A retold-databeacon's MeadowProxy over the Ultravisor mesh, or a meadow REST server directly.",
            options=config.OPTIONS,
            identity=config.identity,
            validate=config.validate,
        )
    )


@hookimpl
def uvctl_bootstrap(backend):
    if not _mine(backend):
        return None
    from . import bootstrap

    return bootstrap.run(backend)


@hookimpl
def uvctl_dispatch(backend, actions):
    if not _mine(backend):
        return None
    from . import config
    from .translate import Translator

    state = config.session(backend)
    translator = Translator(state["transport"], config.bases(backend), state["ids"])
    results = translator.execute(list(actions))
    if translator.broken:
        state["needs_bootstrap"] = translator.broken
    return results


@hookimpl
def uvctl_normalize(backend, action, raw):
    if not _mine(backend):
        return None
    from .normalize import to_envelope

    return to_envelope(action, raw)


@hookimpl
def uvctl_lookup(backend, table, key):
    if not _mine(backend):
        return None
    from . import config, routes
    from .translate import Translator

    state = config.session(backend)
    natural = tuple(key[column] for column in routes.NATURAL_KEYS[table])
    cached = state["ids"].get((table, natural))
    if cached is not None:
        return cached
    translator = Translator(state["transport"], config.bases(backend), state["ids"])
    rows, error = translator.fetch_keys(table, [natural])
    if error is not None:
        from .normalize import reason_of
        from uvctl.errors import UvctlError

        raise UvctlError(f"lookup of {table} {key} failed: {reason_of(error)}")
    row = rows.get(natural)
    return int(row[routes.primary_key(table)]) if row else None


@hookimpl
def uvctl_close(backend):
    if not _mine(backend):
        return
    transport = backend.state.pop("transport", None)
    if transport is not None:
        transport.close()
