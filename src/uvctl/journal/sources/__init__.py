"""Import sources: each yields ``(Action, source_key)`` pairs for :meth:`Journal.apply_stream`.

A source is a context manager: entering it checks and prepares the source (errors before
anything is journaled), ``pairs()`` streams the normalized actions, ``report()`` says what
was read. Any problem met while streaming raises a UsageError and the import rolls back.
"""

import uuid

#: Namespace of the deterministic EventGUIDs and source keys minted by imports.
IMPORT_NAMESPACE = uuid.UUID("5b0f5cc4-7d5a-4b8e-9a57-2f3c0b7f0e11")
