"""The high-water-mark file: per bridge and backend identity, the last journal seq it acknowledged.

``persistence-bridge-hwm.json`` in the data dir: ``{"Queue": {identity: seq}, "Manifest": {...}}``.
Every change is a read-modify-write under a file lock, written atomically (0600), and marks
only move forward, so concurrent flushes and write-throughs never lower one.
"""

from __future__ import annotations

from pathlib import Path

from ..actions import MANIFEST, QUEUE
from ..errors import UsageError, UvctlError
from ..statefile import file_lock, read_json, write_json

WHAT = "high-water-mark file"
BRIDGES = (QUEUE, MANIFEST)


class HighWaterMarks:
    """Read and advance the marks in ``path`` (default: the data dir's HWM file)."""

    def __init__(self, path=None):
        if path is None:
            from ..paths import HWM_FILE, data_file

            path = data_file(HWM_FILE)
        self.path = Path(path)

    def _lock(self):
        return file_lock(self.path, what=WHAT)

    def load(self) -> dict:
        """The whole document, ``{Queue: {...}, Manifest: {...}}``; an error naming a corrupt file."""
        data = read_json(self.path, default=None, what=WHAT)
        if data is None:
            return {bridge: {} for bridge in BRIDGES}
        if not isinstance(data, dict) or any(not isinstance(data.get(b, {}), dict) for b in BRIDGES):
            raise UvctlError(f"{WHAT} {self.path} is corrupt (expected {{\"Queue\": {{...}}, \"Manifest\": {{...}}}}); fix or remove it by hand")
        for bridge in BRIDGES:
            data.setdefault(bridge, {})
        return data

    def get(self, bridge: str, identity: str) -> int:
        """The mark of ``identity`` on ``bridge``; 0 when it never acknowledged anything."""
        return self._value(self.load(), bridge, identity)

    def advance(self, bridge: str, identity: str, seq: int) -> int:
        """Move the mark forward to ``seq`` (never back); the mark after the call."""
        return self._change(bridge, identity, seq, expected=None)[1]

    def advance_from(self, bridge: str, identity: str, expected: int, seq: int) -> bool:
        """Move the mark to ``seq`` only if it is exactly ``expected``; True when it moved.

        Write-through uses it: a record delivered on its own only counts when every record
        before it was delivered too, so the mark never jumps over a pending one.
        """
        return self._change(bridge, identity, seq, expected=expected)[0]

    def _change(self, bridge: str, identity: str, seq: int, expected: int | None) -> tuple[bool, int]:
        _check_bridge(bridge)
        seq = int(seq)
        with self._lock():
            data = self.load()
            current = self._value(data, bridge, identity)
            if (expected is not None and current != int(expected)) or seq <= current:
                return False, current
            data[bridge][identity] = seq
            # A mark that falls back to its previous value after a power loss only makes the
            # next flush resend what the backend already has (it answers AlreadyPresent), so
            # the directory is not fsynced: one fsync less on every write-through and batch.
            write_json(self.path, data, what=WHAT, keep_rename=False)
            return True, seq

    def _value(self, data: dict, bridge: str, identity: str) -> int:
        _check_bridge(bridge)
        value = data[bridge].get(identity, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UvctlError(
                f"{WHAT} {self.path} is corrupt: {bridge} mark of {identity!r} is {value!r}, not a sequence number; "
                f"fix or remove it by hand (removing it makes the next flush resend everything, which is safe)"
            )
        return value


def _check_bridge(bridge: str) -> None:
    if bridge not in BRIDGES:
        raise UsageError(f"unknown bridge {bridge!r}; use one of {', '.join(BRIDGES)}")
