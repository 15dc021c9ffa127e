"""One flush at a time per journal: ``flush.lock`` plus a note saying who holds it.

The lock is an OS file lock, so a flush killed with ``kill -9`` releases it at once. The
holder's pid, host and start time go to ``flush.lock.holder`` next to it (the lock file
itself is truncated by every contender) so the second flush can say who is in the way.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..errors import UvctlError
from ..statefile import read_json, write_json
from ..timestamps import now_iso


class FlushLock:
    """Context manager: hold ``flush.lock`` of the data dir, or fail with who holds it."""

    def __init__(self, path=None):
        if path is None:
            from ..paths import FLUSH_LOCK_FILE, ensure_data_dir

            path = ensure_data_dir() / FLUSH_LOCK_FILE
        self.path = Path(path)
        self.holder_path = Path(f"{self.path}.holder")
        self._lock = None

    def __enter__(self):
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0, mode=0o600, preserve_lock_file=True, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            raise UvctlError(
                f"another flush is running on this journal ({self._holder()}); wait for it to finish, "
                f"or stop that process and run 'uvctl flush' again (it resumes where the other stopped)"
            ) from None
        except OSError as exc:  # a read-only or full data dir
            raise UvctlError(f"cannot take the flush lock {self.path}: {exc.strerror or exc}; make the data dir "
                             f"writable (and give it free space), then run 'uvctl flush' again") from None
        self._lock = lock
        try:
            write_json(
                self.holder_path,
                {"Pid": os.getpid(), "Host": socket.gethostname(), "StartedAt": now_iso(), "Command": " ".join(sys.argv[:4])},
                what="flush lock note",
            )
        except BaseException:
            lock.release()
            self._lock = None
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.holder_path.unlink()
        except OSError:
            pass
        self._lock.release()
        self._lock = None
        return False

    def _holder(self) -> str:
        try:
            note = read_json(self.holder_path, default=None, what="flush lock note")
        except UvctlError:
            note = None
        if not isinstance(note, dict):
            return f"lock {self.path} is held; its holder note is missing"
        return f"pid {note.get('Pid')} on {note.get('Host')}, started {note.get('StartedAt')}"
