"""Batched writes of the sql backend: a batch of journal actions → a few executemany statements.

The batch is planned before anything runs:

* every write action touches one row of one UV table, named by its natural key;
* per key, consecutive actions fold into one *step* when the result is provably the same:
  upsert+upsert, upsert+update and update+update merge their columns (later values win),
  and a second insert of a key already inserted in this batch is simply AlreadyPresent;
* the n-th step of every key lands on *level* n. Steps of one level touch distinct keys, so
  they commute, and steps of one level with the same kind and column set share one
  executemany statement. Levels run in order, which keeps every key's order intact.

Rows of different tables never interact (no foreign keys), so levels are per key, not global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from ... import multirow
from ...actions import envelope, is_key_value
from . import staging
from .connect import descriptor_tables

WORK_ITEM, EVENT, ATTEMPT, MANIFEST = "UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest"
KEYS = {
    WORK_ITEM: ("WorkItemHash",),
    EVENT: ("EventGUID",),
    ATTEMPT: ("WorkItemHash", "AttemptNumber"),
    MANIFEST: ("Hash",),
}
_PAGE = 1000  # keys per look-up statement
_RAW_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")
#: Statements kept per table before the cache starts over (patches of many column sets).
_STATEMENTS_KEPT = 256
#: MySQL/MariaDB multi-row statements: the protocol's limit of placeholders, and the characters
#: of text values per statement: escaped and UTF-8 encoded, at most 4 x this stays below the
#: smallest max_allowed_packet default in use (4 MiB, MySQL 5.7).
_MYSQL_PLACEHOLDERS = 65535
_MYSQL_STATEMENT_CHARS = 256 * 1024


class InvalidAction(Exception):
    """A write action this backend cannot apply (bad shape, missing natural key)."""


@dataclass(frozen=True)
class WriteSpec:
    """How one write action maps to a row: its table, its kind, where its record and key are."""

    table: str
    kind: str  # "upsert" | "update" | "insert"
    record: str | None  # Settings key holding the record (None: key and Patch are top-level)
    revive: bool = False  # an upsert clears the soft delete
    remove: bool = False  # the action is a soft delete


WRITES = {
    "QP_UpsertWorkItem": WriteSpec(WORK_ITEM, "upsert", "WorkItem"),
    "QP_UpdateWorkItem": WriteSpec(WORK_ITEM, "update", None),
    "QP_AppendEvent": WriteSpec(EVENT, "insert", "Event"),
    "QP_InsertAttempt": WriteSpec(ATTEMPT, "insert", "Attempt"),
    "QP_UpdateAttemptOutcome": WriteSpec(ATTEMPT, "update", None),
    "MS_UpsertManifest": WriteSpec(MANIFEST, "upsert", "Manifest", revive=True),
    "MS_RemoveManifest": WriteSpec(MANIFEST, "update", None, remove=True),
}


@dataclass
class TableInfo:
    """A reflected UV table with what writes need: data columns, defaults, stamp columns."""

    table: sa.Table
    key: tuple
    data_columns: frozenset  # what a record may set: every column but the ID and the stamps
    defaults: dict
    create_col: str | None
    update_col: str | None
    deleted_col: str | None
    id_col: str | None
    #: Statements built and compiled for this table, by shape (see ``_Writer._statement``).
    statements: dict = field(default_factory=dict)


def table_infos(tables: dict) -> dict:
    """``{Scope: TableInfo}`` for the reflected UV tables."""
    infos = {}
    for scope, table in tables.items():
        desc = descriptor_tables()[scope]
        types = {c["Column"]: c["Type"] for c in desc["Schema"]}
        present = set(table.c.keys())
        special = {t: next((c for c, ty in types.items() if ty == t and c in present), None)
                   for t in ("AutoIdentity", "CreateDate", "UpdateDate", "Deleted")}
        skip = {special["AutoIdentity"], special["CreateDate"], special["UpdateDate"]}
        data = frozenset(c for c in present if c not in skip)
        defaults = {c: None for c in present if c not in skip}
        defaults.update({c: v for c, v in desc.get("DefaultObject", {}).items() if c in defaults})
        infos[scope] = TableInfo(table, KEYS[scope], data, defaults, special["CreateDate"],
                                 special["UpdateDate"], special["Deleted"], special["AutoIdentity"])
    return infos


@dataclass(slots=True)
class _Step:
    kind: str
    values: dict  # shared with the action until a merge copies it (``owned``)
    indices: list
    key: tuple
    owned: bool = False

    def merge(self, values: dict, index: int) -> None:
        """Fold a later action of the same key into this step (its values win)."""
        if not self.owned:
            self.values, self.owned = dict(self.values), True
        self.values.update(values)
        self.indices.append(index)


def _key_of(spec: WriteSpec, settings: dict, record: dict | None) -> tuple:
    source = record if record is not None else settings
    names = ("RunHash",) if spec.table == MANIFEST and record is None else KEYS[spec.table]
    first = source.get(names[0])
    if not first:
        raise InvalidAction(f"missing natural key {names[0]}")
    if type(first) is not str:
        if not is_key_value(first):
            raise InvalidAction(f"natural key {names[0]} must be text, not {type(first).__name__}")
        first = str(first)
    if len(names) == 1:
        return (first,)
    number = source.get("AttemptNumber")
    if number is None or number == "":
        raise InvalidAction("missing natural key AttemptNumber")
    return first, int(number)


def _values_of(spec: WriteSpec, settings: dict, info: TableInfo) -> tuple[tuple, dict]:
    if not isinstance(settings, dict):
        raise InvalidAction("Settings is not an object")
    if spec.record is not None:
        record = settings.get(spec.record)
        if not isinstance(record, dict):
            raise InvalidAction(f"Settings.{spec.record} is not an object")
        key = _key_of(spec, settings, record)
        values = _pick(record, info.data_columns)
        if spec.revive and info.deleted_col:
            values = {**values, info.deleted_col: False}
        return key, values
    key = _key_of(spec, settings, None)
    if spec.remove:
        if not info.deleted_col:
            raise InvalidAction(f"{spec.table} has no Deleted column to soft-delete with")
        return key, {info.deleted_col: True}
    patch = settings.get("Patch")
    if not isinstance(patch, dict):
        raise InvalidAction("Settings.Patch is not an object")
    return key, _pick(patch, info.data_columns)


def _pick(record: dict, allowed: frozenset) -> dict:
    """``record`` restricted to ``allowed`` columns; the record itself when it already is.

    Journal records are already projected, so the fast path is the common one; the result
    is shared with the action and must not be changed (steps copy before merging).
    """
    if allowed.issuperset(record):
        return record
    return {c: v for c, v in record.items() if c in allowed}


def _quick_records(infos: dict) -> dict:
    """``{action: (spec, record key, first key column, second key column | None, data columns)}``
    for the record actions :func:`plan` may read without :func:`_values_of` (not the
    manifest upsert: it also revives a soft-deleted row)."""
    out = {}
    for name, spec in WRITES.items():
        if spec.record is None or spec.revive or spec.table not in infos:
            continue
        keys = KEYS[spec.table]
        out[name] = (spec, spec.record, keys[0], keys[1] if len(keys) > 1 else None, infos[spec.table].data_columns)
    return out


def plan(actions: list, infos: dict, results: list, indices: list) -> list:
    """Fold the write actions ``indices`` of ``actions`` into ordered statement groups.

    Returns ``[(scope, kind, [steps])]`` in execution order; fills ``results`` for actions that
    need no statement (a repeated insert of one key). Raises InvalidAction with the seq.
    """
    per_key: dict = {}  # (table, key) -> the key's steps, in order
    # A key's first step is on level 0. An insert is never merged into, so it joins its
    # level-0 group at once; upserts and updates are grouped at the end, when merging is over.
    first_inserts: dict = {}  # scope -> level-0 insert steps
    quick = _quick_records(infos)
    for i in indices:
        action = actions[i]
        # Fast path for what a flush mostly carries: a whole journal record whose natural key
        # is already typed (text, and an int AttemptNumber). Anything else, or anything
        # doubtful, takes the general path, which validates and explains.
        found = quick.get(action.name)
        record = action.settings.get(found[1]) if found is not None and type(action.settings) is dict else None
        first = record.get(found[2]) if type(record) is dict else None
        if type(first) is str and first and (found[3] is None or type(record.get(found[3])) is int):
            spec = found[0]
            key = (first,) if found[3] is None else (first, record[found[3]])
            values = _pick(record, found[4])
        else:
            spec = WRITES[action.name]
            try:
                key, values = _values_of(spec, action.settings, infos[spec.table])
            except (InvalidAction, TypeError, ValueError) as exc:
                raise InvalidAction(f"{action.name} (seq {action.seq}): {exc}") from None
        kind = spec.kind
        steps = per_key.get((spec.table, key))
        if steps is None:  # the common case: the key's first action in this batch
            step = _Step(kind, values, [i], key)
            per_key[(spec.table, key)] = [step]
            if kind == "insert":
                group = first_inserts.get(spec.table)
                if group is None:
                    first_inserts[spec.table] = [step]
                else:
                    group.append(step)
            continue
        last = steps[-1]
        if kind == "insert":
            if any(step.kind == "insert" for step in steps):
                results[i] = envelope(True, AlreadyPresent=True)
                continue
            steps.append(_Step("insert", values, [i], key))
        elif last.kind == "upsert" or (last.kind == "update" and kind == "update"):
            last.merge(values, i)
        else:
            steps.append(_Step(kind, values, [i], key))
    levels: list = [{(scope, "insert", None): steps for scope, steps in first_inserts.items()}]
    for (scope, _key), steps in per_key.items():
        if len(steps) == 1 and steps[0].kind == "insert":
            continue  # already in its level-0 group
        width = len(infos[scope].data_columns)
        for level, step in enumerate(steps):
            if level == 0 and step.kind == "insert":
                continue
            if level == len(levels):
                levels.append({})
            # the steps of one group share their column set; a step setting every data
            # column (a whole record) needs no set built to say so
            columns = None if step.kind == "insert" else "*" if len(step.values) == width else frozenset(step.values)
            levels[level].setdefault((scope, step.kind, columns), []).append(step)
    return [(scope, kind, steps) for groups in levels for (scope, kind, _), steps in groups.items()]


def apply(conn, actions: list, infos: dict, results: list, indices: list) -> None:
    """Apply the write actions ``indices`` of ``actions`` on ``conn`` (inside its transaction)."""
    writer = _Writer(conn)
    for scope, kind, steps in plan(actions, infos, results, indices):
        info = infos[scope]
        if kind == "insert":
            inserted = writer.insert_missing(info, steps)
            for step in steps:  # envelope(True, AlreadyPresent=...) without a call per action
                results[step.indices[0]] = {"Available": True, "Success": True, "AlreadyPresent": step.key not in inserted}
            continue
        if kind == "upsert":
            writer.upsert(info, steps)
        elif _settable(info, steps[0].values):
            writer.update(info, steps)
        for step in steps:
            for i in step.indices:
                results[i] = {"Available": True, "Success": True}  # envelope(True), one dict per action


def _settable(info: TableInfo, values: dict) -> list:
    """The columns of ``values`` an upsert or update sets (never the natural key)."""
    return sorted(c for c in values if c not in info.key)


def _key_tuple(info: TableInfo, row) -> tuple:
    """A natural key read back from the database, typed like the planned keys."""
    return tuple(int(v) if name == "AttemptNumber" else v for name, v in zip(info.key, row))


class _Writer:
    """The per-dialect statements."""

    def __init__(self, conn):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.on_conflict = self.dialect in ("sqlite", "postgresql")
        self.mysql = self.dialect in ("mysql", "mariadb")

    def _many(self, info: TableInfo, shape: tuple, build, rows: list) -> int:
        """Execute the statement ``build()`` makes once per row, as the driver's executemany;
        the rows it changed (-1 when the driver cannot tell).

        On the dialects uvctl tests (SQLite, PostgreSQL, MySQL/MariaDB) the statement is compiled
        once and the rows go to the driver as they are: they only hold str, int, float, bool and
        None, which these drivers bind natively, so SQLAlchemy's per-row parameter processing
        (a third of a flush's CPU) is skipped. Elsewhere SQLAlchemy runs it as usual.
        """
        stmt, compiled, pick, sql = self._statement(info, shape, build, rows[0])
        if compiled is None:
            return self.conn.execute(stmt, rows).rowcount
        if pick is not None:
            params = list(map(pick, rows))
            if compiled.isinsert and len(rows) > 1:  # SQLite and MySQL/MariaDB inserts bind positionally
                return self._multirow(sql, params)
        elif self.dialect == "postgresql" and compiled.isinsert and len(rows) >= staging.MIN_ROWS:
            return staging.staged_insert(self.conn, stmt, sql, rows)
        else:
            params = rows
        return self.conn.exec_driver_sql(sql, params).rowcount

    def _statement(self, info: TableInfo, shape: tuple, build, first_row: dict) -> tuple:
        """``(statement, compiled or None, row -> positional parameters or None, SQL text)``
        for the statement of ``shape`` over rows keyed like ``first_row``, kept on ``info``: a
        flush makes the same few statements batch after batch, and building and compiling one
        costs as much as writing hundreds of rows."""
        key = (shape, tuple(first_row))
        found = info.statements.get(key)
        if found is None:
            stmt, compiled, pick, sql = build(), None, None, None
            if self.dialect in _RAW_DIALECTS:
                compiled = stmt.compile(dialect=self.conn.dialect, column_keys=list(first_row))
                sql = compiled.string
                if compiled.escaped_bind_names:  # column names the driver cannot take as they are
                    compiled = None
                elif compiled.positional:
                    pick = multirow.tuple_getter(compiled.positiontup)
                elif compiled.isinsert and self.mysql and self.conn.dialect.paramstyle == "pyformat":
                    # PyMySQL takes %s as well: positional binds let the rows go as multi-row statements
                    sql, names = multirow.positional(sql)
                    pick = multirow.tuple_getter(names)
            if len(info.statements) >= _STATEMENTS_KEPT:
                info.statements.clear()
            found = info.statements[key] = (stmt, compiled, pick, sql)
        return found

    def _multirow(self, sql: str, params: list) -> int:
        """The single-row INSERT ``sql`` (an upsert too) as multi-row statements (:mod:`uvctl.multirow`).

        Rows of one call have distinct natural keys (:func:`plan`), so no row of a statement
        conflicts with another of it, and the rows changed add up like executemany's. On
        MySQL/MariaDB a statement is one packet, kept far below ``max_allowed_packet``.
        """
        if self.dialect == "sqlite":
            pairs = multirow.statements(sql, params, multirow.variable_limit(self.conn.connection.dbapi_connection))
        else:
            pairs = multirow.statements(sql, params, _MYSQL_PLACEHOLDERS, _MYSQL_STATEMENT_CHARS)
        return sum(self.conn.exec_driver_sql(text, flat).rowcount for text, flat in pairs)

    def _insert_rows(self, info: TableInfo, steps) -> list:
        """Whole rows: the record over the defaults. Journal records already are whole, and
        are then passed as they are (the driver only reads them)."""
        base, width = info.defaults, len(info.defaults)
        rows = []
        for step in steps:  # the key columns are in every record (_key_of read them there)
            values = step.values
            if len(values) == width:  # values only hold data columns (_pick): all of them, then
                rows.append(values)
            else:
                row = dict(base)
                row.update(values)
                rows.append(row)
        return rows

    def _insert(self, info: TableInfo, dialect_specific: bool = True):
        """An INSERT of ``info.table`` whose CreateDate/UpdateDate the database stamps itself
        (one SQL expression for the whole executemany, no per-row datetime binding)."""
        if dialect_specific and self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect_specific and self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect_specific and self.mysql:
            from sqlalchemy.dialects.mysql import insert
        else:
            insert = sa.insert
        stamps = {c: sa.func.current_timestamp() for c in (info.create_col, info.update_col) if c}
        # inline: no RETURNING of the new ID (PostgreSQL would send back a row per insert)
        stmt = insert(info.table).inline()
        return stmt.values(stamps) if stamps else stmt

    def existing(self, info: TableInfo, keys) -> set:
        """The subset of ``keys`` already stored (any Deleted state)."""
        table = info.table
        columns = [table.c[name] for name in info.key]
        wanted = set(keys)
        firsts = sorted({key[0] for key in wanted})
        found = set()
        for start in range(0, len(firsts), _PAGE):
            chunk = firsts[start:start + _PAGE]
            if self.dialect == "postgresql":  # one array parameter: a short statement the driver caches
                from sqlalchemy.dialects.postgresql import ARRAY

                match = columns[0] == sa.any_(sa.bindparam("keys", chunk, type_=ARRAY(columns[0].type)))
            else:
                match = columns[0].in_(chunk)
            for row in self.conn.execute(sa.select(*columns).where(match)):
                key = _key_tuple(info, row)
                if key in wanted:
                    found.add(key)
        return found

    def insert_missing(self, info: TableInfo, steps) -> set:
        """Insert-or-ignore by natural key; the keys really inserted.

        SQLite and PostgreSQL: ON CONFLICT DO NOTHING, counted by the driver; MySQL/MariaDB:
        ON DUPLICATE KEY UPDATE of the ID to itself (a key already stored is left as it is;
        unlike INSERT IGNORE, every other error stays an error), counted by the rows whose ID
        is above the highest ID seen just before (IDs only grow; the driver counts a
        duplicate as a row found). When every row went in (a first flush) that is the answer;
        otherwise the inserted keys are the rows above that ID. Without an ID column the keys
        already stored are looked up first and only the others inserted. (RETURNING would
        count too, but it turns the fast executemany into huge multi-row statements.)
        """
        if (self.on_conflict or self.mysql) and info.id_col:
            id_col = info.table.c[info.id_col]
            before = self.conn.execute(sa.select(sa.func.max(id_col))).scalar() or 0
            keys = {step.key for step in steps}
            changed = self._many(info, ("insert",), lambda: self._insert_ignoring(info), self._insert_rows(info, steps))
            if self.mysql:
                changed = self.conn.execute(sa.select(sa.func.count()).where(id_col > before)).scalar()
            if changed == len(steps):
                return keys
            columns = [info.table.c[name] for name in info.key]
            since = self.conn.execute(sa.select(*columns).where(id_col > before))
            return {_key_tuple(info, row) for row in since} & keys
        present = self.existing(info, [step.key for step in steps])
        fresh = [step for step in steps if step.key not in present]
        if fresh:
            self._many(info, ("insert",), lambda: self._insert_ignoring(info), self._insert_rows(info, fresh))
        return {step.key for step in fresh}

    def _insert_ignoring(self, info: TableInfo):
        """An INSERT that skips an existing natural key where the dialect can say so."""
        if self.mysql and info.id_col:
            return self._insert(info).on_duplicate_key_update({info.id_col: info.table.c[info.id_col]})
        if not self.on_conflict:
            return self._insert(info, dialect_specific=False)
        return self._insert(info).on_conflict_do_nothing(index_elements=list(info.key))

    def upsert(self, info: TableInfo, steps) -> None:
        """One-statement upsert by natural key: insert with defaults, else set the given columns."""
        rows = self._insert_rows(info, steps)
        assigned = _settable(info, steps[0].values) + ([info.update_col] if info.update_col else [])
        if not assigned:
            self.insert_missing(info, steps)
            return
        if self.on_conflict or self.mysql:
            self._many(info, ("upsert", tuple(assigned)), lambda: self._upsert_statement(info, assigned), rows)
        else:  # no portable upsert construct (MSSQL, ...): look up, then update + insert
            present = self.existing(info, [step.key for step in steps])
            old = [step for step in steps if step.key in present]
            if old:
                self.update(info, old)
            fresh = [row for row, step in zip(rows, steps) if step.key not in present]
            if fresh:
                self.conn.execute(self._insert(info, dialect_specific=False), fresh)

    def _upsert_statement(self, info: TableInfo, assigned: list):
        stmt = self._insert(info)
        if self.on_conflict:
            return stmt.on_conflict_do_update(index_elements=list(info.key), set_={c: stmt.excluded[c] for c in assigned})
        return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in assigned})

    def update(self, info: TableInfo, steps) -> None:
        """``UPDATE ... SET <columns> WHERE <natural key>`` for every step, as one executemany."""
        table = info.table
        columns = _settable(info, steps[0].values)

        def build():
            values = {c: sa.bindparam(f"v_{c}") for c in columns}
            if info.update_col:
                values[info.update_col] = sa.func.current_timestamp()
            return table.update().where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in info.key]).values(values)

        rows = []
        for step in steps:
            row = {f"v_{c}": step.values[c] for c in columns}
            row.update({f"k_{k}": v for k, v in zip(info.key, step.key)})
            rows.append(row)
        self._many(info, ("update", tuple(columns)), build, rows)
