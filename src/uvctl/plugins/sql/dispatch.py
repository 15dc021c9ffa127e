"""``uvctl_dispatch`` and ``uvctl_bootstrap`` of the sql backend (imports SQLAlchemy)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from ...actions import READ_ACTIONS, failure
from ...backend import BootstrapResult
from ...errors import BackendUnavailable, UvctlError, mask_secrets, mask_url
from . import connect
from .read import Reader
from .write import WRITES, InvalidAction, apply, table_infos


def dispatch(backend, url: str, actions: list) -> list[dict]:
    """Apply ``actions`` in one transaction; one envelope per action, in order.

    Raises BackendUnavailable when the database cannot be reached. Any other failure rolls
    the whole batch back and answers every action with ``Success: False`` and the reason
    (``NeedsBootstrap: True`` when a UV table or column is missing).
    """
    db = connect.database(backend, url)
    results: list = [None] * len(actions)
    for i, action in enumerate(actions):
        if action.name not in WRITES and action.name not in READ_ACTIONS:
            return _all_failed(actions, f"{action.name} (seq {action.seq}) is not a bridge action the sql backend knows")
    with db.connect() as conn:
        try:
            with conn.begin():
                tables = db.uv_tables(conn)
                infos = backend.state.get("sql_infos")
                if infos is None or infos[0] is not tables:
                    infos = (tables, table_infos(tables))
                    backend.state["sql_infos"] = infos
                reader = Reader(conn, tables)
                pending: list = []
                for i, action in enumerate(actions):
                    if action.name in WRITES:
                        pending.append(i)
                        continue
                    if pending:
                        apply(conn, actions, infos[1], results, pending)
                        pending = []
                    results[i] = reader.run(action)
                if pending:
                    apply(conn, actions, infos[1], results, pending)
        except InvalidAction as exc:
            return _all_failed(actions, str(exc))
        except (sa_exc.SQLAlchemyError, UvctlError) as exc:
            if connect.is_disconnect(exc):
                raise BackendUnavailable(f"lost the connection to {mask_url(url)}: {connect.reason_of(exc)}") from None
            if isinstance(exc, UvctlError):
                raise
            db.forget_tables()
            needs = connect.is_missing_schema(exc)
            reason = connect.reason_of(exc)
            if needs:
                reason += "; run 'uvctl persistence status' to bootstrap the schema again"
            return _all_failed(actions, reason, NeedsBootstrap=True) if needs else _all_failed(actions, reason)
    return results


def _all_failed(actions: list, reason: str, **extra) -> list[dict]:
    message = f"batch rolled back: {mask_secrets(reason)}"
    return [failure(message, **extra) for _ in actions]


def bootstrap(backend, url: str) -> BootstrapResult:
    """Check the URL, reach the database, then run ``schema ensure`` on it."""
    try:
        db = connect.database(backend, url)
    except UvctlError as exc:
        return BootstrapResult("error", reason=str(exc))
    try:
        with db.connect() as conn:
            if conn.dialect.name == "sqlite":
                # WAL: one fsync per batch commit instead of a rollback journal's three or four,
                # and readers never block the flush. Persistent, so set once here.
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except BackendUnavailable as exc:
        return BootstrapResult("waiting-for-beacon", reason=str(exc))
    except sa_exc.SQLAlchemyError as exc:
        return BootstrapResult("error", reason=f"cannot prepare {mask_url(url)}: {connect.reason_of(exc)}")
    try:
        from ...schema import ensure_schema
    except ImportError:
        return BootstrapResult("error", reason="the schema service (uvctl.schema.ensure_schema) is not installed")
    try:
        report = ensure_schema(url)
    except UvctlError as exc:
        return BootstrapResult("error", reason=str(exc))
    except sa_exc.SQLAlchemyError as exc:
        return BootstrapResult("error", reason=f"schema ensure failed on {mask_url(url)}: {connect.reason_of(exc)}")
    finally:
        db.forget_tables()
    details = report.to_dict() if hasattr(report, "to_dict") else {}
    return BootstrapResult("bootstrapped", details=details)
