"""uvctl's conformance kit for backend plugins.

Subclass :class:`BackendConformance` in a test module and give it a ``backend`` fixture
that yields a configured :class:`uvctl.backend.Backend` on an empty target::

    import pytest
    from uvctl import host
    from uvctl.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend(self, tmp_path):
            handle = host.open_backend("mybackend", {"Path": str(tmp_path / "data")})
            yield handle
            host.close(handle)

The kit's fixtures (``uvctl_data_dir``, ``uvctl_fault``) come from the pytest plugin
``uvctl.testing.pytest_plugin``, which pytest loads automatically once uvctl is installed.
See docs/plugins.md.
"""

from __future__ import annotations

__all__ = ["BackendConformance", "records"]


def __getattr__(name):
    # Imported lazily: this package is imported by pytest at startup (through the pytest
    # plugin), and the test class should get pytest's assertion rewriting.
    if name == "BackendConformance":
        import pytest

        pytest.register_assert_rewrite("uvctl.testing.conformance")
        from .conformance import BackendConformance

        return BackendConformance
    if name == "records":
        import importlib

        return importlib.import_module(f"{__name__}.records")
    raise AttributeError(name)
