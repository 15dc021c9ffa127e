"""`uvctl schema ensure` per process on an in-sync SQLite database, and the in-process cost.

Run: .venv/bin/python benchmarks/bench_schema_ensure.py [--runs N]
Target: under 0.5 s per process when the database is already in sync.
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

TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    uvctl = shutil.which("uvctl", path=str(Path(sys.executable).parent)) or "uvctl"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "UVCTL_DATA_DIR": data_dir}
        env.pop("UVCTL_DB_URL", None)
        start = time.perf_counter()
        subprocess.run([uvctl, "schema", "ensure"], env=env, check=True, stdout=subprocess.DEVNULL)
        fresh = time.perf_counter() - start
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = subprocess.run([uvctl, "schema", "ensure", "--json"], env=env, check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            assert '"MigrationStatements": []' in out.stdout, "the database should be in sync"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        python = time.perf_counter() - start

        os.environ["UVCTL_DATA_DIR"] = data_dir
        from uvctl.paths import default_db_url
        from uvctl.schema import ensure_schema

        url = default_db_url()
        in_process = []
        for _ in range(args.runs):
            start = time.perf_counter()
            assert ensure_schema(url).in_sync
            in_process.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"uvctl schema ensure, fresh SQLite (creates 4 tables, 11 indexes): {fresh * 1000:.0f} ms")
    print(f"uvctl schema ensure, in sync, median of {args.runs} processes:  {median * 1000:.0f} ms "
          f"({median / python:.1f}x python startup {python * 1000:.0f} ms)")
    print(f"ensure_schema() in sync, in process, median:                {statistics.median(in_process) * 1000:.1f} ms")
    verdict = "meets" if median < TARGET_S else "MISSES"
    print(f"{verdict} the {TARGET_S * 1000:.0f} ms per-process target")


if __name__ == "__main__":
    main()
