"""What sits at journal.sqlite, and what the file system allows: a foreign database is refused
untouched, read-only commands create and change nothing, a read-only file system is named."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess

import pytest

READ_ONLY_COMMANDS = [["journal", "stats"], ["persistence", "status"], ["flush", "--dry-run"],
                      ["journal", "prune", "--dry-run"]]


def _jsonl(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-1"}}}) + "\n")
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("uvctl: error: "), result.output
    assert "Traceback" not in result.output and "unexpected" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("args", [*READ_ONLY_COMMANDS, ["journal", "import", "IN"], ["flush"], ["journal", "prune"]])
def test_a_foreign_sqlite_database_is_refused_untouched(args, data_dir, cli_runner, tmp_path):
    data_dir.mkdir(parents=True)
    foreign = data_dir / "journal.sqlite"
    conn = sqlite3.connect(foreign)  # someone else's database, copied or linked in
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.commit()
    conn.close()
    before = _digest(foreign)

    result = cli_runner([str(_jsonl(tmp_path)) if a == "IN" else a for a in args])

    line = _one_error_line(result)
    assert result.exit_code == 1
    assert f"{foreign} is not a uvctl journal" in line and "customers" in line and "move it away" in line, line
    assert _digest(foreign) == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["journal.sqlite"]


@pytest.mark.parametrize("content", [b"", None])
def test_an_empty_file_or_a_database_without_tables_becomes_a_journal(content, data_dir, cli_runner, tmp_path):
    data_dir.mkdir(parents=True)
    path = data_dir / "journal.sqlite"
    if content is None:
        sqlite3.connect(path).execute("PRAGMA user_version = 1").close()  # a SQLite file, no tables
    else:
        path.write_bytes(content)
    result = cli_runner(["journal", "import", str(_jsonl(tmp_path))])
    assert result.exit_code == 0, result.output
    assert json.loads(cli_runner(["journal", "stats", "--json"]).stdout)["LastSeq"] == 1


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS)
def test_read_only_commands_on_an_empty_data_dir_create_nothing(args, data_dir, cli_runner):
    result = cli_runner([*args, "--json"])
    assert result.exit_code == 0, result.output
    assert not data_dir.exists(), sorted(p.name for p in data_dir.iterdir())


def test_journal_stats_reports_an_empty_journal_without_creating_it(data_dir, cli_runner):
    stats = json.loads(cli_runner(["journal", "stats", "--json"]).stdout)
    assert stats["LastSeq"] == 0 and stats["SizeBytes"] == 0 and stats["Path"] == str(data_dir / "journal.sqlite")
    assert not (data_dir / "journal.sqlite").exists()


# ---------------------------------------------------------------------------- a read-only file system
def _can_mount() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def read_only_mount(tmp_path):
    """``remount(read_only)`` of a tmpfs holding the data dir (root only: root ignores file modes,
    so only a read-only file system refuses it a write)."""
    if not _can_mount():
        pytest.skip("needs root to mount a tmpfs (a read-only file system is what refuses root a write)")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here: {done.stderr.strip()}")

    def remount(read_only: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(mount)], check=True)

    try:
        yield mount, remount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_journal_on_a_read_only_file_system_is_named_as_such_and_still_read(read_only_mount, cli_runner,
                                                                              monkeypatch, tmp_path):
    mount, remount = read_only_mount
    data = mount / "data"
    monkeypatch.setenv("UVCTL_DATA_DIR", str(data))
    assert cli_runner(["journal", "import", str(_jsonl(tmp_path))]).exit_code == 0
    journal = data / "journal.sqlite"
    before = _digest(journal)
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "wi-2"}}}) + "\n")
    remount(read_only=True)
    try:
        line = _one_error_line(cli_runner(["journal", "import", str(more)]))
        assert f"the journal {journal}" in line and "read-only file system or not writable" in line, line
        assert "make it (and its folder) writable; nothing was changed" in line and "move it away" not in line, line
        stats = cli_runner(["journal", "stats", "--json"])
        assert stats.exit_code == 0 and json.loads(stats.stdout)["LastSeq"] == 1, stats.output
    finally:
        remount(read_only=False)
    assert _digest(journal) == before
