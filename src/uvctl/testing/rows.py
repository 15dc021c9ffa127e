"""Every row of the four UV tables, typed alike, from a database or from the journal.

Both sides come out in the same shape, ``{table: [row, ...]}`` with each row a dict of the
UV columns the journal keeps (``Deleted`` included), values typed the same way (booleans,
integers, floats, text) and rows sorted by natural key. So a target database can be
compared with the journal row for row: ``database_rows(url) == journal_rows(journal)``.
The flush tests and the reliability trials both use it.
"""

from __future__ import annotations

TABLES = ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest")


def typed(kind: str, value):
    """``value`` as the Python type of a descriptor column ``kind`` (None stays None)."""
    if value is None:
        return None
    if kind in ("Boolean", "Deleted"):
        return bool(int(value)) if isinstance(value, str) else bool(value)  # "0" from a text column
    if kind == "Integer":
        return int(value)
    if kind == "Float":
        return float(value)
    return str(value)


def _typed_rows(spec, rows) -> list[dict]:
    out = [{c: typed(spec.types[c], row[c]) for c in spec.columns} for row in rows]
    return sorted(out, key=lambda r: tuple(r[k] for k in spec.key))


def database_rows(url: str, tables=TABLES) -> dict:
    """``{table: [typed row]}`` of every UV table in the database at ``url``."""
    import sqlalchemy as sa

    from uvctl.journal.columns import table

    engine = sa.create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            metadata = sa.MetaData()
            metadata.reflect(bind=conn, only=list(tables))
            for name in tables:
                spec, tbl = table(name), metadata.tables[name]
                for column in tbl.columns:
                    if isinstance(column.type, sa.Float):
                        column.type.asdecimal = False
                out[name] = _typed_rows(spec, conn.execute(sa.select(*[tbl.c[c] for c in spec.columns])).mappings())
    finally:
        engine.dispose()
    return out


def journal_rows(journal, tables=TABLES) -> dict:
    """The journal's current state in the shape of :func:`database_rows`."""
    from uvctl.journal.columns import table

    return {name: _typed_rows(table(name), journal.all_rows(name)) for name in tables}
