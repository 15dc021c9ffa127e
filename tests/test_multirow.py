"""Multi-row INSERT statements (uvctl.multirow) run on a real SQLite database."""

from __future__ import annotations

import sqlite3

import pytest

from uvctl import multirow

SQL = ("INSERT INTO t (a, b, stamp, c) VALUES (?, ?, strftime('%Y', 'now', ?), ?) "
       "ON CONFLICT (a) DO UPDATE SET b = excluded.b")


@pytest.mark.parametrize(("count", "limit"), [(1, 999), (7, 8), (1001, 999), (1500, 32766)])
def test_statements_insert_every_row_in_order_within_the_variable_limit(count, limit):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, a TEXT UNIQUE, b INTEGER, stamp TEXT, c TEXT)")
    rows = [(f"k{i}", i, "+0 days", f"c({i})") for i in range(count)]
    pairs = list(multirow.statements(SQL, rows, limit))
    assert all(len(flat) <= limit and sql.endswith(" ON CONFLICT (a) DO UPDATE SET b = excluded.b") for sql, flat in pairs)
    assert sum(len(flat) for _, flat in pairs) == 4 * count
    for sql, flat in pairs:
        conn.execute(sql, flat)
    got = conn.execute("SELECT a, b, c, length(stamp) FROM t ORDER BY n").fetchall()
    assert got == [(f"k{i}", i, f"c({i})", 4) for i in range(count)]


def test_a_statement_without_values_is_refused():
    with pytest.raises(ValueError, match="no VALUES row"):
        list(multirow.statements("INSERT INTO t SELECT 1", [(1,)], 999))


def test_variable_limit_reads_the_connection_and_falls_back_to_sqlites_oldest():
    assert multirow.variable_limit(sqlite3.connect(":memory:")) >= 999
    assert multirow.variable_limit(object()) == 999  # a driver without getlimit


def test_a_text_budget_splits_statements_and_a_longer_row_goes_alone():
    rows = [("a" * 10, 1), ("b" * 10, 2), ("c" * 50, 3), ("d" * 10, None), ("e" * 5, 5)]
    pairs = list(multirow.statements("INSERT INTO t (a, b) VALUES (%s, %s)", rows, 65535, max_chars=25))
    assert [len(flat) // 2 for _, flat in pairs] == [2, 1, 2]
    assert [flat for _, flat in pairs][1] == ("c" * 50, 3)
    assert sum((flat for _, flat in pairs), ()) == tuple(v for row in rows for v in row)


def test_positional_turns_named_pyformat_binds_into_ordered_ones():
    assert multirow.positional("INSERT INTO t (a, b) VALUES (%(a)s, %(b)s) ON DUPLICATE KEY UPDATE b = 100%%") == (
        "INSERT INTO t (a, b) VALUES (%s, %s) ON DUPLICATE KEY UPDATE b = 100%%", ["a", "b"])
