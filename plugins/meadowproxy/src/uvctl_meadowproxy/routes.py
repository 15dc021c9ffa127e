"""Meadow REST paths: route hashes, endpoint bases, percent-encoding and filter terms.

A databeacon serves each enabled table at ``/1.0/<routeHash>/<Table>``, where the route
hash is the connection name run through meadow-connection-manager's sanitizer. List
routes append ``s`` to the base. Filters are ``INSTR~Field~Op~Value`` groups joined
with ``~``; the server percent-decodes the path once *before* splitting on ``~``, so a
value containing ``~`` can never be filtered and is refused here.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from uvctl.errors import UsageError

#: Natural key columns and the primary key column of each UV table.
NATURAL_KEYS = {
    "UVQueueWorkItem": ("WorkItemHash",),
    "UVQueueWorkItemEvent": ("EventGUID",),
    "UVQueueWorkItemAttempt": ("WorkItemHash", "AttemptNumber"),
    "UVManifest": ("Hash",),
}
QUEUE_TABLES = ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt")
MANIFEST_TABLES = ("UVManifest",)
ALL_TABLES = QUEUE_TABLES + MANIFEST_TABLES

#: What a sanitized connection name (or a ``conn-<ID>`` fallback) looks like.
ROUTE_HASH_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_MAX_HASH = 64


def primary_key(table: str) -> str:
    """``ID<Table>``: meadow's default identifier for the UV tables."""
    return f"ID{table}"


def sanitize_connection_name(name) -> str:
    """The databeacon's route hash for a connection name.

    NFKD, drop combining marks, lowercase, runs of anything outside ``[a-z0-9]`` become
    one ``-``, trim ``-``, truncate to 64 (after the trim, so it may end in ``-``).
    Raises ValueError for a non-string, empty, or all-symbol name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("connection name must be a non-empty string")
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not 0x300 <= ord(ch) <= 0x36F)
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:_MAX_HASH]
    if not text:
        raise ValueError(f"connection name {name!r} has no letters or digits")
    return text


def route_hash_for(name, connection_id) -> str:
    """The route hash a databeacon uses for connection ``connection_id`` called ``name``.

    ``conn-<ID>`` when the sanitizer refuses the name; ``""`` (unprefixed routes)
    when the connection has no name at all.
    """
    if not name:
        return ""
    try:
        return sanitize_connection_name(name)
    except ValueError:
        return f"conn-{connection_id}"


def route_hash_clashes(rows, connection, hash_: str | None = None) -> list[dict]:
    """The other connections of ``rows`` (a databeacon's ListConnections) sharing ``connection``'s route hash.

    ``hash_`` defaults to the hash of ``connection``'s own row. A databeacon serves such
    connections under one route and answers one's requests from the other's database while
    reporting success (databeacon-live.md §7).
    """
    if hash_ is None:
        mine = [row for row in rows if str(row.get("IDBeaconConnection")) == str(connection)]
        if not mine:
            return []
        hash_ = route_hash_for(mine[0].get("Name"), connection)
    return [row for row in rows if str(row.get("IDBeaconConnection")) != str(connection)
            and route_hash_for(row.get("Name"), row.get("IDBeaconConnection")) == hash_]


def check_route_hash(value: str) -> str:
    """``value`` when it is a valid route hash, else a UsageError suggesting the fix."""
    if value == "" or ROUTE_HASH_RE.match(value):
        return value
    try:
        hint = f"; did you mean {sanitize_connection_name(value)!r}?"
    except ValueError:
        hint = ""
    raise UsageError(
        f"--route-hash {value!r} is not a route hash: use the sanitized connection name "
        f"(lowercase letters, digits and '-', at most 64){hint}"
    )


def endpoint_base(route_hash: str, table: str) -> str:
    """``/1.0/<routeHash>/<Table>``, or ``/1.0/<Table>`` for an empty route hash."""
    return f"/1.0/{route_hash}/{table}" if route_hash else f"/1.0/{table}"


def bases_for(route_hash: str, tables=ALL_TABLES) -> dict[str, str]:
    """``{table: endpoint base}`` for ``tables`` under ``route_hash``."""
    return {table: endpoint_base(route_hash, table) for table in tables}


def filter_value(value) -> str:
    """A filter value as its percent-encoded path text; refuses ``~``.

    Booleans become ``1``/``0`` (meadow stores them so); ``None`` cannot be compared.
    """
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif value is None:
        raise UsageError("cannot filter on a null value through meadow REST; give a value")
    else:
        text = str(value)
    if "~" in text:
        raise UsageError(
            f"value {text!r} contains '~', which meadow's filter syntax cannot express "
            f"(the server splits filters on '~' after decoding); remove '~' from the key"
        )
    return quote(text, safe="")


def fbv(column: str, value, op: str = "EQ") -> str:
    """``FBV~Col~Op~<value>``: AND the column compared with a value."""
    return f"FBV~{column}~{op}~{filter_value(value)}"


def fbl(column: str, values, op: str = "INN") -> str:
    """``FBL~Col~INN~a,b,c``: the column in a list; values may not contain ``,``."""
    texts = []
    for value in values:
        text = filter_value(value)
        if "%2C" in text:
            raise UsageError(f"value {value!r} contains ',', which a meadow list filter cannot express")
        texts.append(text)
    return f"FBL~{column}~{op}~{','.join(texts)}"


def fsf(column: str, descending: bool = False) -> str:
    """``FSF~Col~ASC|DESC~0``: a sort term."""
    return f"FSF~{column}~{'DESC' if descending else 'ASC'}~0"


def key_terms(table: str, key: dict) -> list[str]:
    """The FBV terms selecting the row of ``table`` with natural ``key``."""
    return [fbv(column, key[column]) for column in NATURAL_KEYS[table]]


def filtered_path(base: str, terms: list[str], begin: int | None = None, cap: int | None = None) -> str:
    """``<base>s/FilteredTo/<terms>[/<begin>/<cap>]``."""
    path = f"{base}s/FilteredTo/{'~'.join(terms)}"
    if cap is not None:
        path += f"/{int(begin or 0)}/{int(cap)}"
    return path


def count_path(base: str) -> str:
    """``<base>s/Count``: the row count of a table, used to verify it is served."""
    return f"{base}s/Count"


def allowlist_pattern(route_hash: str, tables=ALL_TABLES) -> str:
    """A MeadowProxy allowlist regex (JavaScript syntax) for only these tables and hash."""
    # Route hashes and table names hold only [A-Za-z0-9-]: nothing to escape, and no
    # escapes that a JavaScript RegExp would read differently.
    check_route_hash(route_hash)
    names = "|".join(tables)
    prefix = f"{route_hash}/" if route_hash else ""
    return rf"^/?1\.0/{prefix}({names})s?(/|$)"
