"""Multi-row ``INSERT ... VALUES (..), (..), ...``: how uvctl inserts many rows into SQLite.

SQLite runs one statement of a few hundred rows about a quarter faster than executemany of
the same single-row statement (one statement step instead of one per row; measured in
``benchmarks/bench_flush_throughput.py``). The journal and the sql backend both use it.
"""

from __future__ import annotations

import sqlite3
from itertools import chain
from operator import itemgetter

#: Rows per statement, unless the statement's variable limit allows fewer.
ROWS_PER_STATEMENT = 500


def variable_limit(connection) -> int:
    """How many ``?`` one statement on the DB-API ``connection`` may hold (999 before
    SQLite 3.32, 32766 since); 999 for a driver other than the sqlite3 module."""
    try:
        return connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:
        return 999


def tuple_getter(keys: list):
    """``row -> (row[k] for k in keys)`` as a tuple, also for a single key (``itemgetter`` of
    one key would return the bare value)."""
    if len(keys) > 1:
        return itemgetter(*keys)
    only = keys[0]
    return lambda row: (row[only],)


def split_values(sql: str) -> tuple[str, str, str]:
    """``INSERT ... VALUES (<row>) <rest>`` → (``INSERT ...``, ``(<row>)``, `` <rest>``)."""
    head, _, rest = sql.partition(" VALUES (")
    depth = 1
    for end, char in enumerate(rest):
        depth += char == "("
        depth -= char == ")"
        if depth == 0:
            return head, "(" + rest[:end + 1], rest[end + 1:]
    raise ValueError(f"no VALUES row in {sql[:80]!r}")


def statements(sql: str, rows: list, variable_limit: int):
    """``(statement, flat parameters)`` pairs that insert ``rows`` (tuples, in the order of
    the ``?`` of the single-row ``sql``), in order, each within ``variable_limit`` variables."""
    if not rows:
        return
    head, row_sql, tail = split_values(sql)
    per = max(1, min(ROWS_PER_STATEMENT, variable_limit // max(1, len(rows[0]))))
    full = None
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        if len(chunk) == per:
            full = full or f"{head} VALUES {', '.join([row_sql] * per)}{tail}"
            text = full  # the same text each time: the driver's statement cache keeps it prepared
        else:
            text = f"{head} VALUES {', '.join([row_sql] * len(chunk))}{tail}"
        yield text, tuple(chain.from_iterable(chunk))
