"""The memory backend: the conformance kit, plus what is particular to it."""

from __future__ import annotations

import itertools

import pytest
import uvctl_memory

from uvctl import host
from uvctl.actions import Action
from uvctl.testing import BackendConformance, records

_store_names = itertools.count()


def memory_backend(store: str):
    return host.open_backend("memory", {"Store": store})


@pytest.fixture
def store_name():
    name = f"test-{next(_store_names)}"
    yield name
    uvctl_memory.drop_store(name)


class TestMemoryConformance(BackendConformance):
    @pytest.fixture
    def backend(self, store_name):
        handle = memory_backend(store_name)
        yield handle
        host.close(handle)

    def stored_attempts(self, backend, work_item_hash):
        store = uvctl_memory.get_store(backend.options["Store"])
        return [row for (h, _), row in sorted(store.attempts.items()) if h == work_item_hash]


def test_stores_with_different_names_are_isolated(store_name):
    a, b = memory_backend(store_name), memory_backend(store_name + "-other")
    host.dispatch(a, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])
    assert host.dispatch(b, [Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"})])[0]["Success"] is False
    again = memory_backend(store_name)  # a new handle on the same store sees the data
    assert host.dispatch(again, [Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"})])[0]["Success"] is True
    uvctl_memory.drop_store(store_name + "-other")


def test_identity_names_the_store():
    assert memory_backend("alpha").identity == "memory:alpha"
    assert host.open_backend("memory", {}).identity == "memory:default"


def test_results_are_deterministic(store_name):
    history = BackendConformance().history()

    def run(name):
        backend = memory_backend(name)
        results = host.dispatch(backend, [Action(n, s) for n, s in history])
        reads = host.dispatch(backend, [Action("QP_ListWorkItems", {"Filter": {}}), Action("MS_ListManifests", {"Filter": {}})])
        uvctl_memory.drop_store(name)
        return results, reads

    assert run(store_name + "-1") == run(store_name + "-2")


def test_returned_rows_are_copies(store_name):
    backend = memory_backend(store_name)
    (got,) = host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": records.work_item("wi-1")})])
    got["WorkItem"]["Status"] = "Tampered"
    (read,) = host.dispatch(backend, [Action("QP_GetWorkItemByHash", {"WorkItemHash": "wi-1"})])
    assert read["WorkItem"]["Status"] == "Pending"


def test_plugins_command_lists_memory(cli_runner):
    import json

    rows = {row["name"]: row for row in json.loads(cli_runner(["plugins", "--json"]).output)}
    assert rows["memory"]["backends"] == [
        {"name": "memory", "summary": host.backend_info("memory").summary, "legacy": False}
    ]
    assert {"uvctl_bootstrap", "uvctl_dispatch", "uvctl_lookup", "uvctl_register_backends"} <= set(rows["memory"]["hooks"])


def test_memory_is_usable_as_a_library_backend(store_name):
    """uvctl as a library: assign memory, write through the bridges, read back from the store."""
    from uvctl import assignment
    from uvctl.bridge import ManifestBridge, QueueBridge

    assignment.assign("memory", {"Store": store_name})
    for bridge in ("Queue", "Manifest"):
        assert assignment.backend_for(bridge, bootstrap=True) is not None  # bootstrapped
    queue, manifests = QueueBridge(), ManifestBridge()
    assert queue.upsert_work_item(records.work_item("wi-1", 1))["Success"] is True
    assert queue.append_event({"WorkItemHash": "wi-1", "EventType": "enqueued", "Payload": {"n": 1}})["Success"] is True
    assert manifests.upsert_manifest({"Hash": "run-1", "Status": "Complete", "TaskOutputs": {}})["Success"] is True
    store = uvctl_memory.get_store(store_name)
    assert list(store.work_items) == ["wi-1"]
    assert [e["EventType"] for e in store.events.values()] == ["enqueued"]
    assert store.manifests["run-1"]["Status"] == "Complete"
    read = queue.get_work_item("wi-1")
    assert (read["Success"], read["Source"], read["WorkItem"]["WorkItemHash"]) == (True, "backend", "wi-1")
