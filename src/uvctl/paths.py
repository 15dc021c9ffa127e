"""Where uvctl keeps its state: the data directory and the files inside it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

JOURNAL_FILE = "journal.sqlite"
DEFAULT_DB_FILE = "ultravisor.sqlite"
ASSIGNMENT_FILE = "persistence-assignment.json"
HWM_FILE = "persistence-bridge-hwm.json"
FLUSH_LOCK_FILE = "flush.lock"


def data_dir() -> Path:
    """``$UVCTL_DATA_DIR``, else the platformdirs user data directory for ``uvctl``."""
    environ = os.environ
    return _data_dir(environ.get("UVCTL_DATA_DIR"), environ.get("HOME"), environ.get("XDG_DATA_HOME"))


@functools.lru_cache(maxsize=8)
def _data_dir(override: str | None, _home: str | None, _xdg_data_home: str | None) -> Path:
    # cached per value of the variables it depends on: every bridge write asks for it
    if override:  # absolute: the default database URL built from it must not depend on the working directory
        return Path(override).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("uvctl", appauthor=False))


def data_file(name: str) -> Path:
    """``<data dir>/<name>``; the same Path object while the data dir stays the same."""
    return _data_file(data_dir(), name)


@functools.lru_cache(maxsize=32)
def _data_file(folder: Path, name: str) -> Path:
    # every bridge write looks up the assignment and mark files: joining paths costs more
    # than the cached read of the files themselves
    return folder / name


def ensure_data_dir() -> Path:
    """The data directory, created (mode 0700) when missing."""
    path = data_dir()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:  # a file in the way, a read-only or missing parent
        from .errors import UvctlError

        raise UvctlError(f"cannot use {path} as the data dir ({exc.strerror or exc}); set UVCTL_DATA_DIR "
                         f"to a directory uvctl may create and write") from None
    return path


def default_db_url() -> str:
    """``$UVCTL_DB_URL``, else the SQLite file ``ultravisor.sqlite`` in the data dir."""
    url = os.environ.get("UVCTL_DB_URL")
    if url:
        return url
    path = ensure_data_dir() / DEFAULT_DB_FILE
    try:  # private, like the journal: it holds the same records
        create_private(path)
    except OSError:  # a read-only data dir: opening the database will say so
        pass
    return f"sqlite:///{path}"


def create_private(path: Path) -> None:
    """Create the SQLite file ``path`` with mode 0600 when it is missing (SQLite gives its -wal
    and -shm files the same mode). OSError when it cannot be created."""
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another process created it meanwhile
        pass
