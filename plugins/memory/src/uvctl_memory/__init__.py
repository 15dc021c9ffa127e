"""uvctl backend plugin ``memory``: the reference backend, in-process and deterministic.

Python API: ``get_store(name)`` returns the :class:`MemoryStore` behind ``--store name``
so tests and embedding applications can look at what a flush delivered;
``drop_store(name)`` empties it.
"""

from .plugin import drop_store, get_store
from .store import MemoryStore

__all__ = ["MemoryStore", "drop_store", "get_store"]
