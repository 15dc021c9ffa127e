"""Is a database error a unique-key violation, and on which columns?

A backend that replays a record may be told it is already stored: that is a success
(``AlreadyPresent``) only when the error really is a unique violation of the record's natural
key. Other constraint errors (NOT NULL, FOREIGN KEY, CHECK) share words with it
(``SQLITE_CONSTRAINT``, "constraint failed") and must stay failures, or the record would be
counted as delivered while nothing was stored (upstream bug W-1).
"""

from __future__ import annotations

import re

#: Lower-case phrases of a unique violation, per engine (reference: databeacon.md, meadow-rest.md).
_PHRASES = (
    "unique constraint failed",  # SQLite
    "sqlite_constraint_unique",
    "sqlite_constraint_primarykey",
    "duplicate key value violates unique constraint",  # PostgreSQL
    "duplicate entry",  # MySQL / MariaDB
    "er_dup_entry",
    "cannot insert duplicate key",  # MSSQL 2601
    "violation of unique key constraint",  # MSSQL 2627
    "violation of primary key constraint",
)
#: Driver error numbers of a unique violation: SQLite extended codes (UNIQUE, PRIMARYKEY),
#: MySQL ER_DUP_ENTRY, PostgreSQL SQLSTATE, MSSQL.
UNIQUE_CODES = frozenset({2067, 1555, 1062, 2601, 2627, "2067", "1555", "1062", "23505", "2601", "2627"})
#: Lower-case words of the other constraint errors, whatever value their message echoes.
_OTHER_CONSTRAINTS = ("not null", "not-null", "notnull", "foreign key", "check constraint")
_MYSQL_KEY = re.compile(r"for key '(?:[^'.]*\.)?([^']*)'", re.IGNORECASE)
_SQLITE_COLUMNS = re.compile(r"unique constraint failed:\s*([^\n]+)", re.IGNORECASE)
_POSTGRES_COLUMNS = re.compile(r"key \(([^)]*)\)=", re.IGNORECASE)
_QUALIFIED = re.compile(r"\w+\.(\w+)")  # Table.Column


def is_unique_violation(text: str, codes=()) -> bool:
    """True when ``text`` (an error message) or one of ``codes`` says a unique key was violated."""
    if any(code in UNIQUE_CODES for code in codes if isinstance(code, (int, str))):
        return True
    lowered = (text or "").lower()
    if any(other in lowered for other in _OTHER_CONSTRAINTS):  # its detail may echo any value
        return False
    return any(phrase in lowered for phrase in _PHRASES)


def violated_columns(text: str) -> set | None:
    """The columns a unique-violation message names (SQLite's ``T.C, T.D``, PostgreSQL's
    ``Key ("C")=``), or None when it names none (MySQL and MSSQL name an index instead)."""
    found = _SQLITE_COLUMNS.search(text or "")
    if found:
        return set(_QUALIFIED.findall(found.group(1))) or None
    found = _POSTGRES_COLUMNS.search(text or "")
    if found:
        return {part.strip().strip('"') for part in found.group(1).split(",") if part.strip()}
    return None


def is_key_conflict(text: str, key_columns, codes=()) -> bool:
    """True when ``text`` reports a unique violation that may be on ``key_columns``: it is a
    unique violation, and when it names columns they are exactly the natural key."""
    if not is_unique_violation(text, codes):
        return False
    named = violated_columns(text)
    if named is None:
        index = _MYSQL_KEY.search(text or "")
        return not (index and index.group(1).upper() == "PRIMARY")  # the row ID, not a natural key
    return named == set(key_columns)
