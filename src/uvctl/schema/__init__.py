"""The schema service: descriptor → model; introspect; diff; forward-only filter; DDL."""

from __future__ import annotations

import json
from importlib import resources

#: The four UV tables, in the order they are created.
UV_TABLES = ("UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest")


def builtin_descriptor() -> dict:
    """Ultravisor's persistence schema descriptor, shipped as package data."""
    return json.loads(resources.files(__package__).joinpath("ultravisor.json").read_text("utf-8"))


def table_columns(descriptor: dict | None = None) -> dict[str, list[dict]]:
    """``{Scope: [{"Column", "Type", "Size"}, ...]}`` for every table of the descriptor."""
    descriptor = descriptor or builtin_descriptor()
    return {table["Scope"]: list(table["Schema"]) for table in descriptor["Tables"]}
