"""Flush: the journal's records past each backend's high-water mark → the backend, in batches.

- :class:`HighWaterMarks`: ``persistence-bridge-hwm.json`` (only-forward, atomic, locked);
- :func:`flush`: the batch loop, one flush at a time per journal (``flush.lock``).

Names load on first use, so ``uvctl --help`` (which reads the batch-size default) does not
import the state-file and lock machinery.
"""

from importlib import import_module

_HOMES = {"HighWaterMarks": "hwm", "FlushLock": "lock", "BridgeFlush": "service", "FlushReport": "service",
          "flush": "service"}

__all__ = ["BridgeFlush", "FlushLock", "FlushReport", "HighWaterMarks", "flush"]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
