"""JSON state files written atomically (temp file, fsync, rename) with mode 0600."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import UvctlError
from .paths import MAX_DOCUMENT, check_input, check_state_file


#: ``{path: (identity, text)}`` of the state files read so far; see :func:`_read_text`.
_TEXTS: dict = {}


def read_json(path: Path, default=None, what: str = "state file"):
    """Load ``path``; ``default`` when it does not exist; a clear error when it is corrupt."""
    if not isinstance(path, Path):
        path = Path(path)
    try:
        text = _read_text(path, what)
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise UvctlError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UvctlError(f"{what} {path} is corrupt (not UTF-8 text at byte {exc.start}); fix or remove it by hand") from None
    try:
        return loads(text)
    except ValueError as exc:
        raise UvctlError(f"{what} {path} is corrupt ({exc}); fix or remove it by hand") from None


def loads(text: str, **options):
    """``json.loads``, with each way it refuses a text as a ValueError saying where and why in
    a few words: bad JSON, a number of more than 4300 digits, nesting a thousand levels deep."""
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply (a thousand levels or more)") from None
    except ValueError as exc:  # int(): the text holds an integer of more digits than Python converts
        if "digits" not in str(exc):
            raise
        raise ValueError("a number of more than 4300 digits, more than any column holds") from None


def _read_text(path: Path, what: str) -> str:
    """The text of ``path``, read again only when the file changed.

    Every bridge write checks the assignment and the high-water mark, so reading both files
    each time was a quarter of a write's cost. A state file only changes by being replaced
    (:func:`write_json` renames a new file over it), so its inode, size and mtime tell
    whether the text read last time is still the file's. (An edit in place that keeps the
    size within one tick of the filesystem's clock would go unseen; nothing writes so.)
    """
    key = str(path)
    info = os.stat(key)
    check_input(path, info, what, MAX_DOCUMENT)  # not a FIFO or /dev/zero put in its place
    check_state_file(path, info, what)
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    cached = _TEXTS.get(key)
    if cached is not None and cached[0] == identity:
        return cached[1]
    with open(key, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())  # the identity of what is read, should it change meanwhile
        text = handle.read()
    _TEXTS[key] = ((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns), text)
    return text


def write_json(path: Path, data, what: str = "state file", keep_rename: bool = True) -> None:
    """Write ``data`` as tab-indented JSON to ``path`` atomically, mode 0600.

    The new text is fsynced before it replaces the old, so after a power loss the file holds
    the old text or the new, never a torn one. ``keep_rename=False`` skips the fsync of the
    directory that makes the replacement itself survive a power loss: for files where falling
    back to the previous version is harmless (a high-water mark only means records are resent).
    """
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
        if keep_rename:
            _fsync_dir(path.parent)
    except OSError as exc:
        raise UvctlError(f"cannot write {what} {path}: {exc.strerror or exc}; nothing was changed") from exc


@contextlib.contextmanager
def file_lock(path: Path, what: str = "state file", timeout: float = 60, busy: str | None = None):
    """Hold the OS file lock ``<path>.lock`` (creating the file's directory first); an OSError
    (read-only or full disk) is one clear line, and so is a timeout (``busy`` when given)."""
    from filelock import FileLock, Timeout

    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UvctlError(f"cannot create the data dir {folder}: {exc.strerror or exc}") from None
    lock = FileLock(f"{path}.lock", timeout=timeout, mode=0o600, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        if busy:
            raise UvctlError(busy) from None
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


def process_alive(pid: int) -> bool:
    """True while the process ``pid`` (the writer of a state or lock note) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
