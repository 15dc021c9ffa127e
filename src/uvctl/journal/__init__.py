"""The local-first journal: every bridge write lands here first, in one ordered log.

- :func:`normalize_action` validates a bridge action and projects it onto the UV columns;
- :class:`Journal` is the SQLite store (ordered log + current state);
- :func:`normalize_filter` / :func:`normalize_limit` are the list-filter rules every read
  follows (public: backends call them to answer exactly as the journal does);
- :mod:`uvctl.journal.importer` reads JSONL files and Ultravisor data directories.
"""

from .filters import normalize_filter, normalize_limit
from .normalize import normalize_action
from .store import Journal, Recorded

__all__ = ["Journal", "Recorded", "normalize_action", "normalize_filter", "normalize_limit"]
