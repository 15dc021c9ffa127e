"""Where uvctl keeps its state, and which files it trusts.

The trust checks all live here: the data dir and the state files in it must be uvctl's own
(as ssh's StrictModes asks of ``~/.ssh``), and every file given as input must be a regular
file of bounded size before a byte of it is read.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import sys
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
        path = Path(override).expanduser().absolute()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("uvctl", appauthor=False))
    check_data_dir(path)
    return path


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
    check_data_dir(path)
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


def create_private(path: Path, tighten: bool = True) -> None:
    """Create the SQLite file ``path`` with mode 0600 when it is missing (SQLite gives its -wal
    and -shm files the same mode); an existing one is checked (:func:`check_state_file`, with
    ``tighten`` False only refused, never changed). OSError when it cannot be created."""
    if path.exists():
        check_state_file(path, os.stat(path), "file", tighten)
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another process created it meanwhile
        pass


# ---------------------------------------------------------------------------- trust
#: The largest JSON document read whole: a schema descriptor, a run manifest, a state file.
MAX_DOCUMENT = 64 * 1024 * 1024
#: Owners whose files uvctl trusts: the user it runs as, and root (trusted anyway).
_TRUSTED_OWNERS = (0, os.geteuid()) if hasattr(os, "geteuid") else None


def check_data_dir(path: Path) -> None:
    """Refuse a data dir owned by another user or writable by group or others: whoever can
    write it can swap the assignment and send every record to a database of theirs."""
    from .errors import UvctlError

    try:
        info = os.stat(path)
    except OSError:  # missing (uvctl creates it 0700) or unusable (creating it will say why)
        return
    if _TRUSTED_OWNERS is None or not stat.S_ISDIR(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in _TRUSTED_OWNERS:
        raise UvctlError(f"the data dir {path} belongs to another user (uid {info.st_uid}), who could redirect its "
                         f"records; use a data dir of your own (UVCTL_DATA_DIR), or chown it to yourself if it is yours")
    if mode & 0o022:
        raise UvctlError(f"the data dir {path} is writable by {_who(mode)} (mode {mode:04o}), who could swap its state "
                         f"files and redirect its records; run 'chmod go-w {path}' (uvctl creates it 0700)")


def check_state_file(path, info: os.stat_result, what: str, tighten: bool = True) -> None:
    """Refuse a state file owned by another user (its content could send records anywhere);
    tighten one of ours that group or others may read or write to 0600, with a warning (unless
    ``tighten`` is False: a file not yet known to be uvctl's, or a read-only command)."""
    from .errors import UvctlError

    if _TRUSTED_OWNERS is None:
        return
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in _TRUSTED_OWNERS:
        raise UvctlError(f"{what} {path} belongs to another user (uid {info.st_uid}), who could have written anything "
                         f"into it; check its content, then 'chown' it to yourself (or remove it), and see who else "
                         f"can write the data dir")
    if mode & 0o077 and tighten:
        try:
            os.chmod(path, 0o600)
            done = "it is 0600 now"
        except OSError as exc:
            done = f"tightening it failed ({exc.strerror}): run 'chmod 600 {path}'"
        print(f"uvctl: warning: {what} {path} was open to {_who(mode, 0o077)} (mode {mode:04o}); {done}",
              file=sys.stderr)


def _who(mode: int, bits: int = 0o022) -> str:
    group, others = mode & bits & 0o070, mode & bits & 0o007
    return "group and others" if group and others else "group" if group else "others"


def input_file(path, what: str, max_bytes: int | None = MAX_DOCUMENT, missing: str | None = None) -> Path:
    """``path`` (given as ``what``, e.g. ``--schema``) checked before it is read: a regular file
    (a FIFO or a device such as /dev/zero would be read for ever) of at most ``max_bytes``
    (None: any size, for a file read as a stream). A UsageError says what is wrong."""
    path = Path(path)
    info = input_stat(path, what, missing)
    check_input(path, info, what, max_bytes)
    return path


def input_stat(path: Path, what: str, missing: str | None = None) -> os.stat_result:
    """``os.stat(path)``; every OSError (missing: ``missing`` when given, a name too long, no
    permission) as a UsageError."""
    from .errors import UsageError

    try:
        return os.stat(path)
    except FileNotFoundError:
        raise UsageError(missing or f"{what} {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise UsageError(f"{what} {path}: {NAME_TOO_LONG}") from None
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None


NAME_TOO_LONG = "a name in it is longer than the file system allows (255 bytes per name); check the path"


def name_too_long(path) -> bool:
    """True when the file system refuses ``path`` because a name in it is too long."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ENAMETOOLONG
    return False


def check_input(path, info: os.stat_result, what: str, max_bytes: int | None = MAX_DOCUMENT) -> None:
    """The file-type and size check of :func:`input_file` on a stat result already taken."""
    from .errors import UsageError

    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, a socket or a device)"
        raise UsageError(f"{what} {path} is {kind}; give a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UsageError(f"{what} {path} is {info.st_size} bytes long, over the {max_bytes} bytes uvctl reads of such "
                         f"a file; is it the right file?")
