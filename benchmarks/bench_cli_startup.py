"""Process wall time of `uvctl --help` and `uvctl plugins`, next to `python -c pass` and `alembic --help`.

Run: .venv/bin/python benchmarks/bench_cli_startup.py [--runs N]
Target: `uvctl --help` under 150 ms (heavy libraries load only inside the commands that need them).
`alembic --help` is measured when alembic is installed (pip install alembic; it is not a dependency).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_HELP_MS = 150.0


def median_ms(argv: list[str], runs: int, env: dict) -> float:
    """Median wall time in ms of running ``argv`` ``runs`` times (after one warm-up run)."""
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    uvctl = shutil.which("uvctl", path=str(bindir)) or "uvctl"
    alembic = shutil.which("alembic", path=str(bindir))
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "UVCTL_DATA_DIR": data_dir}
        rows = [
            ("python -c pass", median_ms([sys.executable, "-c", "pass"], args.runs, env)),
            ("uvctl --help", median_ms([uvctl, "--help"], args.runs, env)),
            ("uvctl plugins", median_ms([uvctl, "plugins"], args.runs, env)),
        ]
        if alembic:
            rows.append(("alembic --help", median_ms([alembic, "--help"], args.runs, env)))
    baseline = rows[0][1]
    print(f"median of {args.runs} runs each (ms)")
    for name, ms in rows:
        print(f"  {name:<16} {ms:8.1f} ms   {ms / baseline:5.2f}x python startup")
    if not alembic:
        print("  alembic --help   skipped: alembic is not installed (pip install alembic to compare)")
    help_ms = rows[1][1]
    verdict = "meets" if help_ms < TARGET_HELP_MS else "MISSES"
    print(f"uvctl --help {help_ms:.1f} ms {verdict} the {TARGET_HELP_MS:.0f} ms target")
    if alembic:
        print(f"uvctl --help / alembic --help = {help_ms / rows[3][1]:.2f}")


if __name__ == "__main__":
    main()
