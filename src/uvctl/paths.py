"""Where uvctl keeps its state: the data directory and the files inside it."""

from __future__ import annotations

import os
from pathlib import Path

JOURNAL_FILE = "journal.sqlite"
DEFAULT_DB_FILE = "ultravisor.sqlite"
ASSIGNMENT_FILE = "persistence-assignment.json"
HWM_FILE = "persistence-bridge-hwm.json"
FLUSH_LOCK_FILE = "flush.lock"


def data_dir() -> Path:
    """``$UVCTL_DATA_DIR``, else the platformdirs user data directory for ``uvctl``."""
    override = os.environ.get("UVCTL_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("uvctl", appauthor=False))


def ensure_data_dir() -> Path:
    """The data directory, created (mode 0700) when missing."""
    path = data_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def default_db_url() -> str:
    """``$UVCTL_DB_URL``, else the SQLite file ``ultravisor.sqlite`` in the data dir."""
    url = os.environ.get("UVCTL_DB_URL")
    if url:
        return url
    return f"sqlite:///{ensure_data_dir() / DEFAULT_DB_FILE}"
