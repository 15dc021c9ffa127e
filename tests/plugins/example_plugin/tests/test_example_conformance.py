"""The example backend passes uvctl's conformance kit, the way any plugin author runs it."""

from pathlib import Path

import pytest
from uvctl_example_jsonl import load

from uvctl import host
from uvctl.testing import BackendConformance


class TestExampleJsonlConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path):
        handle = host.open_backend("example_jsonl", {"Path": str(tmp_path / "rows.jsonl")})
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        store = load(Path(backend.options["Path"]))
        return [row for (h, _), row in sorted(store.attempts.items()) if h == work_item_hash]


def test_plugin_is_installed():
    assert "example_jsonl" in host.backends()
