"""The conformance kit against the built-in sql backend on a fresh SQLite file and a fresh MariaDB database."""

from __future__ import annotations

import pytest

from uvctl import host
from uvctl.testing import BackendConformance


class _SqlConformance(BackendConformance):
    url_fixture = "sqlite_url"

    @pytest.fixture
    def backend(self, request):
        handle = host.open_backend("sql", {"Db": request.getfixturevalue(self.url_fixture)})
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        import sqlalchemy as sa

        engine = sa.create_engine(backend.options["Db"])
        try:
            table = sa.Table("UVQueueWorkItemAttempt", sa.MetaData(), autoload_with=engine)
            query = (sa.select(table).where(table.c.WorkItemHash == work_item_hash, table.c.Deleted == 0)
                     .order_by(table.c.AttemptNumber))
            with engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(query)]
        finally:
            engine.dispose()


class TestSqlOnSqliteConformance(_SqlConformance):
    pass


@pytest.mark.mysql
class TestSqlOnMariaDBConformance(_SqlConformance):
    url_fixture = "mysql_url"
