"""A JSONL file of bridge actions: ``{"Action": "QP_...", "Settings": {...}}`` per line.

A line is identified by the file's content up to and including it (a running hash of the
lines), so a re-import of the file, or of a copy of it under another name, skips every line
imported before, and a longer version of it brings only its new lines. The same line in
another history (another day's file) is a different line: it is imported. So is every line of
a file whose first lines were cut: updates then converge again, and events carrying an
``EventGUID`` are recognised by it, but an event without one gets a UUIDv5 of its key, and
comes in again. Lines imported by uvctl before this scheme are still recognised by their old
key (content and occurrence). The first bad line is an error naming it; nothing from the file
is then imported.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from ...errors import UsageError
from ...paths import MAX_DOCUMENT, input_file
from ...statefile import loads
from ..normalize import normalize_action
from . import IMPORT_NAMESPACE, Changes


class JsonlSource:
    """Stream the actions of a JSONL file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.count = 0
        self._handle = None
        self._lines = None  # lines read by the first pass
        self._last_line = 0
        self.changes = Changes()

    def __enter__(self):
        # a pipe or a device is read twice (check, then journal): it cannot be; any size is fine (streamed)
        input_file(self.path, "PATH", max_bytes=None)
        try:
            self._handle = self.path.open("rb")
            head = self._handle.read(16)
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror}") from exc
        if head == b"SQLite format 3\x00":
            self._handle.close()
            raise UsageError(f"{self.path} is a SQLite database, not a JSONL file; to import Ultravisor's queue "
                             f"database, pass its data directory (the folder that holds beacon/)")
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def total(self) -> int:
        """How many actions the file holds (its non-blank lines), for a progress bar."""
        with self.path.open("rb") as handle:
            return sum(1 for line in _bounded_lines(handle) if line.strip())

    def report(self) -> dict:
        return {"Source": str(self.path), "Kind": "jsonl", "Read": {"Actions": self.count}, **self.changes.report()}

    def pairs(self):
        """``(action, source_key)`` per non-blank line, in file order. Each call reads the file
        from its start, and no further than the first call did (lines appended meanwhile
        wait for the next import, unchecked lines never slip in)."""
        history = hashlib.sha256()  # of every line so far: the key of a line is its history
        seen: dict = {}  # line digest -> occurrences: the key before 0.1 kept lines by (content, n)
        self._handle.seek(0)
        self.count = 0
        self.changes.reset()
        for number, raw in enumerate(_bounded_lines(self._handle), start=1):
            if self._lines is not None and number > self._lines:
                break
            self._last_line = number
            if len(raw) > MAX_DOCUMENT:
                raise UsageError(f"{self.path} line {number} is longer than {MAX_DOCUMENT} bytes, more than any "
                                 f"record can hold; is it a JSONL file? nothing was imported")
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte order mark is no error
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"{self.path} line {number} is not UTF-8 text ({exc.reason} at column {exc.start + 1}); "
                    f"save the file as UTF-8, nothing was imported"
                ) from None
            if line.strip():
                self.count += 1
                try:
                    action = self._action(number, line, history, seen)
                except RecursionError:  # deep enough for json.dumps though not for json.loads
                    raise UsageError(f"{self.path} line {number}: JSON nested too deeply for uvctl (a thousand levels "
                                     f"or more); fix the line, nothing was imported") from None
                yield action
        if self._lines is None:
            self._lines = self._last_line

    def _action(self, number: int, line: str, history, seen: dict):
        where = f"{self.path} line {number}"
        try:
            entry = loads(line, parse_constant=_not_json)
        except ValueError as exc:
            raise UsageError(f"{where}: not valid JSON ({str(exc).replace(' at line 1,', ' at')}); fix the line, "
                             f"nothing was imported") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("Action"), str):
            hint = (" (this looks like Ultravisor's queue-journal.jsonl, which is not a history: import the data directory instead)"
                    if isinstance(entry, dict) and {"t", "op"} <= set(entry) else "")
            raise UsageError(f'{where}: expected {{"Action": "QP_...", "Settings": {{...}}}}{hint}; nothing was imported')
        name, settings = entry["Action"], entry.get("Settings")
        canonical = json.dumps([name, settings], sort_keys=True, separators=(",", ":"), default=str)
        if "\\ud" in line.lower():  # an escaped surrogate: fine in a pair, not alone (no text holds one)
            try:
                json.dumps(settings, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError(f"{where}: holds a \\u escape of half a character (a lone surrogate such as \\ud800), "
                                 f"which is not text; fix the line, nothing was imported") from None
        digest = hashlib.sha256(canonical.encode("utf-8")).digest()
        history.update(digest)
        seen[digest] = seen.get(digest, 0) + 1
        # the key first, then the key journals imported by earlier versions know this line by
        key = (f"jsonl|{uuid.uuid5(IMPORT_NAMESPACE, history.hexdigest())}",
               f"jsonl|{uuid.uuid5(IMPORT_NAMESPACE, canonical)}|{seen[digest]}")
        if name == "QP_AppendEvent" and isinstance(settings, dict) and isinstance(settings.get("Event"), dict):
            event = settings["Event"]
            if not event.get("EventGUID"):
                guid = uuid.uuid5(IMPORT_NAMESPACE, key[0])
                settings = {**settings, "Event": {**event, "EventGUID": str(guid)}}
        try:
            action = normalize_action(name, settings, notes=(notes := []))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}; nothing was imported") from None
        self.changes.add(where, notes)
        if not action.is_write:
            raise UsageError(f"{where}: {name} is a read action; only write actions can be imported, nothing was imported")
        return action, key


def _bounded_lines(handle):
    """The lines of ``handle``, each cut after MAX_DOCUMENT + 1 bytes: a file without line breaks
    must not be read into memory whole."""
    return iter(lambda: handle.readline(MAX_DOCUMENT + 1), b"")


def _not_json(name: str):
    """``NaN``, ``Infinity``, ``-Infinity``: Python's json module reads them, JSON has none."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)
