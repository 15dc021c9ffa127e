"""Timestamps as Ultravisor writes them (JavaScript's ``toISOString``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def now_iso(ago: float = 0.0) -> str:
    """The current UTC time (``ago`` seconds earlier) as Ultravisor writes it:
    ``2026-11-26T22:01:23.365Z``. Two of these compare in time order as text."""
    moment = datetime.now(timezone.utc)
    if ago:
        moment -= timedelta(seconds=ago)
    # isoformat is several times cheaper than strftime (this runs for every journaled write)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
