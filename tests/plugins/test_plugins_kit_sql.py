"""The conformance kit against the built-in sql backend on a fresh SQLite file."""

from __future__ import annotations

import pytest

from uvctl import host
from uvctl.testing import BackendConformance


class TestSqlOnSqliteConformance(BackendConformance):
    @pytest.fixture
    def backend(self, sqlite_url):
        handle = host.open_backend("sql", {"Db": sqlite_url})
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        import sqlalchemy as sa

        engine = sa.create_engine(backend.options["Db"])
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        'SELECT * FROM "UVQueueWorkItemAttempt" WHERE "WorkItemHash" = :h AND "Deleted" = 0 '
                        'ORDER BY "AttemptNumber"'
                    ),
                    {"h": work_item_hash},
                )
                return [dict(row._mapping) for row in rows]
        finally:
            engine.dispose()
