"""The example backend passes uvctl's conformance kit, the way any plugin author runs it."""

import json

import pytest

from uvctl import host
from uvctl.testing import BackendConformance


class TestExampleJsonlConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path):
        handle = host.open_backend("example_jsonl", {"Path": str(tmp_path / "rows.jsonl")})
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        from uvctl_memory import MemoryStore

        store = MemoryStore()
        with open(backend.options["Path"], encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line)
                store.apply(entry["Action"], entry["Settings"])
        return [row for (h, _), row in sorted(store.attempts.items()) if h == work_item_hash]


def test_plugin_is_installed():
    assert "example_jsonl" in host.backends()
