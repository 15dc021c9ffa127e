"""PostgreSQL's bulk path: COPY the rows into a temporary staging table, then one INSERT ... SELECT.

An executemany costs the server one Bind/Execute per row and the client one encoded message
per row; COPY streams the rows in one command and the INSERT ... SELECT applies them in one
statement, with the same ON CONFLICT clause, casts and timestamps as the single-row INSERT
(measured in ``benchmarks/bench_flush_throughput.py``). The staging table is a temporary table
of the target's own column types, emptied after each use and at commit, so it never holds
rows across transactions.
"""

from __future__ import annotations

import re
import zlib

import sqlalchemy as sa

from ... import multirow

#: Below this many rows one executemany is cheaper than COPY's extra statements.
MIN_ROWS = 100
_TARGET = re.compile(r"INSERT INTO (\S+) ")


def staged_insert(conn, stmt, sql: str, rows: list) -> int:
    """Run the single-row INSERT ``sql`` (pyformat binds named after the columns of
    ``stmt.table``) for every row dict of ``rows``; the rows it changed.

    Runs in a savepoint: should COPY refuse a value that the plain INSERT's casts would have
    taken, the savepoint is rolled back and the rows go through executemany as before.
    """
    insert_head, row_sql, insert_tail = multirow.split_values(sql)
    names = multirow.PYFORMAT_BIND.findall(row_sql)
    target = _TARGET.match(insert_head)
    if target is None or len(set(names)) != len(names):
        return executemany(conn, sql, rows)
    target_table = target.group(1)
    stage_columns = ", ".join(f'"{name}"' for name in names)
    stage = f'"uvctl_stage_{zlib.crc32(f"{target_table} {stage_columns}".encode()):08x}"'
    select_list = multirow.PYFORMAT_BIND.sub(lambda m: f'"{m.group(1)}"', row_sql[1:-1])
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                             f"SELECT {stage_columns} FROM {target_table} WITH NO DATA")
        _copy(conn, f"COPY {stage} ({stage_columns}) FROM STDIN", rows, names, stmt.table)
        changed = conn.exec_driver_sql(f"{insert_head} SELECT {select_list} FROM {stage}{insert_tail}").rowcount
        conn.exec_driver_sql(f"TRUNCATE {stage}")
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        savepoint.rollback()
        return executemany(conn, sql, rows)
    savepoint.commit()
    return changed


def executemany(conn, sql: str, rows: list) -> int:
    """The plain path: ``sql`` once per row, as the driver's executemany; the rows changed."""
    return conn.exec_driver_sql(sql, rows).rowcount


def _copy(conn, copy_sql: str, rows: list, names: list, table) -> None:
    """Stream ``rows`` (dicts) into the staging table, in the column order of ``names``."""
    pick = multirow.tuple_getter(names)
    # COPY parses text by the column's type: a Python bool prints as 't', which an integer
    # column (Deleted) refuses where the INSERT's bool::INTEGER cast took it.
    integers = [i for i, name in enumerate(names)
                if isinstance(table.c[name].type, sa.Integer) and not isinstance(table.c[name].type, sa.Boolean)]
    dbapi_conn = conn.connection.dbapi_connection
    try:
        with dbapi_conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            write = copy.write_row
            for row in rows:
                values = pick(row)
                for i in integers:
                    if values[i].__class__ is bool:
                        values = _bools_as_ints(values, integers)
                        break
                write(values)
    except conn.dialect.loaded_dbapi.Error as exc:  # raised as SQLAlchemy raises it from an execute
        raise sa.exc.DBAPIError.instance(
            copy_sql, None, exc, conn.dialect.loaded_dbapi.Error,
            connection_invalidated=conn.dialect.is_disconnect(exc, dbapi_conn, None), dialect=conn.dialect) from exc


def _bools_as_ints(values: tuple, integers: list) -> list:
    values = list(values)
    for i in integers:
        if values[i].__class__ is bool:
            values[i] = int(values[i])
    return values
