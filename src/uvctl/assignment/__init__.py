"""Which backend each bridge writes to (``persistence-assignment.json``) and its bootstrap state."""

from .service import (assign, backend_for, clear, close_all_handles, due_for_retry, mark_needs_bootstrap,
                      mark_unreachable, masked_options, resolve_options, status)
from .store import BRIDGES, load

__all__ = ["BRIDGES", "assign", "backend_for", "clear", "close_all_handles", "due_for_retry", "load", "mark_needs_bootstrap",
           "mark_unreachable", "masked_options", "resolve_options", "status"]
