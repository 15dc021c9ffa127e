"""The Ultravisor coordinator client shared by backend plugins (meadowproxy, legacy_beacons).

``Coordinator(url)`` lists beacons, logs in where the coordinator is secured, and runs
work items on one named beacon (``dispatch``). See :mod:`uvctl.mesh.client`.
"""

from .client import (
    BeaconNotFound,
    Coordinator,
    CoordinatorUnavailable,
    DispatchTimeout,
    MeshError,
    WorkError,
    split_credentials,
)

__all__ = [
    "BeaconNotFound",
    "Coordinator",
    "CoordinatorUnavailable",
    "DispatchTimeout",
    "MeshError",
    "WorkError",
    "split_credentials",
]
