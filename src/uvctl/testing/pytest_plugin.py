"""pytest plugin of uvctl's conformance kit: fixtures only, loaded by pytest automatically.

It stays light on purpose: importing it imports nothing beyond pytest; uvctl modules are
imported inside the fixtures.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def uvctl_data_dir(tmp_path, monkeypatch):
    """An empty, private ``UVCTL_DATA_DIR`` for this test, and no inherited uvctl settings."""
    path = tmp_path / "uvctl-data"
    monkeypatch.setenv("UVCTL_DATA_DIR", str(path))
    for name in ("UVCTL_DB_URL", "UVCTL_COORDINATOR"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def uvctl_fault():
    """A :class:`uvctl.testing.faults.DispatchFault`, registered for this test only.

    ``uvctl_fault.fail_after(2, bridge="Queue")`` lets two Queue dispatches through and
    fails the rest with ``BackendUnavailable`` until ``uvctl_fault.heal()``.
    """
    from uvctl import host
    from uvctl.testing.faults import PLUGIN_NAME, DispatchFault

    fault = DispatchFault()
    host.register_plugin(fault, name=PLUGIN_NAME)
    try:
        yield fault
    finally:
        host.unregister_plugin(PLUGIN_NAME)
