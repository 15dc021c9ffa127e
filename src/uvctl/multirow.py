"""Multi-row ``INSERT ... VALUES (..), (..), ...``: how uvctl inserts many rows into SQLite and
MySQL/MariaDB.

SQLite runs one statement of a few hundred rows about a quarter faster than executemany of
the same single-row statement (one statement step instead of one per row); MySQL/MariaDB
drivers send an executemany whose VALUES hold anything but placeholders (the server's
CURRENT_TIMESTAMP) as one round trip per row, and a multi-row statement as one (measured in
``benchmarks/bench_flush_throughput.py``). The journal and the sql backend both use it.
"""

from __future__ import annotations

import re
import sqlite3
from itertools import chain
from operator import itemgetter

#: Rows per statement, unless the statement's variable limit allows fewer.
ROWS_PER_STATEMENT = 500
#: A named bind in the ``pyformat`` paramstyle (psycopg, PyMySQL): ``%(name)s``.
PYFORMAT_BIND = re.compile(r"%\((\w+)\)s")


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


def positional(sql: str) -> tuple[str, list]:
    """``sql`` in the ``pyformat`` paramstyle → (the same with ``%s`` binds, the bind names in order)."""
    return PYFORMAT_BIND.sub("%s", sql), PYFORMAT_BIND.findall(sql)


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


def statements(sql: str, rows: list, variable_limit: int, max_chars: int | None = None):
    """``(statement, flat parameters)`` pairs that insert ``rows`` (tuples, in the order of
    the placeholders of the single-row ``sql``), in order, each within ``variable_limit``
    variables and, given ``max_chars``, holding at most that many characters of text values
    (a row longer than that goes alone)."""
    if not rows:
        return
    head, row_sql, tail = split_values(sql)
    per = max(1, min(ROWS_PER_STATEMENT, variable_limit // max(1, len(rows[0]))))
    texts: dict = {}  # rows per statement -> its text: the same text each time keeps it in the driver's cache
    for chunk in (_chunks(rows, per) if max_chars is None else _sized_chunks(rows, per, max_chars)):
        text = texts.get(len(chunk))
        if text is None:
            text = texts[len(chunk)] = f"{head} VALUES {', '.join([row_sql] * len(chunk))}{tail}"
        yield text, tuple(chain.from_iterable(chunk))


def _chunks(rows: list, per: int):
    for start in range(0, len(rows), per):
        yield rows[start:start + per]


def _sized_chunks(rows: list, per: int, max_chars: int):
    """Runs of at most ``per`` rows whose text values add up to at most ``max_chars``."""
    start, size = 0, 0
    for end, row in enumerate(rows):
        width = sum(len(v) for v in row if v.__class__ is str)
        if end > start and (end - start == per or size + width > max_chars):
            yield rows[start:end]
            start, size = end, 0
        size += width
    yield rows[start:]
