"""The persistence beacon: a running Ultravisor's live ``QP_*`` / ``MS_*`` writes into the journal.

``protocol`` (the coordinator's frames), ``transport`` (WebSocket and HTTP sessions),
``handler`` (a work item through the local-only bridges), ``delivery`` (journal → backends in
the background, retention), ``state`` (the state file), ``service`` (the runner).
"""

from .service import Beacon

__all__ = ["Beacon"]
