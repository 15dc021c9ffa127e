"""Fixtures for the beacon tests: the coordinator stub, and ``uvctl beacon run`` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from beacon_coordinator import CoordinatorStub  # noqa: E402


@pytest.fixture
def stub():
    """A coordinator stub on a free loopback port (see coordinator_stub.py)."""
    coordinator = CoordinatorStub()
    yield coordinator
    coordinator.close()


class BeaconProcess:
    """``uvctl beacon run`` in its own process, its stderr (the log) collected in a file."""

    def __init__(self, data_dir: Path, coordinator_url: str, *args, env: dict | None = None):
        self.log_path = data_dir.parent / f"beacon-{os.getpid()}-{id(self)}.log"
        self._log = open(self.log_path, "w")
        environ = {**os.environ, "UVCTL_DATA_DIR": str(data_dir), **(env or {})}
        command = [sys.executable, "-m", "uvctl", "beacon", "run", "--coordinator", coordinator_url, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log, env=environ,
                                        stdin=subprocess.DEVNULL)

    @property
    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """``kill -9``."""
        self.process.kill()
        self.process.wait(30)
        self._log.close()


@pytest.fixture
def beacon(data_dir):
    """``beacon(url, *args)`` starts ``uvctl beacon run``; every one started is stopped afterwards."""
    started = []

    def start(url: str, *args, env: dict | None = None) -> BeaconProcess:
        process = BeaconProcess(data_dir, url, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()
