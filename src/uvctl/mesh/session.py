"""The coordinator session cookies uvctl keeps between runs.

``<data dir>/coordinator-sessions.json`` (mode 0600, written atomically) maps a
coordinator's base URL to ``{"SessionID", "UserName", "SavedAt"}``. The SessionID is a
secret: it is only ever sent back to the coordinator it came from, never printed.
"""

from __future__ import annotations

from pathlib import Path

SESSIONS_FILE = "coordinator-sessions.json"


def sessions_path() -> Path:
    """``<data dir>/coordinator-sessions.json``."""
    from ..paths import data_dir

    return data_dir() / SESSIONS_FILE


class SessionCache:
    """Cached session cookies, one per coordinator base URL."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else sessions_path()

    def _load(self) -> dict:
        from ..statefile import read_json

        data = read_json(self.path, default={}, what="coordinator session cache")
        return data if isinstance(data, dict) else {}

    def get(self, base_url: str) -> dict | None:
        """``{"SessionID", "UserName", "SavedAt"}`` for ``base_url``, or None."""
        entry = self._load().get(base_url)
        return entry if isinstance(entry, dict) and isinstance(entry.get("SessionID"), str) and entry["SessionID"] else None

    def save(self, base_url: str, session_id: str, user: str | None) -> None:
        """Remember the session cookie of ``base_url`` (replacing an older one)."""
        from datetime import datetime, timezone

        from ..statefile import write_json

        data = self._load()
        saved = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data[base_url] = {"SessionID": session_id, "UserName": user, "SavedAt": saved}
        write_json(self.path, data, what="coordinator session cache")

    def forget(self, base_url: str) -> bool:
        """Drop the cached session of ``base_url``; True when there was one."""
        from ..statefile import write_json

        data = self._load()
        if base_url not in data:
            return False
        del data[base_url]
        write_json(self.path, data, what="coordinator session cache")
        return True
