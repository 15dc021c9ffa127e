"""What an operator reads: work items, their events and attempts, and runs with their work items.

Every read goes through the bridges, so it follows their rules: from the journal by default
(``local_only``), or with ``from_backend`` from the assigned backend when it has acknowledged
every journaled record of the bridge, else from the journal; each answer says which ``Source``
answered. Filters are the journal's (:mod:`uvctl.journal.filters`); this module only turns an
operator's options into them.

Lists are newest first (work items by ``EnqueuedAt``, runs by ``StartTime``, the natural key
breaking ties) and come in pages: ``limit`` rows and, when more follow, a ``Next`` cursor (the
last row's sort key, opaque text) that ``after`` takes to read the next page.

Reading never creates or changes the journal: with no journal file, the journal's answer is empty.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

from .errors import UsageError, UvctlError

# The journal's modules are imported where they are used: the CLI imports this module for
# its constants, and 'uvctl --help' should not load the journal.
WORK_ITEM, MANIFEST = "UVQueueWorkItem", "UVManifest"  # uvctl.journal.columns' names

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
#: The most events ``work_item`` returns (the bridge's read limit).
MAX_EVENTS = 5000
#: Statuses Ultravisor gives work items and runs; ``--status`` is matched against them
#: (case-insensitively) because a misspelt status would otherwise list nothing, silently.
STATUSES = {
    WORK_ITEM: ("Pending", "Assigned", "Dispatched", "Running", "RetryScheduled", "Complete", "Error", "Failed",
                "Canceled", "Stalled", "Timeout", "Abandoned", "Waiting"),
    MANIFEST: ("Pending", "Running", "In Progress", "Waiting", "Paused", "Resumed", "Complete", "Error", "Failed",
               "Canceled", "Stalled", "Abandoned"),
}
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_statuses(values, table: str) -> list[str] | None:
    """``--status`` values (repeated or comma-separated) as the canonical statuses, or None."""
    wanted = [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]
    if not wanted:
        return None
    known = {s.lower(): s for s in STATUSES[table]}
    bad = [v for v in wanted if v.lower() not in known]
    if bad:
        raise UsageError(f"unknown status {bad[0]!r}; use one of {', '.join(STATUSES[table])}")
    return list(dict.fromkeys(known[v.lower()] for v in wanted))


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since`` as the UTC ISO text Ultravisor stores (``2026-11-26T22:00:00.000Z``).

    Takes a duration back from now (``90s``, ``15m``, ``2h``, ``3d``, ``1w``), a date, or an
    ISO date and time; a time without a zone is the operator's local time.
    """
    text = str(text).strip()
    now = now or datetime.now(timezone.utc)
    match = _DURATION.match(text)
    if match:
        moment = now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--since {text!r} is not a time: give a duration (30m, 2h, 7d), "
                             f"a date (2026-11-26) or an ISO time (2026-11-26T22:00, with Z or +01:00 for a zone)") from None
        if moment.tzinfo is None:
            moment = moment.astimezone()  # the operator's local time
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def encode_cursor(row: dict, table: str) -> str:
    """The cursor after ``row``: its sort key (time, natural key) as URL-safe base64 of JSON."""
    from .journal.filters import RANGE_COLUMNS

    time_column, key_column = RANGE_COLUMNS[table]
    raw = json.dumps([str(row.get(time_column) or ""), str(row.get(key_column) or "")], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[str]:
    """``[time, key]`` from a cursor :func:`encode_cursor` made; a UsageError for any other text."""
    try:
        value = json.loads(base64.urlsafe_b64decode(str(text) + "=" * (-len(str(text)) % 4)))
    except ValueError:
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise UsageError(f"--after {str(text)[:40]!r} is not a cursor: pass the one a list printed")
    return value


class Views:
    """The reads of ``uvctl queue`` and ``uvctl runs``. A context manager.

    ``from_backend`` asks the assigned backend through the bridges (a backend that is not
    caught up, or fails, is answered for by the journal). The journal (``journal_path``, by
    default the data dir's) is opened read-only: a missing one reads as empty, and nothing of
    it is created or changed.
    """

    def __init__(self, from_backend: bool = False, journal_path=None):
        self.from_backend = from_backend
        self._path = journal_path
        self._journal = None

    def __enter__(self):
        from .journal import Journal

        self._journal = Journal.open(self._path, read_only=True)
        return self

    def __exit__(self, *exc):
        self._journal.close()

    # ------------------------------------------------------------------ work items
    def list_work_items(self, status=None, since=None, run=None, operation=None, limit=DEFAULT_LIMIT, after=None) -> dict:
        """``{Source, WorkItems, Next, Limit, Since}``: a page of work items, newest first
        (``Since`` is ``since`` as compared: UTC ISO text, or None)."""
        flt = {"Status": parse_statuses(status, WORK_ITEM), "RunHash": run, "OperationHash": operation}
        rows, source, following, since = self._page("QP_ListWorkItems", "WorkItems", WORK_ITEM, flt, since, limit, after)
        return {"Source": source, "WorkItems": rows, "Next": following, "Limit": limit, "Since": since}

    def work_item(self, work_item_hash: str) -> dict | None:
        """``{WorkItem, Events, Attempts, Sources}`` for one work item, or None when unknown.

        Events are in ``Seq`` order (the first MAX_EVENTS), attempts by number; attempts have
        no bridge read, so they always come from the journal.
        """
        found = self._read("QP_GetWorkItemByHash", {"WorkItemHash": work_item_hash})
        if not found.get("WorkItem"):
            return None
        events = self._read("QP_GetEvents", {"WorkItemHash": work_item_hash, "Limit": MAX_EVENTS})
        attempts = self._journal.get_attempts(work_item_hash)
        return {
            "WorkItem": found["WorkItem"],
            "Events": events["Events"],
            "EventsTruncated": len(events["Events"]) >= MAX_EVENTS,
            "Attempts": attempts,
            "Sources": {"WorkItem": found["Source"], "Events": events["Source"], "Attempts": "journal"},
        }

    # ------------------------------------------------------------------ runs
    def list_runs(self, status=None, since=None, operation=None, limit=DEFAULT_LIMIT, after=None) -> dict:
        """``{Source, Runs, Next, Limit, Since}``: a page of run summaries (no ManifestJSON), newest first."""
        flt = {"Status": parse_statuses(status, MANIFEST), "OperationHash": operation}
        rows, source, following, since = self._page("MS_ListManifests", "Manifests", MANIFEST, flt, since, limit, after)
        return {"Source": source, "Runs": rows, "Next": following, "Limit": limit, "Since": since}

    def run(self, run_hash: str, limit=DEFAULT_LIMIT, after=None) -> dict | None:
        """``{Manifest, WorkItems, Next, Limit, Outcomes, Sources}``, or None when unknown.

        ``Manifest`` is the run as Ultravisor sent it; ``WorkItems`` a page of the work items
        whose ``RunHash`` is the run's, newest first; ``Outcomes`` counts that page by status.
        """
        found = self._read("MS_GetManifest", {"RunHash": run_hash})
        if not found.get("Manifest"):
            return None
        items = self.list_work_items(run=run_hash, limit=limit, after=after)
        outcomes = dict(Counter(row.get("Status") or "" for row in items["WorkItems"]))
        return {"Manifest": found["Manifest"], "WorkItems": items["WorkItems"], "Next": items["Next"],
                "Limit": limit, "Outcomes": outcomes,
                "Sources": {"Manifest": found["Source"], "WorkItems": items["Source"]}}

    # ------------------------------------------------------------------ plumbing
    def _page(self, action: str, key: str, table: str, flt: dict, since, limit, after):
        """``(rows, source, next cursor, Since as compared)``: one more row than asked for tells
        whether more follow."""
        from .journal.filters import RANGE_COLUMNS

        limit = _check_limit(limit)
        time_column, key_column = RANGE_COLUMNS[table]
        flt = {k: v for k, v in flt.items() if v is not None}
        if since is not None:
            flt["Since"] = parse_since(since)
        if after is not None:
            flt["Before"] = decode_cursor(after)
        flt.update(Limit=limit + 1, OrderBy=f"{time_column} DESC, {key_column} DESC")
        answer = self._read(action, {"Filter": flt})
        rows = answer[key]
        following = encode_cursor(rows[limit - 1], table) if len(rows) > limit else None
        return rows[:limit], answer["Source"], following, flt.get("Since")

    def _read(self, action: str, settings: dict) -> dict:
        """The bridge's envelope for a read."""
        from .bridge import ManifestBridge, QueueBridge

        cls = QueueBridge if action.startswith("QP_") else ManifestBridge
        answer = cls(self._journal, local_only=not self.from_backend).execute(action, settings)
        if not answer.get("Success") and action not in ("QP_GetWorkItemByHash", "MS_GetManifest"):
            raise UvctlError(f"{action} failed: {answer.get('Reason') or 'no reason given'}")
        return answer


def _check_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit
