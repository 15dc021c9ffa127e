"""Which backend each bridge writes to (``persistence-assignment.json``) and its bootstrap state."""

from .service import assign, backend_for, clear, mark_needs_bootstrap, masked_options, resolve_options, status
from .store import BRIDGES, load

__all__ = ["BRIDGES", "assign", "backend_for", "clear", "load", "mark_needs_bootstrap", "masked_options",
           "resolve_options", "status"]
