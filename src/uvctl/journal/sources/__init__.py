"""Import sources: each yields ``(Action, source_key)`` pairs for :meth:`Journal.apply_stream`.

A source is a context manager: entering it checks and prepares the source (errors before
anything is journaled), ``pairs()`` streams the normalized actions, ``report()`` says what
was read. Any problem met while streaming raises a UsageError and the import rolls back.
"""

from ..normalize import IMPORT_NAMESPACE, without_queue_metadata

__all__ = ["IMPORT_NAMESPACE", "without_queue_metadata"]
