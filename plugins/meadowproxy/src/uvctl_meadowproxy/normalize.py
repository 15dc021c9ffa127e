"""Raw meadow answers → Ultravisor's bridge envelopes, and the readiness checks.

A raw result (what ``uvctl_dispatch`` returns per action) is a dict with some of:
``Status`` (HTTP status), ``Body`` (parsed JSON, None when the text was not JSON),
``Text`` (the start of a non-JSON body), ``Rows`` (a read's rows), ``Method``/``Path``,
``Refused`` (refused before sending), ``Failed`` (a failure found by the client),
``WorkError`` (the beacon's error message), ``NotFound`` (an update of a row the server
does not have), ``AlreadyAbsent``, ``Skipped`` (not sent: the backend needs a bootstrap).
"""

from __future__ import annotations

import json
from functools import lru_cache

from uvctl import conflicts
from uvctl.actions import APPEND_ONLY, APPEND_ONLY_KEYS, envelope, failure

#: Beacon-side refusals and states after which the databeacon must be bootstrapped again.
REBOOTSTRAP_WORDS = (
    "path is not in the allowlist",
    "connection is not live",
    "introspected table not found",
    "endpoint not enabled",
    "re-registered",
)

READ_KEYS = {
    "QP_GetWorkItemByHash": ("UVQueueWorkItem", "WorkItem"),
    "MS_GetManifest": ("UVManifest", "Manifest"),
    "QP_ListWorkItems": ("UVQueueWorkItem", "WorkItems"),
    "QP_GetEvents": ("UVQueueWorkItemEvent", "Events"),
    "MS_ListManifests": ("UVManifest", "Manifests"),
}
SINGLE_READS = ("QP_GetWorkItemByHash", "MS_GetManifest")


def error_text(body) -> str:
    """The message of a meadow or restify error body (never its stack trace)."""
    if isinstance(body, dict):
        for key in ("Error", "error", "message", "Message", "code", "Code"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value.splitlines()[0]
            if isinstance(value, dict) and value:
                return bulk_row_error(value)
        return ""
    if isinstance(body, str):
        return body.splitlines()[0] if body else ""
    return ""


def bulk_row_error(error) -> str:
    """Readable text for the ``Error`` of one row of a bulk answer (meadow drops the message)."""
    if isinstance(error, str):
        return error
    if not isinstance(error, dict):
        return str(error)
    codes = {error.get(k) for k in ("code", "errcode", "errno", "Code")}
    text = json.dumps(error, sort_keys=True)
    if conflicts.is_unique_violation("", codes):
        return f"unique constraint failed ({text})"
    return text


def is_unique_violation(status, body, key_columns=None) -> bool:
    """409, or 400/500 whose error is a unique-key violation (not NOT NULL, FOREIGN KEY, ...);
    with ``key_columns``, one that names other columns does not count."""
    if status == 409:
        return True
    if status not in (400, 500):
        return False
    text = error_text(body)
    if not text and isinstance(body, dict):
        text = str(body.get("Stack") or "")
    codes = [body.get(k) for k in ("code", "errcode", "errno", "Code")] if isinstance(body, dict) else []
    if key_columns is None:
        return conflicts.is_unique_violation(text, codes)
    return conflicts.is_key_conflict(text, key_columns, codes)


def needs_bootstrap(raw: dict) -> str | None:
    """Why this answer shows the backend lost readiness, or None."""
    if raw.get("Skipped"):
        return raw["Skipped"]
    work_error = raw.get("WorkError")
    if work_error:
        return work_error if any(w in work_error.lower() for w in REBOOTSTRAP_WORDS) else None
    status = raw.get("Status")
    if status is None or "Rows" in raw:
        return None
    where = f"{raw.get('Method', '')} {raw.get('Path', '')}".strip()
    if 200 <= status < 300 and raw.get("Body") is None:
        return f"{where} answered {status} with a body that is not JSON ({raw.get('Text', '')[:60]!r})"
    if status == 404 and not (isinstance(raw.get("Body"), dict) and "Error" in raw["Body"]):
        return f"{where} answered 404: the table is not served there (route missing)"
    return None


def reason_of(raw: dict) -> str:
    """One line saying what went wrong with this request."""
    for key in ("Refused", "Failed", "NotFound", "WorkError", "Skipped"):
        if raw.get(key):
            return str(raw[key])
    where = f"{raw.get('Method', '')} {raw.get('Path', '')}".strip()
    text = error_text(raw.get("Body")) or raw.get("Text", "")[:120] or "no error message"
    return f"meadow answered {raw.get('Status')} to {where}: {text}"


@lru_cache(maxsize=None)
def column_types() -> dict:
    """``{table: {column: descriptor Type}}`` of the UV tables."""
    from uvctl.schema import table_columns

    return {table: {c["Column"]: c["Type"] for c in cols} for table, cols in table_columns().items()}


def row_shape(table: str, row: dict) -> dict:
    """A meadow row as uvctl returns rows from every backend: UV columns, typed values.

    The backend-stamped ID, CreateDate and UpdateDate are left out; booleans are bools.
    """
    types = column_types().get(table, {})
    out = {}
    for column, col_type in types.items():
        if col_type in ("AutoIdentity", "CreateDate", "UpdateDate"):
            continue
        value = row.get(column)
        if col_type in ("Boolean", "Deleted"):
            value = bool(value) if value not in (None, "") else False
        elif col_type == "Integer" and isinstance(value, (str, float)) and value != "":
            try:
                value = int(float(value))
            except ValueError:
                pass
        out[column] = value
    return out


def to_envelope(action, raw: dict) -> dict:
    """Ultravisor's envelope for one action's raw result (see the module docstring)."""
    name = action.name
    broken = needs_bootstrap(raw)
    if broken:
        return failure(f"the backend needs a bootstrap: {broken}", NeedsBootstrap=True)
    if raw.get("NotFound"):
        # The journal keeps updates of rows it never saw created; failing them would stop
        # every later flush at that record, so they succeed and change nothing.
        return envelope(True, NotFound=True)
    if raw.get("Refused") or raw.get("Failed") or raw.get("WorkError"):
        return failure(reason_of(raw))
    if raw.get("AlreadyAbsent"):
        return envelope(True, AlreadyAbsent=True)
    status = raw.get("Status")
    if status is None:
        return failure("no answer was recorded for this action")
    ok = 200 <= status < 300
    if not ok and name in APPEND_ONLY and is_unique_violation(status, raw.get("Body"), APPEND_ONLY_KEYS[name]):
        return envelope(True, AlreadyPresent=True)
    if name in READ_KEYS:
        table, key = READ_KEYS[name]
        if not ok:
            return failure(reason_of(raw), **{key: None if name in SINGLE_READS else []})
        rows = [row_shape(table, row) for row in raw.get("Rows", []) if isinstance(row, dict)]
        if name in SINGLE_READS:
            return envelope(bool(rows), **{key: rows[0] if rows else None})
        return envelope(True, **{key: rows})
    if not ok:
        return failure(reason_of(raw))
    return envelope(True)
