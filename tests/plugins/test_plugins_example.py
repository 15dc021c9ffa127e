"""The path an outside author takes: a plugin in its own folder, installed through its entry
point, found by ``uvctl plugins``, assigned, flushed to, and passing the conformance kit.

The example lives in ``example_plugin/`` with its own pyproject.toml; the session installs
it with pip into a folder of its own on ``PYTHONPATH`` (entry points and all), so the
test environment is left as the install made it. Every uvctl call runs in a fresh process,
exactly as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from uvctl_memory import MemoryStore

from uvctl.testing import BackendConformance

EXAMPLE = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory):
    """The example plugin folder, pip-installed into a private folder put on PYTHONPATH for
    the session's subprocesses (never into the test environment itself)."""
    target = tmp_path_factory.mktemp("example-plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p))
        yield EXAMPLE


def uvctl(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uvctl", *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_uvctl_plugins_finds_the_installed_plugin(example_plugin):
    out = uvctl("plugins", "--json")
    assert out.returncode == 0, out.stderr
    row = {r["name"]: r for r in json.loads(out.stdout)}["example_jsonl"]
    assert (row["version"], row["builtin"], row["error"]) == ("0.1.0", False, None)
    assert row["hooks"] == ["uvctl_bootstrap", "uvctl_dispatch", "uvctl_register_backends"]
    assert [b["name"] for b in row["backends"]] == ["example_jsonl"]
    only_memory = uvctl("plugins", "--json", env={"UVCTL_LOAD_PLUGINS": "memory"})
    assert "example_jsonl" not in {r["name"] for r in json.loads(only_memory.stdout)}
    assert only_memory.stderr == ""
    typo = uvctl("plugins", "--json", env={"UVCTL_LOAD_PLUGINS": "memroy"})
    assert typo.returncode == 0 and "'memroy', which no installed plugin provides" in typo.stderr
    assert "memory" in typo.stderr.split("installed:")[1]


def test_assign_and_flush_deliver_the_journal_to_the_plugin(example_plugin, tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"Action": n, "Settings": s}) + "\n" for n, s in BackendConformance().history()))
    target = tmp_path / "delivered" / "rows.jsonl"
    imported = uvctl("journal", "import", str(history), "--json")
    assert imported.returncode == 0, imported.stderr
    assigned = uvctl("persistence", "assign", "--backend", "example_jsonl", "--path", str(target), "--json")
    assert assigned.returncode == 0, assigned.stderr
    flushed = uvctl("flush", "--json")
    assert flushed.returncode == 0, flushed.stderr

    lines = target.read_text().splitlines()
    store = MemoryStore()
    for line in lines:
        entry = json.loads(line)
        assert store.apply(entry["Action"], entry["Settings"])["Success"] is True, entry
    assert {h: row["Status"] for h, row in store.work_items.items()} == {"wi-1": "Complete", "wi-2": "Pending"}
    assert sorted(store.events) == sorted(s["Event"]["EventGUID"] for n, s in BackendConformance().history() if n == "QP_AppendEvent")
    assert [(h, m["Deleted"]) for h, m in sorted(store.manifests.items())] == [("run-1", False), ("run-2", True)]

    status = json.loads(uvctl("persistence", "status", "--json").stdout)
    assert status["Queue"]["State"] == "bootstrapped" and status["Queue"]["Pending"] == 0
    assert uvctl("flush", "--json").returncode == 0
    assert target.read_text().splitlines() == lines, "a second flush must send nothing"


def test_missing_required_option_is_one_clear_line(example_plugin):
    out = uvctl("persistence", "assign", "--backend", "example_jsonl")
    assert out.returncode != 0
    assert "--path" in out.stderr and "Traceback" not in out.stderr


def test_the_plugin_passes_the_conformance_kit_in_its_own_session(example_plugin, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--basetemp", str(tmp_path / "kit")],
        cwd=example_plugin,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "passed" in out.stdout and "failed" not in out.stdout
