"""``uvctl beacon status``: the running beacon's own report plus what the journal still holds for delivery."""

from __future__ import annotations

from .state import read_state


def beacon_status() -> dict:
    """``{Known, Running, Connected, BeaconIDs, ..., Pending: {bridge: n}}``; ``Known`` False when no
    beacon ever ran with this data dir. Reads only: nothing is created."""
    data = read_state()
    if data is None:
        return {"Known": False, "Running": False, "Connected": False}
    data["Known"] = True
    data["Connected"] = bool(data.get("Connected")) and data["Running"]
    data["Pending"] = _pending()
    return data


def _pending() -> dict:
    """Per bridge, the journal records its assigned backend has not acknowledged (None: unknown)."""
    from ..paths import JOURNAL_FILE, data_file

    path = data_file(JOURNAL_FILE)
    if not path.exists():
        return {}
    from ..journal import Journal
    from ..journal.retention import acknowledgements

    try:
        with Journal.open(path, read_only=True) as journal:
            return {bridge: (info["Pending"] if info["Assigned"] else journal.pending(bridge, 0))
                    for bridge, info in acknowledgements(journal).items()}
    except Exception:  # a journal another process holds in a long write: the rest of the report stands
        return {}
