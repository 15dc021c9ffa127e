"""Peak memory of ``uvctl flush`` over 1M journal records (target: < 200 MB).

The flush runs as its own process (``python -m uvctl flush``) into the SQLite default target,
and its peak resident set size is read from the kernel when it exits. Usage:

    .venv/bin/python benchmarks/bench_flush_memory.py [--items 200000] [--batch-size N]

Each work item gives 5 records (see bench_flush_throughput.py): 200000 items = 1M records.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_flush_throughput import filled_journal  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200000)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    with filled_journal(args.items, "uvctl-bench-mem-") as (_folder, journal):
        from uvctl import assignment

        records = journal.count_after("Queue", 0)
        assignment.assign("sql", {})
        command = [sys.executable, "-m", "uvctl", "flush", "--json"]
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"flush: {records} records in {elapsed:.0f} s = {records / elapsed:,.0f} records/s")
        print(f"flush: peak RSS {peak_mb:.0f} MB (target < 200 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
