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


def load_descriptor(path=None) -> dict:
    """The validated descriptor at ``path`` (the built-in one when None); ``UsageError`` lists every problem."""
    from .descriptor import load_descriptor as _load

    return _load(path)


def ensure_schema(url: str, descriptor: dict | None = None, execute: bool = True):
    """Make the database at ``url`` match ``descriptor``, forward only → ``EnsureReport``."""
    from .ensure import ensure_schema as _ensure

    return _ensure(url, descriptor, execute)


def introspect_schema(url: str, descriptor: dict | None = None) -> dict:
    """What exists in the database for each descriptor table, and what is missing."""
    from .ensure import introspect_schema as _introspect

    return _introspect(url, descriptor)


def __getattr__(name: str):
    # EnsureReport lives with the engine code; importing it lazily keeps this package light
    if name == "EnsureReport":
        from .ensure import EnsureReport

        return EnsureReport
    raise AttributeError(name)
