"""The built-in ``sql`` backend: any SQLAlchemy URL, bootstrapped by ``schema ensure``.

Hook bodies import SQLAlchemy lazily; this module stays light so ``uvctl --help`` is fast.
"""

from __future__ import annotations

from ...backend import BackendInfo, BootstrapResult, OptionSpec
from ...errors import mask_url
from ...hookspecs import hookimpl

NAME = "sql"


def _identity(options: dict) -> str:
    return f"sql:{mask_url(options.get('Db', ''))}"


@hookimpl
def uvctl_register_backends(register):
    register(
        BackendInfo(
            name=NAME,
            summary="Any SQLAlchemy database URL (SQLite, PostgreSQL, MySQL/MariaDB, MSSQL).",
            options=(OptionSpec("Db", "--db", "SQLAlchemy URL of the target database (default: $UVCTL_DB_URL or the data-dir SQLite file).", secret=True),),
            identity=_identity,
        )
    )


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    return BootstrapResult("error", reason="the sql backend is not implemented yet")


@hookimpl
def uvctl_dispatch(backend, actions):
    if backend.name != NAME:
        return None
    from ...errors import UvctlError

    raise UvctlError("the sql backend is not implemented yet")
