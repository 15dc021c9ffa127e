"""uvctl: the persistence layer of an Ultravisor deployment."""

from .hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
