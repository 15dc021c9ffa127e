"""The foundation: CLI entry, plugin host loading, state files, secret masking."""

import json
import os
import stat
import subprocess
import sys

from uvctl.errors import mask_secrets, mask_url
from uvctl.statefile import read_json, write_json


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, uvctl.cli;"
        "heavy=[m for m in ('sqlalchemy','sqlglot','httpx') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plugins_json_lists_builtins_and_distributions(cli_runner):
    result = cli_runner(["plugins", "--json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert "sql" in [b["name"] for b in rows["uvctl.plugins.sql"]["backends"]]
    assert "uvctl_dispatch" in rows["uvctl.plugins.sql"]["hooks"]
    for name in ("meadowproxy", "memory", "legacy_beacons"):
        assert rows[name]["error"] is None
        assert rows[name]["version"]


def test_load_plugins_empty_loads_no_entry_points(tmp_path):
    env = {**os.environ, "UVCTL_LOAD_PLUGINS": "", "UVCTL_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "uvctl", "plugins", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert names == {"uvctl.plugins.sql", "uvctl.plugins.normalize"}


def test_state_file_is_atomic_and_private(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"Queue": None})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_json(path) == {"Queue": None}
    assert list(tmp_path.iterdir()) == [path]


def test_state_files_are_fsynced_before_replacing_and_only_marks_skip_the_directory(tmp_path, monkeypatch, data_dir):
    # the new text is always on disk before it replaces the old (never a torn file after a
    # power loss); the directory entry is made durable too, except for the high-water marks,
    # whose fallback to an earlier value only resends records the backend already has
    from uvctl import assignment
    from uvctl.flush.hwm import HighWaterMarks

    synced: list = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assignment.assign("sql", {"Db": f"sqlite:///{tmp_path / 'target.sqlite'}"})
    assert synced == [False, True]  # the file, then its directory
    synced.clear()
    HighWaterMarks().advance("Queue", "sql:x", 5)
    assert synced == [False]  # the file only
    assert HighWaterMarks().get("Queue", "sql:x") == 5


def test_corrupt_state_file_is_an_error_naming_it(tmp_path):
    import pytest

    from uvctl.errors import UvctlError

    path = tmp_path / "state.json"
    path.write_text("{\"Queue\": ")
    with pytest.raises(UvctlError, match="state.json is corrupt"):
        read_json(path)


def test_a_state_file_changed_by_another_process_is_read_again(tmp_path):
    # read_json keeps the last text it read while the file stays the same; any change made
    # outside this process (a rename over it, an edit in place, a removal) is seen at once
    path = tmp_path / "state.json"
    write_json(path, {"n": 1})
    assert read_json(path) == {"n": 1}
    code = f"from uvctl.statefile import write_json; write_json({str(path)!r}, {{'n': 2}})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert read_json(path) == {"n": 2}
    with open(path, "r+", encoding="utf-8") as handle:  # same inode, same size, new content
        text = handle.read().replace("2", "3")
        handle.seek(0)
        handle.write(text)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1))
    assert read_json(path) == {"n": 3}
    path.unlink()
    assert read_json(path, default="absent") == "absent"


def test_secrets_are_masked():
    assert mask_url("postgresql://bob:s3cret@db/x") == "postgresql://bob:***@db/x"
    assert "s3cret" not in mask_secrets("failed: password=s3cret host=x")
    assert "abc123" not in mask_secrets('{"token": "abc123"}')


def _fake_distribution(root, name, module_source):
    """A plugin distribution on disk (dist-info + module), found through PYTHONPATH."""
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[uvctl]\n{name} = {name}_mod\n")
    (root / f"{name}_mod.py").write_text(module_source)


def test_a_plugin_that_fails_to_import_is_a_warning_and_the_rest_works(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "brokenplug", "raise ImportError('needs a library that is not installed')\n")
    env = {**os.environ, "PYTHONPATH": str(site), "UVCTL_DATA_DIR": str(tmp_path / "data")}
    env.pop("UVCTL_LOAD_PLUGINS", None)

    listed = subprocess.run([sys.executable, "-m", "uvctl", "plugins", "--json"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "plugin 'brokenplug' failed to load" in listed.stderr
    assert "Traceback" not in listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "needs a library that is not installed" in rows["brokenplug"]["error"]
    assert rows["memory"]["error"] is None

    ddl = subprocess.run(
        [sys.executable, "-m", "uvctl", "schema", "ddl", "--dialect", "sqlite"], capture_output=True, text=True, env=env
    )
    assert ddl.returncode == 0
    assert 'CREATE TABLE IF NOT EXISTS "UVManifest"' in ddl.stdout


def test_a_plugin_whose_commands_fail_or_whose_backend_name_is_taken_is_a_warning(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "cmdplug", (
        "from uvctl import hookimpl\n"
        "@hookimpl\n"
        "def uvctl_register_commands(cli):\n"
        "    raise RuntimeError('command setup broke')\n"
    ))
    _fake_distribution(site, "clashplug", (
        "from uvctl import hookimpl\n"
        "from uvctl.backend import BackendInfo\n"
        "@hookimpl\n"
        "def uvctl_register_backends(register):\n"
        "    register(BackendInfo(name='memory', summary='an impostor'))\n"
        "    register(BackendInfo(name='clash_own', summary='its own backend'))\n"
    ))
    env = {**os.environ, "PYTHONPATH": str(site), "UVCTL_DATA_DIR": str(tmp_path / "data")}
    env.pop("UVCTL_LOAD_PLUGINS", None)

    listed = subprocess.run([sys.executable, "-m", "uvctl", "plugins", "--json"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert "plugin 'cmdplug' failed to add its commands (RuntimeError: command setup broke)" in listed.stderr
    assert "plugin 'clashplug' is not loaded: its backend 'memory' is already provided by plugin 'memory'" in listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert [b["name"] for b in rows["memory"]["backends"]] == ["memory"]
    assert rows["clashplug"]["backends"] == [] and "is not loaded" in rows["clashplug"]["error"]

    help_ = subprocess.run([sys.executable, "-m", "uvctl", "persistence", "assign", "--help"], capture_output=True, text=True, env=env)
    assert help_.returncode == 0 and "--store" in help_.stdout  # the memory backend's own option, not the impostor's


def test_load_plugins_allow_list_loads_only_the_named_plugins(tmp_path):
    env = {**os.environ, "UVCTL_LOAD_PLUGINS": "memory", "UVCTL_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "uvctl", "plugins", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert names == {"uvctl.plugins.sql", "uvctl.plugins.normalize", "memory"}


def test_a_plugin_claiming_the_builtin_sql_name_is_unloaded_and_never_answers_for_it(tmp_path, capsys):
    from uvctl import hookimpl, host
    from uvctl.actions import Action
    from uvctl.backend import BackendInfo

    class Rogue:
        @hookimpl
        def uvctl_register_backends(self, register):
            register(BackendInfo(name="sql", summary="an impostor"))

        @hookimpl
        def uvctl_dispatch(self, backend, actions):
            return [{"Success": True} for _ in actions] if backend.name == "sql" else None

    host.register_plugin(Rogue(), "rogue")
    try:
        assert not host.pm.has_plugin("rogue") and host.backend_info("sql").plugin == "uvctl.plugins.sql"
        assert "plugin 'rogue' is not loaded: its backend 'sql' is already provided" in capsys.readouterr().err
        backend = host.open_backend("sql", {"Db": f"sqlite:///{tmp_path / 'target.sqlite'}"})
        (answer,) = host.dispatch(backend, [Action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "wi-1"}})])
        assert answer["Success"] is False and answer.get("NeedsBootstrap")  # the built-in: no tables there yet
    finally:
        host._records.pop("rogue", None)
        host._collect_backends()
