"""Fixtures of the bad-input tests: a prepared data dir (journal, assigned and flushed sql
target) and a fingerprint of everything a command could change."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"
GOOD = [
    ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "keep-1", "Status": "Pending", "Settings": {"a": 1}}}),
    ("QP_AppendEvent", {"Event": {"WorkItemHash": "keep-1", "EventGUID": "keep-ev-1", "EventType": "enqueued",
                                  "EmittedAt": "2026-11-26T10:00:00.000Z"}}),
    ("MS_UpsertManifest", {"Manifest": {"Hash": "keep-run", "Status": "Running"}}),
    ("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": "keep-2", "Status": "Pending"}}),
]


def _digest_sqlite(path: Path, digest) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for name in names:
            digest.update(name.encode())
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY 1'):  # names read from sqlite_master
                digest.update(repr(row).encode())
    finally:
        conn.close()


def fingerprint(*folders: Path) -> str:
    """A digest of every file under ``folders``: SQLite files by content, others byte for byte.

    Lock files are left out (taking a lock creates one); SQLite ``-wal``/``-shm`` files are
    covered by reading the database itself.
    """
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            name = path.name
            if name.endswith((".lock", "-wal", "-shm", "-journal")) or name == "flush.lock.holder":
                continue
            digest.update(str(path.relative_to(folder)).encode())
            if name.endswith(".sqlite"):
                _digest_sqlite(path, digest)
            else:
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A data dir with a journal, an assigned and flushed sql target, built once."""
    import os

    root = tmp_path_factory.mktemp("badinput-template")
    data, target = root / "data", root / "target"
    target.mkdir()
    old = os.environ.get("UVCTL_DATA_DIR")
    os.environ["UVCTL_DATA_DIR"] = str(data)
    try:
        from uvctl import assignment
        from uvctl.flush import flush
        from uvctl.journal import Journal, normalize_action

        with Journal.open() as journal:
            journal.record_many([normalize_action(n, s) for n, s in GOOD])
        url = f"sqlite:///{target / 'target.sqlite'}"
        assignment.assign("sql", {"Db": url})
        assert assignment.backend_for("Queue", bootstrap=True) is not None
        assert flush().ok
        identity = assignment.backend_for("Queue").identity
    finally:
        if old is None:
            os.environ.pop("UVCTL_DATA_DIR", None)
        else:
            os.environ["UVCTL_DATA_DIR"] = old
    return {"data": data, "target": target, "url": url, "identity": identity}


@pytest.fixture
def prepared(template, data_dir):
    """This test's data dir: a copy of the template (the sql target is shared, and fingerprinted)."""
    shutil.copytree(template["data"], data_dir)
    return {**template, "data": data_dir}
