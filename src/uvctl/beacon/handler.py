"""One persistence call in, one answer out: the bridges over the shared journal.

Writes go through the local-only bridges: journaled (committed, and fsynced unless
``UVCTL_JOURNAL_SYNC=normal``) before the answer is built, delivered later by the
background delivery. Reads are answered from the journal, which holds every write the
coordinator made through this beacon and the full current state.

What the coordinator reads (reference §3, §4): ``Success`` and the read's key (``WorkItem``,
``WorkItems``, ``Events``, ``Manifest``, ``Manifests``); a miss is ``Success: false`` with the
key present (``null`` or ``[]``). A write that cannot be journaled is a ``WorkError`` with the
one-line reason (the coordinator logs it; it never retries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..actions import MANIFEST, QUEUE, READ_BY_KEY, READ_RESULT_KEYS, read_empty
from ..bridge import ManifestBridge, QueueBridge
from ..bridge.batch import execute_batch
from ..errors import mask_secrets
from ..journal.columns import EVENT, OBJECT_COLUMNS, WORK_ITEM
from .protocol import WorkItem


@dataclass
class Answer:
    """What to send back for one work item: ``outputs`` (WorkComplete) or ``error`` (WorkError)."""

    outputs: dict | None = None
    error: str | None = None
    read: bool = False
    #: The journal seq of a logged write (the background delivery is woken for it).
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Handler:
    """Apply work items to one journal; safe to call from several threads at once (the journal
    group-commits concurrent writes)."""

    def __init__(self, journal):
        self.journal = journal
        self._bridges = {QUEUE: QueueBridge(journal, local_only=True), MANIFEST: ManifestBridge(journal, local_only=True)}

    def handle_batch(self, items: list) -> list:
        """Journal or read ``items`` in arrival order, the writes next to each other in one
        transaction (one fsync); one Answer each. Never raises."""
        try:
            outs = execute_batch([(item.action, item.settings) for item in items], self._bridges)
        except Exception as exc:  # a journal that cannot be written (disk full, read-only): say so
            return [Answer(error=_one_line(f"{item.action} was not journaled: {exc}"), read=item.is_read)
                    for item in items]
        return [self._answer(item, out) for item, out in zip(items, outs)]

    def _answer(self, item: WorkItem, out: dict) -> Answer:
        if item.is_read:
            if out.get("Success") is False and out.get("Reason") and not _is_miss(item.action, out):
                return Answer(error=_one_line(f"{item.action}: {out['Reason']}"), read=True)
            return Answer(outputs=as_sent(item.action, {**read_empty(item.action), **out}), read=True)
        if not out.get("Success"):
            return Answer(error=_one_line(f"{item.action}: {out.get('Reason') or 'refused'}"))
        return Answer(outputs=out, seq=out.get("JournalSeq"))


#: The table of the rows each read answers with, by its result key.
_READ_TABLES = {"WorkItem": WORK_ITEM, "WorkItems": WORK_ITEM, "Events": EVENT}


def as_sent(action: str, out: dict) -> dict:
    """A read's answer with the columns Ultravisor sent as objects (``Settings``, ``Result``,
    ``Payload``) parsed back from the journal's JSON text, as the coordinator reads them."""
    key = READ_RESULT_KEYS[action]
    table = _READ_TABLES.get(key)
    if table is None or not out.get(key):
        return out
    columns = OBJECT_COLUMNS[table]
    rows = out[key] if isinstance(out[key], list) else [out[key]]
    parsed = [_parse_objects(row, columns) for row in rows]
    return {**out, key: parsed if isinstance(out[key], list) else parsed[0]}


def _parse_objects(row: dict, columns) -> dict:
    row = dict(row)
    for column in columns:
        text = row.get(column)
        if isinstance(text, str) and text[:1] in ("{", "["):
            try:
                row[column] = json.loads(text)
            except ValueError:
                pass  # text that only looks like JSON stays text
    return row


def _is_miss(action: str, out: dict) -> bool:
    """A lookup that found nothing (an answer, not an error)."""
    key = READ_RESULT_KEYS[action]
    return action in READ_BY_KEY and key in out and out[key] is None


def _one_line(text: str) -> str:
    return mask_secrets(" ".join(str(text).split()))[:2000]
