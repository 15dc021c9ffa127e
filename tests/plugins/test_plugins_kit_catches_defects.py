"""The kit fails where it should: a backend with known defects is caught by the right tests.

A backend author trusts a green kit only if a red one is possible. This runs the kit, in
its own pytest session, against ``leaky``: the memory store with two defects an author
could plausibly write (event replays stored again under a new GUID, and ``Limit`` ignored).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

CONFTEST = '''
from uvctl import hookimpl, host
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec
from uvctl_memory import MemoryStore

STORES = {}


class LeakyStore(MemoryStore):
    def QP_AppendEvent(self, Event=None):
        Event = dict(Event or {})
        if Event.get("EventGUID") in self.events:  # defect 1: a replay is stored again
            Event["EventGUID"] = f"{Event['EventGUID']}-again-{len(self.events)}"
        return super().QP_AppendEvent(Event=Event)

    def QP_ListWorkItems(self, Filter=None):
        return super().QP_ListWorkItems(Filter={**(Filter or {}), "Limit": 5000})  # defect 2


class LeakyPlugin:
    @hookimpl
    def uvctl_register_backends(self, register):
        register(BackendInfo(name="leaky", summary="defective on purpose", identity=lambda o: "leaky:" + o["Store"],
                             options=(OptionSpec("Store", "--store", "store name"),)))

    @hookimpl
    def uvctl_bootstrap(self, backend):
        return BootstrapResult("bootstrapped") if backend.name == "leaky" else None

    @hookimpl
    def uvctl_dispatch(self, backend, actions):
        if backend.name != "leaky":
            return None
        store = STORES.setdefault(backend.options["Store"], LeakyStore())
        return [store.apply(a.name, a.settings) for a in actions]


host.register_plugin(LeakyPlugin(), name="leaky")
'''

TEST = '''
import itertools
import pytest
from uvctl import host
from uvctl.testing import BackendConformance

_names = itertools.count()


class TestLeaky(BackendConformance):
    @pytest.fixture
    def backend(self):
        return host.open_backend("leaky", {"Store": f"s{next(_names)}"})
'''


def test_defects_are_caught_by_the_tests_that_name_them(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_leaky.py").write_text(TEST)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env=env,
    )
    failed = set(re.findall(r"^FAILED \S+::TestLeaky::(\w+)", out.stdout, re.M))
    assert out.returncode == 1, out.stdout[-2000:]
    assert {
        "test_replayed_event_is_already_present_and_unchanged",
        "test_replaying_a_whole_history_changes_nothing",
        "test_list_limit_defaults_to_500_and_pages_past_it",
    } <= failed, out.stdout[-2000:]
    passed_anyway = {"test_upserted_work_item_reads_back", "test_removed_manifest_is_soft_deleted_and_can_come_back",
                     "test_events_limit_defaults_to_500", "test_flush_resumes_after_a_backend_failure"}
    assert not failed & passed_anyway, failed
