#!/usr/bin/env python3
"""The cost of uvctl's plugin machinery, measured with the memory backend (no I/O behind it).

    .venv/bin/python benchmarks/bench_plugins_memory.py [--items 4000] [--batch 500]

Prints:

- ``dispatch``: actions/s through ``host.dispatch`` (pluggy call + normalize per action) into
  the memory store, batches of ``--batch``; next to ``store.apply`` called directly, which
  is the same work without the plugin host (their ratio is the host's overhead);
- ``flush``: journal records/s that ``uvctl.flush`` delivers to the memory backend (journal
  reads, batching, HWM writes), next to the same flush into the sql backend on a SQLite file
  (the share of a real flush that is machinery, not database work).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def history(items: int):
    from uvctl.testing import records

    for n in range(items):
        h = f"wi-{n:07d}"
        yield "QP_UpsertWorkItem", {"WorkItem": records.work_item(h, n)}
        yield "QP_AppendEvent", {"Event": records.event(h, 2 * n + 1)}
        yield "QP_InsertAttempt", {"Attempt": records.attempt(h, 1)}
        yield "QP_AppendEvent", {"Event": records.event(h, 2 * n + 2, EventType="dispatched")}
        yield "QP_UpdateWorkItem", {"WorkItemHash": h, "Patch": {"Status": "Complete"}}


def bench_dispatch(items: int, batch: int) -> None:
    import uvctl_memory

    from uvctl import host
    from uvctl.actions import Action

    actions = [Action(name, settings) for name, settings in history(items)]
    backend = host.open_backend("memory", {"Store": "bench-dispatch"})
    started = time.perf_counter()
    for i in range(0, len(actions), batch):
        host.dispatch(backend, actions[i : i + batch])
    hosted = len(actions) / (time.perf_counter() - started)
    store = uvctl_memory.MemoryStore()
    started = time.perf_counter()
    for action in actions:
        store.apply(action.name, action.settings)
    direct = len(actions) / (time.perf_counter() - started)
    uvctl_memory.drop_store("bench-dispatch")
    print(f"dispatch: {hosted:,.0f} actions/s through host.dispatch, {direct:,.0f}/s store.apply direct "
          f"(host overhead ratio {direct / hosted:.2f}x), {len(actions):,} actions")


def bench_flush(items: int, batch: int, backend_name: str, options: dict) -> float:
    from uvctl import assignment, flush
    from uvctl.journal import Journal, normalize_action

    with Journal.open() as journal:
        journal.record_many([normalize_action(n, s) for n, s in history(items)])
        total = journal.last_seq()
    assignment.assign(backend_name, options)
    started = time.perf_counter()
    flush.flush(batch_size=batch)
    rate = total / (time.perf_counter() - started)
    print(f"flush -> {backend_name}: {rate:,.0f} records/s ({total:,} records, batch {batch})")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4000, help="work items (5 records each)")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    bench_dispatch(args.items, args.batch)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["UVCTL_DATA_DIR"] = str(Path(folder) / "memory")
        memory = bench_flush(args.items, args.batch, "memory", {"Store": "bench-flush"})
        os.environ["UVCTL_DATA_DIR"] = str(Path(folder) / "sql")
        sql = bench_flush(args.items, args.batch, "sql", {"Db": f"sqlite:///{folder}/target.sqlite"})
    print(f"flush machinery share: memory flush is {memory / sql:.1f}x the sql-on-SQLite flush rate "
          f"(machinery is ~{100 * sql / memory:.0f}% of a SQLite flush)")


if __name__ == "__main__":
    main()
