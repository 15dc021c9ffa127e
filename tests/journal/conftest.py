"""Fixtures of the journal tests: an open journal, the example Ultravisor data dir, a test backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_example_builder():
    """The ``scripts/make_example_datadir.py`` module."""
    spec = importlib.util.spec_from_file_location("make_example_datadir", ROOT / "scripts" / "make_example_datadir.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def journal(data_dir):
    """The data dir's journal, opened (and closed after the test)."""
    from uvctl.journal import Journal

    with Journal.open() as opened:
        yield opened


@pytest.fixture
def example_datadir(tmp_path):
    """A freshly generated example Ultravisor data dir (``<dir>/data``, ``<dir>/staging``)."""
    return load_example_builder().build(tmp_path / "uv-example", items=24, seed=7)


def run_threads(work, count: int) -> list:
    """Run ``work(k)`` for k in 0..count-1, each in its own thread, and wait for all; the
    exceptions they raised (a thread's exception is otherwise lost)."""
    import threading

    errors: list = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
