"""Import sources: each yields ``(Action, source_key)`` pairs for :meth:`Journal.apply_stream`.

A source is a context manager: entering it checks and prepares the source (errors before
anything is journaled), ``pairs()`` streams the normalized actions, ``report()`` says what
was read. Any problem met while streaming raises a UsageError and the import rolls back.
"""

from ..normalize import IMPORT_NAMESPACE, without_queue_metadata

__all__ = ["IMPORT_NAMESPACE", "Changes", "without_queue_metadata"]


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
