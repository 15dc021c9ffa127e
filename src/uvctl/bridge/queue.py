"""The queue bridge: Ultravisor's ``QP_*`` actions over the journal and the assigned backend."""

from __future__ import annotations

from ..actions import QUEUE, Action, envelope
from .base import BridgeBase


class QueueBridge(BridgeBase):
    """Work items, their events and attempts. Every method returns Ultravisor's envelope."""

    bridge = QUEUE

    def upsert_work_item(self, item: dict) -> dict:
        """``QP_UpsertWorkItem``: insert or replace the work item ``item["WorkItemHash"]``."""
        return self.execute("QP_UpsertWorkItem", {"WorkItem": item})

    def update_work_item(self, work_item_hash: str, patch: dict) -> dict:
        """``QP_UpdateWorkItem``: change the given columns of a work item."""
        return self.execute("QP_UpdateWorkItem", {"WorkItemHash": work_item_hash, "Patch": patch})

    def append_event(self, event: dict) -> dict:
        """``QP_AppendEvent``: the envelope's ``Event`` carries the filled EventGUID/Seq/EmittedAt."""
        return self.execute("QP_AppendEvent", {"Event": event})

    def insert_attempt(self, attempt: dict) -> dict:
        """``QP_InsertAttempt``: a new attempt; an existing one answers ``AlreadyPresent``."""
        return self.execute("QP_InsertAttempt", {"Attempt": attempt})

    def update_attempt_outcome(self, work_item_hash: str, attempt_number: int, patch: dict) -> dict:
        """``QP_UpdateAttemptOutcome``: change the given columns of one attempt."""
        return self.execute(
            "QP_UpdateAttemptOutcome", {"WorkItemHash": work_item_hash, "AttemptNumber": attempt_number, "Patch": patch}
        )

    def get_work_item(self, work_item_hash: str) -> dict:
        """``QP_GetWorkItemByHash``: ``{Success, WorkItem}`` (``WorkItem`` None when absent)."""
        return self.execute("QP_GetWorkItemByHash", {"WorkItemHash": work_item_hash})

    def list_work_items(self, filter: dict | None = None) -> dict:
        """``QP_ListWorkItems``: ``{WorkItems}`` matching the filter (see uvctl.journal.filters)."""
        return self.execute("QP_ListWorkItems", {"Filter": filter or {}})

    def get_events(self, work_item_hash: str, limit: int | None = None) -> dict:
        """``QP_GetEvents``: ``{Events}`` of a work item in Seq order (default 500, max 5000)."""
        return self.execute("QP_GetEvents", {"WorkItemHash": work_item_hash, "Limit": limit or 0})

    def read_journal(self, action: Action) -> dict:
        s, journal = action.settings, self.journal
        if action.name == "QP_GetWorkItemByHash":
            row = journal.get_work_item(s["WorkItemHash"])
            if row is None:
                return envelope(False, WorkItem=None, Reason=f"no work item {s['WorkItemHash']!r}")
            return envelope(True, WorkItem=row)
        if action.name == "QP_ListWorkItems":
            return envelope(True, WorkItems=journal.list_work_items(s["Filter"]))
        return envelope(True, Events=journal.get_events(s["WorkItemHash"], s["Limit"]))
