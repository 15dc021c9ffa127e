"""Import sources: each yields ``(Action, source_key)`` pairs for :meth:`Journal.apply_stream`.

A source is a context manager: entering it checks and prepares the source (errors before
anything is journaled), ``pairs()`` streams the normalized actions, ``report()`` says what
was read. Any problem met while streaming raises a UsageError and the import rolls back.
"""

import json
import uuid

#: Namespace of the deterministic EventGUIDs and source keys minted by imports.
IMPORT_NAMESPACE = uuid.UUID("5b0f5cc4-7d5a-4b8e-9a57-2f3c0b7f0e11")


def without_queue_metadata(item: dict) -> dict:
    """The work item without the ``QueueMetadata`` the scheduler injects into its ``Settings``.

    ``Settings`` may be JSON text (a data directory, the coordinator's history) or an object;
    text that is not JSON stays as it is. ``item`` itself is never changed.
    """
    settings = item.get("Settings")
    if isinstance(settings, str) and "QueueMetadata" in settings:
        try:
            settings = json.loads(settings)
        except ValueError:
            return item
    if isinstance(settings, dict) and "QueueMetadata" in settings:
        return {**item, "Settings": {k: v for k, v in settings.items() if k != "QueueMetadata"}}
    return item


class Changes:
    """The values an import stores other than its source has them (the notes of
    :func:`~uvctl.journal.normalize.normalize_action`): counted, the first ones kept by name."""

    KEPT = 20

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.count, self.examples = 0, []

    def add(self, where: str, notes: list) -> None:
        """Count ``notes`` (those of the record at ``where``)."""
        for note in notes:
            self.count += 1
            if len(self.examples) < self.KEPT:
                self.examples.append(f"{where}: {note}")

    def report(self) -> dict:
        return {"ChangedValues": self.count, "ChangedExamples": list(self.examples)}
