#!/usr/bin/env python3
"""Import throughput: a generated Ultravisor data dir into an empty journal, then again.

    .venv/bin/python benchmarks/bench_journal_import.py [--items 20000]

Prints source rows per second for the first import (everything journaled) and for the
re-import (everything recognised and skipped), and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from uvctl.journal import Journal  # noqa: E402
from uvctl.journal.importer import import_path  # noqa: E402


def builder():
    spec = importlib.util.spec_from_file_location("make_example_datadir", ROOT / "scripts" / "make_example_datadir.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Journal import throughput.")
    parser.add_argument("--items", type=int, default=20000, help="work items in the generated data dir (default 20000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uvctl-bench-import-", dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        source = builder().build(folder / "uv", items=args.items, seed=11)
        print(f"generated {args.items} work items in {time.perf_counter() - start:.1f} s")
        with Journal.open(folder / "journal.sqlite") as journal:
            for label in ("first import", "re-import"):
                start = time.perf_counter()
                report = import_path(journal, source)
                elapsed = time.perf_counter() - start
                rows = sum(report["Read"].values())
                print(f"{label:<13} {rows} source rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
                      f"journaled {report['Journaled']}, skipped {report['Skipped']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
