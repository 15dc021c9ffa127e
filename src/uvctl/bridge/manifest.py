"""The manifest bridge: Ultravisor's ``MS_*`` actions over the journal and the assigned backend.

``get_manifest`` answers ``Manifest`` as the run Ultravisor sent: the parsed ``ManifestJSON``
object with the row's columns laid over it (``Hash``, ``Status``, ``StopTime``, ``Live``,
``StagingPath``, ... as last upserted), and without the ``ManifestJSON`` text itself. When
``ManifestJSON`` is not a JSON object the row is returned as stored.
``list_manifests`` answers summaries: the rows without ``ManifestJSON`` (listing whole runs
was a payload explosion upstream). Removed (soft-deleted) manifests are never returned.
"""

from __future__ import annotations

import json

from ..actions import MANIFEST, Action, envelope
from .base import BridgeBase


class ManifestBridge(BridgeBase):
    """Run manifests. Every method returns Ultravisor's envelope."""

    bridge = MANIFEST

    def upsert_manifest(self, manifest: dict) -> dict:
        """``MS_UpsertManifest``: insert or replace the manifest ``manifest["Hash"]`` (revives a removed one)."""
        return self.execute("MS_UpsertManifest", {"Manifest": manifest})

    def remove_manifest(self, run_hash: str) -> dict:
        """``MS_RemoveManifest``: soft delete (``Deleted = 1``)."""
        return self.execute("MS_RemoveManifest", {"RunHash": run_hash})

    def get_manifest(self, run_hash: str) -> dict:
        """``MS_GetManifest``: ``{Success, Manifest}`` with ``ManifestJSON`` parsed (module doc)."""
        return self.execute("MS_GetManifest", {"RunHash": run_hash})

    def list_manifests(self, filter: dict | None = None) -> dict:
        """``MS_ListManifests``: ``{Manifests}`` summaries; filter keys Status, OperationHash, Limit, OrderBy."""
        return self.execute("MS_ListManifests", {"Filter": filter or {}})

    def read_journal(self, action: Action) -> dict:
        if action.name == "MS_GetManifest":
            run_hash = action.settings["RunHash"]
            row = self.journal.get_manifest(run_hash)
            if row is None or row["Deleted"]:
                reason = f"manifest {run_hash!r} was removed" if row else f"no manifest {run_hash!r}"
                return envelope(False, Manifest=None, Reason=reason)
            return envelope(True, Manifest=row)
        return envelope(True, Manifests=self.journal.list_manifests(action.settings["Filter"]))

    def shape(self, action: Action, answer: dict) -> dict:
        if action.name == "MS_GetManifest" and answer.get("Manifest"):
            answer["Manifest"] = expand_manifest(answer["Manifest"])
        elif action.name == "MS_ListManifests":
            answer["Manifests"] = [
                {k: v for k, v in row.items() if k != "ManifestJSON"} for row in answer.get("Manifests") or []
            ]
        return answer


def expand_manifest(row: dict) -> dict:
    """The run as sent: parsed ``ManifestJSON`` with the row's columns over it."""
    text = row.get("ManifestJSON")
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return row
    columns = {k: v for k, v in row.items() if k != "ManifestJSON" and not k.startswith("ID")}
    return {**parsed, **columns}
