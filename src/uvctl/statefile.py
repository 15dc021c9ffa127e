"""JSON state files written atomically (temp file, fsync, rename) with mode 0600."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import UvctlError


def read_json(path: Path, default=None, what: str = "state file"):
    """Load ``path``; ``default`` when it does not exist; a clear error when it is corrupt."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise UvctlError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UvctlError(f"{what} {path} is corrupt (not UTF-8 text at byte {exc.start}); fix or remove it by hand") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UvctlError(
            f"{what} {path} is corrupt (line {exc.lineno} column {exc.colno}: {exc.msg}); "
            f"fix or remove it by hand"
        ) from exc


def write_json(path: Path, data, what: str = "state file") -> None:
    """Write ``data`` as tab-indented JSON to ``path`` atomically, mode 0600."""
    path = Path(path)
    text = json.dumps(data, indent="\t", sort_keys=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise UvctlError(f"cannot write {what} {path}: {exc.strerror or exc}; nothing was changed") from exc


@contextlib.contextmanager
def file_lock(path: Path, what: str = "state file", timeout: float = 60):
    """Hold the OS file lock ``<path>.lock``; an OSError (read-only or full disk) is one clear line."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.lock", timeout=timeout, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise UvctlError(f"the {what} {path} stayed locked by another uvctl process for {timeout:g} s; "
                         f"try again when it is done") from None
    except OSError as exc:
        raise UvctlError(f"cannot lock the {what} {path}: {exc.strerror or exc}; make the data dir writable "
                         f"(and give it free space), nothing was changed") from None
    try:
        yield
    finally:
        lock.release()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
