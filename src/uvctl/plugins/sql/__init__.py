"""The built-in ``sql`` backend: any SQLAlchemy database URL, bootstrapped by ``schema ensure``.

It implements exactly the public hooks a third-party backend would: register, bootstrap,
dispatch, normalize, lookup, close. Hook bodies import SQLAlchemy lazily so ``uvctl --help`` stays fast.
"""

from __future__ import annotations

from ...backend import BackendInfo, OptionSpec
from ...errors import mask_url
from ...hookspecs import hookimpl

NAME = "sql"
DB_OPTION = "Db"


def default_url() -> str:
    """The default target: ``$UVCTL_DB_URL``, else ``ultravisor.sqlite`` in the data dir."""
    from ...paths import default_db_url

    return default_db_url()


def url_of(options: dict) -> str:
    """The database URL a ``sql`` assignment points at."""
    return options.get(DB_OPTION) or default_url()


def _identity(options: dict) -> str:
    return f"sql:{mask_url(url_of(options))}"


def _validate(options: dict) -> None:
    from ...errors import UsageError
    from .connect import check_url

    given = options.get(DB_OPTION)
    if given is not None and not str(given).strip():
        # an empty --db (say "$DB_URL" with the variable unset) must not quietly mean the default database
        raise UsageError("--db is empty; give a database URL, or leave --db out to use the default database")
    check_url(url_of(options))


@hookimpl
def uvctl_register_backends(register):
    register(
        BackendInfo(
            name=NAME,
            summary="Any SQLAlchemy database URL (SQLite, PostgreSQL, MySQL/MariaDB, MSSQL).",
            options=(
                OptionSpec(
                    DB_OPTION,
                    "--db",
                    "SQLAlchemy URL of the target database (default: $UVCTL_DB_URL, else ultravisor.sqlite in the data dir).",
                    default=default_url,
                    secret=True,
                ),
            ),
            identity=_identity,
            validate=_validate,
        )
    )


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    from .dispatch import bootstrap

    return bootstrap(backend, url_of(backend.options))


@hookimpl
def uvctl_dispatch(backend, actions):
    if backend.name != NAME:
        return None
    from .dispatch import dispatch

    return dispatch(backend, url_of(backend.options), actions)


@hookimpl(tryfirst=True)
def uvctl_normalize(backend, action, raw):
    # dispatch already answers with Ultravisor envelopes; answering first spares every
    # other plugin's normalize call for each action of a flush
    if backend.name != NAME:
        return None
    return raw


@hookimpl
def uvctl_lookup(backend, table, key):
    if backend.name != NAME:
        return None
    from .lookup import lookup

    return lookup(backend, url_of(backend.options), table, key)


@hookimpl
def uvctl_close(backend):
    if backend.name != NAME:
        return
    from .connect import close

    close(backend)
