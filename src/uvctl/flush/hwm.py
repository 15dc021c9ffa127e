"""The high-water-mark file: per bridge and backend identity, the last journal seq it acknowledged.

``persistence-bridge-hwm.json`` in the data dir: ``{"Queue": {identity: seq}, "Manifest": {...}}``.
Every change is a read-modify-write under a file lock, written atomically (0600). Marks only
move forward, except when a replay sets one back to start over (:meth:`HighWaterMarks.rewind`);
deliveries move them under the bridge's delivery lock (:mod:`uvctl.flush.delivery`).
"""

from __future__ import annotations

from pathlib import Path

from ..actions import MANIFEST, QUEUE
from ..errors import UsageError, UvctlError
from ..statefile import file_lock, read_json, write_json

WHAT = "high-water-mark file"
_MISSING = object()
BRIDGES = (QUEUE, MANIFEST)


class HighWaterMarks:
    """Read and advance the marks in ``path`` (default: the data dir's HWM file).

    With ``journal_id`` (:attr:`uvctl.journal.Journal.journal_id`), marks recorded for another
    journal file count as none (everything of this journal is pending) and the next change
    replaces them: a journal moved away and started anew must not inherit the marks of the
    old one, which would hide its records from every flush (and let prune delete them).

    With ``journal`` (which gives the id too), a mark above the journal's last seq of its
    bridge (which pruning never lowers) cannot be true and is reported as corrupt by
    :meth:`get`: trusted, it would hide every later record from flush and let prune delete them.
    """

    def __init__(self, path=None, journal_id: str | None = None, journal=None):
        if path is None:
            from ..paths import HWM_FILE, data_file

            path = data_file(HWM_FILE)
        self.path = Path(path)
        self.journal = journal
        self.journal_id = journal.journal_id if journal is not None and journal_id is None else journal_id

    def _lock(self):
        return file_lock(self.path, what=WHAT)

    def load(self) -> dict:
        """The whole document, ``{Queue: {...}, Manifest: {...}}``; an error naming a corrupt file."""
        data = read_json(self.path, default=_MISSING, what=WHAT)
        if data is _MISSING:
            data = {}
        elif not isinstance(data, dict) or any(not isinstance(data.get(b, {}), dict) for b in BRIDGES) \
                or not isinstance(data.get("Journal", ""), str):
            raise UvctlError(f"{WHAT} {self.path} is corrupt (expected {{\"Queue\": {{...}}, \"Manifest\": {{...}}}}); fix or remove it by hand")
        if self.journal_id and data.get("Journal", self.journal_id) != self.journal_id:
            data = {}  # made for another journal file
        for bridge in BRIDGES:
            data.setdefault(bridge, {})
        if self.journal_id:
            data["Journal"] = self.journal_id
        return data

    def get(self, bridge: str, identity: str) -> int:
        """The mark of ``identity`` on ``bridge``; 0 when it never acknowledged anything."""
        value = self._value(self.load(), bridge, identity)
        if value and self.journal is not None:
            last = self.journal.last_seq(bridge)
            if value > last:
                raise self._corrupt(bridge, identity, value, f"past the journal's last {bridge} record (seq {last})")
        return value

    def advance(self, bridge: str, identity: str, seq: int) -> int:
        """Move the mark forward to ``seq`` (never back); the mark after the call."""
        return self._change(bridge, identity, seq)[1]

    def rewind(self, bridge: str, identity: str, seq: int) -> int:
        """Set the mark back to ``seq`` (a replay starts over); the mark after the call.

        The one way a mark goes down: called under the bridge's delivery lock, so no
        delivery is between reading the mark and moving it.
        """
        return self._change(bridge, identity, seq, backwards=True)[1]

    def _change(self, bridge: str, identity: str, seq: int, backwards: bool = False) -> tuple[bool, int]:
        _check_bridge(bridge)
        seq = int(seq)
        with self._lock():
            data = self.load()
            current = self._value(data, bridge, identity)
            if seq == current or (seq < current) != backwards:
                return False, current
            data[bridge][identity] = seq
            # A mark that falls back to its previous value after a power loss only makes the
            # next flush resend what the backend already has (it answers AlreadyPresent), so
            # the directory is not fsynced: one fsync less on every write-through and batch.
            # A rewind is the exception: falling back above it would hide the records a
            # replay had not re-sent yet.
            write_json(self.path, data, what=WHAT, keep_rename=backwards)
            return True, seq

    def _value(self, data: dict, bridge: str, identity: str) -> int:
        _check_bridge(bridge)
        value = data[bridge].get(identity, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._corrupt(bridge, identity, value, "not a sequence number")
        return value

    def _corrupt(self, bridge: str, identity: str, value, what: str) -> UvctlError:
        return UvctlError(
            f"{WHAT} {self.path} is corrupt: {bridge} mark of {identity!r} is {value!r}, {what}; "
            f"fix or remove it by hand (removing it makes the next flush resend everything, which is safe)"
        )


def _check_bridge(bridge: str) -> None:
    if bridge not in BRIDGES:
        raise UsageError(f"unknown bridge {bridge!r}; use one of {', '.join(BRIDGES)}")
