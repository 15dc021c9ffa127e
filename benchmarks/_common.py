"""Helpers the benchmark scripts share (run them as scripts: ``python benchmarks/bench_x.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_test_module(name: str, relative_path: str):
    """Import a file of the test suite (a stub or a harness, e.g. ``tests/meadowproxy/coordinator_stub.py``) as ``name``.

    Registered in ``sys.modules`` first, so modules that import it by that name find it.
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
