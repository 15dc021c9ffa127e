"""Flush: the journal's records past each backend's high-water mark → the backend, in batches.

- :class:`HighWaterMarks`: ``persistence-bridge-hwm.json`` (only-forward, atomic, locked);
- :func:`flush`: the batch loop, one flush at a time per journal (``flush.lock``).
"""

from .hwm import HighWaterMarks
from .lock import FlushLock
from .service import BridgeFlush, FlushReport, flush

__all__ = ["BridgeFlush", "FlushLock", "FlushReport", "HighWaterMarks", "flush"]
