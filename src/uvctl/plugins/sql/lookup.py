"""``uvctl_lookup`` of the sql backend: a natural key → the row's ID (soft-deleted rows count as absent)."""

from __future__ import annotations

import sqlalchemy as sa

from . import connect
from .read import identity_column, not_deleted


def lookup(backend, url: str, table: str, key: dict):
    """The ``ID<table>`` of the row whose natural key is ``key``, or None."""
    db = connect.database(backend, url)
    with db.connect() as conn:
        tables = db.uv_tables(conn)
        if table not in tables:
            return None
        target = tables[table]
        where = [target.c[name] == value for name, value in key.items() if name in target.c]
        if len(where) != len(key) or not where:
            return None
        stmt = sa.select(identity_column(target)).where(not_deleted(target), *where).limit(1)
        return conn.execute(stmt).scalar()
