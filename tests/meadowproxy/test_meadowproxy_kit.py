"""uvctl's conformance kit against the meadowproxy backend (direct) on the real meadow server."""

from __future__ import annotations

import pytest

from uvctl import host
from uvctl.testing import BackendConformance

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)


class TestMeadowproxyDirectConformance(BackendConformance):
    @pytest.fixture
    def backend(self, meadow):
        handle = host.open_backend(
            "meadowproxy", {"Transport": "direct", "Url": meadow.url, "RouteHash": meadow.route_hash}
        )
        self._db_file = meadow.db_file
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        import sqlite3

        with sqlite3.connect(self._db_file) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                'SELECT * FROM "UVQueueWorkItemAttempt" WHERE "WorkItemHash" = ? AND "Deleted" = 0 '
                'ORDER BY "AttemptNumber"', (work_item_hash,)
            )
            return [dict(row) for row in rows]


class TestMeadowproxyMeshConformance(TestMeadowproxyDirectConformance):
    """The same kit with every request a MeadowProxy work item through the coordinator stub."""

    @pytest.fixture
    def backend(self, meadow, mesh_options, databeacon):
        handle = host.open_backend("meadowproxy", mesh_options)
        self._db_file = meadow.db_file
        yield handle
        host.close(handle)
