"""Bridge actions → meadow REST requests, executed in as few round trips as is safe.

Writes of one batch are folded per row (natural key): an upsert followed by updates of
the same work item becomes one row to create; rows to create go out through the bulk
create route (``POST <base>s``), rows to change through ``PUT <base>(s)`` with the
primary key in the body. Natural key → row ID is cached (``ids``), and keys missing
from the cache are looked up many at a time (``FBL~Col~INN~a,b``). Rows of different
keys are independent, so only the order *within* a key matters; a key that needs two
steps in one batch (update-then-upsert, remove-then-upsert) gets a second wave.

Every action gets one raw result (see :mod:`.normalize`). Once an answer shows the
backend lost readiness, nothing more is sent and the rest are marked ``Skipped``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from uvctl.actions import is_key_value
from uvctl.errors import UsageError
from uvctl.journal.filters import list_defaults  # the journal's list defaults, so reads agree
from uvctl.mesh import WorkError

from . import routes
from .normalize import bulk_row_error, column_types, is_unique_violation, needs_bootstrap

#: write action → (table, Settings key of its record or None, kind)
WRITES = {
    "QP_UpsertWorkItem": ("UVQueueWorkItem", "WorkItem", "upsert"),
    "MS_UpsertManifest": ("UVManifest", "Manifest", "upsert"),
    "QP_AppendEvent": ("UVQueueWorkItemEvent", "Event", "insert"),
    "QP_InsertAttempt": ("UVQueueWorkItemAttempt", "Attempt", "insert"),
    "QP_UpdateWorkItem": ("UVQueueWorkItem", None, "update"),
    "QP_UpdateAttemptOutcome": ("UVQueueWorkItemAttempt", None, "update"),
    "MS_RemoveManifest": ("UVManifest", None, "remove"),
}
#: Columns never sent: the server owns them, or sending them breaks the reply.
SERVER_OWNED = ("Deleted", "CreateDate", "UpdateDate")
#: Rows whose ID is worth caching (tables that get updates or removes).
CACHED_TABLES = ("UVQueueWorkItem", "UVQueueWorkItemAttempt", "UVManifest")
LIST_KEYS = {
    "UVQueueWorkItem": ("AssignedBeaconID", "RunID", "RunHash", "Capability", "OperationHash"),
    "UVManifest": ("OperationHash",),
}
MAX_IDS = 200_000
MAX_FILTER_CHARS = 3000


@dataclass
class Plan:
    """One row's share of a batch: what to write and which actions it answers."""

    kind: str
    table: str
    key: tuple
    body: dict
    indexes: list = field(default_factory=list)
    patch: dict = field(default_factory=dict)
    row_id: int | None = None
    result: dict | None = None
    first_result: dict | None = None


def project(table: str, record: dict) -> dict:
    """Only the writable UV columns of ``table``, as meadow can store them.

    No primary key, no server-owned columns; objects become JSON text, booleans 0/1;
    ``None`` becomes ``''`` for strings and is left out for numbers.
    """
    types = column_types()[table]
    out = {}
    for column, value in record.items():
        col_type = types.get(column)
        if col_type is None or col_type == "AutoIdentity" or column in SERVER_OWNED:
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif isinstance(value, bool):
            value = int(value)
        elif value is None:
            if col_type in ("Integer", "Boolean"):
                continue
            if col_type == "String":
                value = ""
        out[column] = value
    return out


def _natural_key(table: str, values: dict, action_name: str) -> tuple:
    key = []
    for column in routes.NATURAL_KEYS[table]:
        value = values.get(column)
        if value is None or value == "":
            raise UsageError(f"{action_name}: {column} is required")
        if not is_key_value(value):
            raise UsageError(f"{action_name}: {column} must be text, not {type(value).__name__}")
        routes.filter_value(value)  # refuses '~' before anything is sent
        key.append(int(value) if column == "AttemptNumber" else value)
    return tuple(key)


class Translator:
    """Runs batches of bridge actions against one meadow server through ``transport``."""

    def __init__(self, transport, bases: dict, ids: dict, *, page_size: int = 1000, bulk_size: int = 500):
        self.transport = transport
        self.bases = bases
        self.ids = ids
        self.page_size = page_size
        self.bulk_size = bulk_size
        self.broken: str | None = None

    # -- requests ---------------------------------------------------------------------

    def call(self, method: str, path: str, body=None) -> dict:
        """One request; a raw result. Sends nothing once the backend needs a bootstrap."""
        if self.broken:
            return {"Skipped": self.broken, "Method": method, "Path": path}
        text = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        try:
            answer = self.transport.request(method, path, text)
        except WorkError as exc:
            raw = {"WorkError": str(exc), "Method": method, "Path": path}
        else:
            raw = {"Status": answer.status, "Method": method, "Path": path}
            try:
                raw["Body"] = json.loads(answer.text) if answer.text else None
            except ValueError:
                raw["Body"] = None
            if raw["Body"] is None:
                raw["Text"] = answer.text[:200]
        self.broken = self.broken or needs_bootstrap(raw)
        return raw

    def base(self, table: str) -> str:
        return self.bases[table]

    def _cache(self, table: str, key: tuple, row_id) -> None:
        if table in CACHED_TABLES and row_id:
            if len(self.ids) >= MAX_IDS:
                self.ids.clear()
            self.ids[(table, key)] = int(row_id)

    # -- entry point --------------------------------------------------------------------

    def execute(self, actions) -> list[dict]:
        """One raw result per action, in order. Reads split the batch into write runs."""
        results: list = [None] * len(actions)
        run: list = []
        for index, action in enumerate(actions):
            if action.name in WRITES:
                run.append(index)
                continue
            self._write_run(actions, run, results)
            run = []
            results[index] = self._read(action)
        self._write_run(actions, run, results)
        return results

    # -- writes ---------------------------------------------------------------------------

    def _write_run(self, actions, indexes, results) -> None:
        if not indexes:
            return
        waves: list[list[Plan]] = []
        open_plans: dict = {}  # (table, key) → (wave number, Plan) still accepting patches
        for index in indexes:
            action = actions[index]
            table, record_key, kind = WRITES[action.name]
            settings = action.settings or {}
            try:
                if record_key:
                    record = settings.get(record_key)
                    if not isinstance(record, dict):
                        raise UsageError(f"{action.name}: Settings.{record_key} must be an object")
                    key = _natural_key(table, record, action.name)
                    body = project(table, record)
                elif kind == "remove":
                    key = _natural_key(table, {"Hash": settings.get("RunHash")}, action.name)
                    body = {}
                else:
                    key = _natural_key(table, settings, action.name)
                    patch = settings.get("Patch")
                    if not isinstance(patch, dict):
                        raise UsageError(f"{action.name}: Settings.Patch must be an object")
                    body = project(table, patch)
                    for column in routes.NATURAL_KEYS[table]:
                        body.pop(column, None)
            except UsageError as exc:
                results[index] = {"Refused": str(exc)}
                continue
            slot = (table, key)
            current = open_plans.get(slot)
            target = current[1] if current is not None else None
            if target is not None and _folds(target.kind, kind):
                target.body.update(body)
                if target.kind == "insert":
                    target.patch.update(body)
                target.indexes.append(index)
                continue
            wave = current[0] + 1 if current is not None else 0  # after the key's earlier plan
            plan = Plan(kind, table, key, body, [index])
            while len(waves) <= wave:
                waves.append([])
            waves[wave].append(plan)
            if table != "UVQueueWorkItemEvent":  # events never change: a repeat is AlreadyPresent
                open_plans[slot] = (wave, plan)
        for wave in waves:
            self._run_wave(wave)
            for plan in wave:
                for position, index in enumerate(plan.indexes):
                    if position == 0 and plan.first_result is not None:
                        results[index] = plan.first_result
                    else:
                        results[index] = plan.result or {"Skipped": self.broken or "not executed"}

    def _run_wave(self, plans: list[Plan]) -> None:
        puts, posts, unresolved = [], [], []
        for plan in plans:
            plan.row_id = self.ids.get((plan.table, plan.key))
            if plan.kind == "insert" or (plan.kind == "upsert" and plan.row_id is None):
                posts.append(plan)
            elif plan.row_id is None:
                unresolved.append(plan)
            elif plan.kind != "remove":
                puts.append(plan)
        self._resolve(unresolved, include_deleted=False)
        for plan in unresolved:
            if plan.result is not None:
                continue
            if plan.row_id is None:
                if plan.kind == "remove":
                    plan.result = {"AlreadyAbsent": True}
                else:
                    plan.result = {"NotFound": _not_found(plan)}
            elif plan.kind != "remove":
                puts.append(plan)
        conflicts = self._post(posts)
        self._settle_conflicts(conflicts, puts)
        self._put(puts)
        for plan in plans:
            if plan.kind == "remove" and plan.result is None:
                self._remove(plan)

    def _settle_conflicts(self, conflicts: list[Plan], puts: list[Plan]) -> None:
        """Rows that already exist: upserts become updates; inserts are AlreadyPresent."""
        upserts = [p for p in conflicts if p.kind == "upsert"]
        patched = [p for p in conflicts if p.kind == "insert" and p.patch]
        for plan in conflicts:
            if plan.kind == "insert":
                plan.first_result = plan.result
            plan.result = plan.result if plan.kind == "insert" and not plan.patch else None
        deleted = self._resolve(upserts + patched, include_deleted=True)
        for plan in upserts + patched:
            if plan.result is not None:
                continue
            if plan.row_id is None:
                plan.result = {"Failed": _not_found(plan) + " although the server reports it exists (a key "
                               "that differs only in case or collation?)"}
                continue
            if plan.kind == "insert":
                plan.body = plan.patch
            if (plan.table, plan.key) in deleted:
                answer = self.call("GET", f"{self.base(plan.table)}/Undelete/{plan.row_id}")
                if answer.get("Status") != 200:
                    plan.result = answer
                    continue
            puts.append(plan)

    def _send(self, method: str, plans: list[Plan], body_of):
        """Send each plan's row: one request per table chunk, the single-row route for one
        row and the bulk route (``<base>s``) for more. Yields ``(plan, raw result of its row)``."""
        for table, chunk in self._chunks(plans):
            base = self.base(table)
            if len(chunk) == 1:
                yield chunk[0], self.call(method, base, body_of(chunk[0]))
                continue
            raw = self.call(method, f"{base}s", [body_of(plan) for plan in chunk])
            rows = raw.get("Body")
            if raw.get("Status") != 200 or not isinstance(rows, list) or len(rows) != len(chunk):
                for plan in chunk:
                    yield plan, _bulk_failure(raw, len(chunk))
                continue
            for plan, row in zip(chunk, rows):
                yield plan, _row_raw(raw, row, routes.primary_key(table))

    def _post(self, plans: list[Plan]) -> list[Plan]:
        """Create rows; returns the plans whose row already existed (unique key)."""
        conflicts = []
        for plan, raw in self._send("POST", plans, lambda plan: plan.body):
            plan.result = raw  # a created row includes the patches folded into it
            row = raw.get("Body")
            if raw.get("Status") == 200 and isinstance(row, dict):
                self._cache(plan.table, plan.key, row.get(routes.primary_key(plan.table)))
            elif is_unique_violation(raw.get("Status"), row):
                conflicts.append(plan)
        return conflicts

    def _put(self, plans: list[Plan]) -> None:
        """Write the body of each plan onto its row (primary key in the body)."""
        todo = []
        for plan in plans:
            if plan.body:
                todo.append(plan)
            else:
                plan.result = {"Status": 200, "Body": {}, "Method": "PUT", "Path": "(nothing to change)"}
        stale = []
        for plan, raw in self._send("PUT", todo, lambda plan: {routes.primary_key(plan.table): plan.row_id, **plan.body}):
            plan.result = raw
            if _record_missing(raw):
                stale.append(plan)
        self._retry_stale(stale)

    def _retry_stale(self, plans: list[Plan]) -> None:
        """A cached ID that no longer answers: forget it, look the key up again, write once more."""
        for plan in plans:
            self.ids.pop((plan.table, plan.key), None)
            plan.row_id, plan.result = None, None
        deleted = self._resolve(plans, include_deleted=True)
        for plan in plans:
            if plan.result is not None:
                continue
            if plan.row_id is None:
                if plan.kind == "upsert":
                    plan.result = self.call("POST", self.base(plan.table), plan.body)
                    if plan.result.get("Status") == 200 and isinstance(plan.result.get("Body"), dict):
                        self._cache(plan.table, plan.key, plan.result["Body"].get(routes.primary_key(plan.table)))
                else:
                    plan.result = {"NotFound": _not_found(plan)}
                continue
            if (plan.table, plan.key) in deleted:
                self.call("GET", f"{self.base(plan.table)}/Undelete/{plan.row_id}")
            pk = routes.primary_key(plan.table)
            plan.result = self.call("PUT", self.base(plan.table), {pk: plan.row_id, **plan.body})

    def _remove(self, plan: Plan) -> None:
        row_id = plan.row_id or self.ids.get((plan.table, plan.key))
        if row_id is None:
            plan.result = {"AlreadyAbsent": True}
            return
        raw = self.call("DELETE", f"{self.base(plan.table)}/{row_id}")
        self.ids.pop((plan.table, plan.key), None)
        if _record_missing(raw):
            plan.result = {"AlreadyAbsent": True}
        else:
            plan.result = raw

    def _chunks(self, plans):
        by_table: dict = {}
        for plan in plans:
            by_table.setdefault(plan.table, []).append(plan)
        for table, items in by_table.items():
            for start in range(0, len(items), self.bulk_size):
                yield table, items[start : start + self.bulk_size]

    # -- lookups ------------------------------------------------------------------------

    def _resolve(self, plans: list[Plan], include_deleted: bool) -> set:
        """Fill ``row_id`` of each plan from the server; returns the keys found soft-deleted.

        A failed lookup becomes the plan's result.
        """
        wanted: dict = {}
        for plan in plans:
            wanted.setdefault(plan.table, {}).setdefault(plan.key, []).append(plan)
        deleted = set()
        for table, by_key in wanted.items():
            rows, error = self.fetch_keys(table, list(by_key), include_deleted)
            for key, key_plans in by_key.items():
                row = rows.get(key)
                for plan in key_plans:
                    if error is not None and row is None:
                        plan.result = error
                    elif row is not None:
                        plan.row_id = int(row[routes.primary_key(table)])
                        self._cache(table, key, plan.row_id)
                        if row.get("Deleted") not in (0, None, False, "0"):
                            deleted.add((table, key))
        return deleted

    def fetch_keys(self, table: str, keys: list, include_deleted: bool = False) -> tuple[dict, dict | None]:
        """``({natural key: row}, first failed raw or None)`` for the given natural keys."""
        base = self.base(table)
        column = routes.NATURAL_KEYS[table][0]
        extra = [routes.fbv("Deleted", 0, "GE")] if include_deleted else []
        found, error = {}, None
        # One key: its exact FBV terms (``~FBV~`` for the two-column attempt key). Many: one
        # FBL list filter per group on the first key column, matched here on the full key.
        singles = keys if len(keys) == 1 else [k for k in keys if "," in str(k[0])]
        firsts = [] if len(keys) == 1 else list(dict.fromkeys(k[0] for k in keys if "," not in str(k[0])))
        queries = [[routes.fbl(column, group)] for group in _filter_groups(firsts)]
        queries += [routes.key_terms(table, dict(zip(routes.NATURAL_KEYS[table], key))) for key in singles]
        for terms in queries:
            rows, raw = self.fetch_all(base, terms + extra + [routes.fsf(routes.primary_key(table))])
            error = error or raw
            self._collect(table, rows, found)
        return found, error

    @staticmethod
    def _collect(table: str, rows, found: dict) -> None:
        for row in rows:
            try:
                key = tuple(
                    int(row[c]) if c == "AttemptNumber" else row[c] for c in routes.NATURAL_KEYS[table]
                )
            except (KeyError, TypeError, ValueError):
                continue
            found.setdefault(key, row)

    def fetch_all(self, base: str, terms: list, limit: int | None = None) -> tuple[list, dict | None]:
        """Every row matching ``terms`` (up to ``limit``), paged explicitly; ``(rows, error raw)``."""
        rows: list = []
        begin = 0
        while limit is None or len(rows) < limit:
            cap = self.page_size if limit is None else min(self.page_size, limit - len(rows))
            raw = self.call("GET", routes.filtered_path(base, terms, begin, cap))
            page = raw.get("Body")
            if raw.get("Status") != 200 or not isinstance(page, list):
                if raw.get("Status") == 200:
                    raw = {**raw, "Body": None, "Text": raw.get("Text") or "not a JSON array"}
                return rows, raw
            rows.extend(page)
            if len(page) < cap:
                break
            begin += cap
        return rows, None

    # -- reads ----------------------------------------------------------------------------

    def _read(self, action) -> dict:
        settings = action.settings or {}
        try:
            if action.name in ("QP_GetWorkItemByHash", "MS_GetManifest"):
                table = "UVQueueWorkItem" if action.name == "QP_GetWorkItemByHash" else "UVManifest"
                value = settings.get("WorkItemHash" if table == "UVQueueWorkItem" else "RunHash")
                key = _natural_key(table, {routes.NATURAL_KEYS[table][0]: value}, action.name)
                return self._rows(table, routes.key_terms(table, dict(zip(routes.NATURAL_KEYS[table], key))), 1, key)
            if action.name == "QP_GetEvents":
                table = "UVQueueWorkItemEvent"
                value = settings.get("WorkItemHash")
                if not value:
                    raise UsageError("QP_GetEvents: WorkItemHash is required")
                terms = [routes.fbv("WorkItemHash", value), routes.fsf("Seq"), routes.fsf(routes.primary_key(table))]
                return self._rows(table, terms, _limit(settings.get("Limit"), 500))
            if action.name in ("QP_ListWorkItems", "MS_ListManifests"):
                table = "UVQueueWorkItem" if action.name == "QP_ListWorkItems" else "UVManifest"
                terms, limit = list_terms(table, settings.get("Filter") or {}, action.name)
                if terms is None:
                    return {"Status": 200, "Rows": []}
                return self._rows(table, terms, limit)
        except UsageError as exc:
            return {"Refused": str(exc)}
        return {"Refused": f"{action.name} is not a bridge action the meadowproxy backend knows"}

    def _rows(self, table: str, terms: list, limit: int, key=None) -> dict:
        rows, error = self.fetch_all(self.base(table), terms, limit)
        if error is not None:
            return error
        if key is not None and rows:
            self._cache(table, key, rows[0].get(routes.primary_key(table)))
        return {"Status": 200, "Rows": rows}


def _folds(current: str, incoming: str) -> bool:
    """Whether an ``incoming`` write can merge into the row plan of kind ``current``."""
    if incoming == "update":
        return current in ("upsert", "insert", "update")
    return incoming == "upsert" and current == "upsert"


def _not_found(plan: Plan) -> str:
    names = routes.NATURAL_KEYS[plan.table]
    where = ", ".join(f"{n}={v!r}" for n, v in zip(names, plan.key))
    return f"{plan.table} row with {where} not found on the backend (flush its creation first)"


def _record_missing(raw: dict) -> bool:
    """Meadow's own 404 for a row ID it does not have (not a missing route)."""
    return raw.get("Status") == 404 and isinstance(raw.get("Body"), dict) and "Error" in raw["Body"]


def _row_raw(raw: dict, row, pk: str) -> dict:
    """The raw result of one element of a bulk answer.

    A stored row carries its primary key; a failed one echoes the input plus an ``Error``
    object (not to be confused with the attempt table's own ``Error`` column).
    """
    base = {"Method": raw.get("Method"), "Path": raw.get("Path")}
    if not (isinstance(row, dict) and row.get(pk)):
        error = row.get("Error") if isinstance(row, dict) else None
        error = error or "the row was not stored (no error given)"
        status = error.get("StatusCode", 500) if isinstance(error, dict) else 500
        return {**base, "Status": status, "Body": {"Error": bulk_row_error(error)}}
    return {**base, "Status": 200, "Body": row}


def _bulk_failure(raw: dict, expected: int) -> dict:
    """The raw result for every row of a bulk request whose answer is not one row per input."""
    if raw.get("Status") != 200 or raw.get("Body") is None:
        return raw  # an HTTP error, a skipped request, or a body that is not JSON: judged as is
    return {**raw, "Status": 502, "Body": {"Error": f"bulk answer did not hold {expected} rows"}}


def _filter_groups(values: list):
    group, size = [], 0
    for value in values:
        length = len(routes.filter_value(value)) + 1
        if group and size + length > MAX_FILTER_CHARS:
            yield group
            group, size = [], 0
        group.append(value)
        size += length
    if group:
        yield group


def _limit(value, default: int) -> int:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise UsageError(f"Limit must be a whole number, got {value!r}") from None
    return max(1, min(5000, number)) if number else default


def list_terms(table: str, flt: dict, action_name: str):
    """Meadow filter terms and the row limit for a list Filter; ``(None, 0)`` when nothing can match."""
    if not isinstance(flt, dict):
        raise UsageError(f"{action_name}: Filter must be an object")
    default_limit, default_order = list_defaults(table)
    allowed = ("Status", "Limit", "OrderBy", *LIST_KEYS[table])
    unknown = sorted(set(flt) - set(allowed))
    if unknown:
        raise UsageError(f"{action_name}: unknown filter key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    terms = []
    status = flt.get("Status")
    if status is not None:
        values = list(status) if isinstance(status, (list, tuple)) else [status]
        if not values:
            return None, 0
        if len(values) == 1:
            terms.append(routes.fbv("Status", values[0]))
        elif any("," in str(v) for v in values):
            # Meadow's list filter splits on ','; an OR group must be parenthesised, or the
            # automatic "Deleted = 0" would only bind to its last term.
            ors = [routes.fbv("Status", values[0])] + [
                routes.fbv("Status", v).replace("FBV~", "FBVOR~", 1) for v in values[1:]
            ]
            terms += ["FOP~0~(~0", *ors, "FCP~0~)~0"]
        else:
            terms.append(routes.fbl("Status", values))
    for column in LIST_KEYS[table]:
        if flt.get(column) is not None:
            terms.append(routes.fbv(column, flt[column]))
    types = column_types()[table]
    for term in str(flt.get("OrderBy") or default_order).split(","):
        words = term.split()
        if not words:
            continue
        column = words[0].lstrip("+-")
        if column not in types:
            raise UsageError(f"{action_name}: cannot order by {column!r}: not a column of {table}")
        descending = words[0].startswith("-") or (len(words) > 1 and words[1].upper().startswith("DESC"))
        terms.append(routes.fsf(column, descending))
    terms.append(routes.fsf(routes.primary_key(table)))
    return terms, _limit(flt.get("Limit"), default_limit)
