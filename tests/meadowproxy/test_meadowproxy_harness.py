"""The Node harness fails loudly (never skips) when it cannot be installed."""

import sys

import pytest


def test_install_without_npm_is_an_error_not_a_skip(tmp_path, monkeypatch):
    harness = sys.modules["meadow_harness"]  # loaded by conftest.py
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: install must run
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    with pytest.raises(harness.HarnessError, match="npm is not installed"):
        harness.install()
    assert harness.cache_dir().parent == tmp_path / "uvctl-tests"
