"""Run the reliability trials and write their figures.

    .venv/bin/python -m reliability.run                 # everything (20 to 40 minutes on 2 cores)
    .venv/bin/python -m reliability.run crash-sqlite network-meadow --trials 5 --records 2000

Trials: crash-sqlite, crash-postgres, crash-mysql, crash-import, network-meadow, network-mesh,
network-postgres, network-mysql, concurrency, concurrency-postgres, concurrency-mysql, disk-full,
read-only (the -mysql trials on the machine's MariaDB/MySQL server). Figures go to stdout and to reliability/last-run.json
(``--out`` to change); the exit status is 1 when any trial lost, duplicated or corrupted
anything, or a failure was not one clean line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from reliability import concurrency, crash, disk, network, procs  # noqa: E402

TRIALS = ("crash-sqlite", "crash-postgres", "crash-mysql", "crash-import", "network-meadow", "network-mesh",
          "network-postgres", "network-mysql", "concurrency", "concurrency-postgres", "concurrency-mysql", "disk-full",
          "read-only")
#: Seed offsets (``--seed`` + offset) of the crash and the network trial on a database server, per kind.
_SERVER_SEEDS = {"postgres": (1, 4), "mysql": (6, 7)}


def run_trial(name: str, work: Path, args) -> dict:
    """Run one trial in ``work``; its figures."""
    n = args.trials
    if name == "crash-sqlite":
        return crash.flush_trials(work, lambda i: f"sqlite:///{work}/target-{i}.sqlite", trials=n,
                                  records=args.crash_records, batch_size=args.crash_batch_size, seed=args.seed)
    if name in ("crash-postgres", "crash-mysql"):
        kind = name.split("-")[1]
        return crash.flush_trials(work, lambda i: procs.create_database(kind), procs.drop_database, trials=n,
                                  records=args.crash_records, batch_size=args.crash_batch_size,
                                  seed=args.seed + _SERVER_SEEDS[kind][0])
    if name == "crash-import":
        return crash.import_trials(work, trials=n, records=args.crash_records * 2, seed=args.seed + 2)
    if name == "network-meadow":
        return network.meadow_trial(work, records=args.records, rate=args.rate, seed=args.seed + 3,
                                    max_runs=args.max_runs, batch_size=args.batch_size)
    if name == "network-mesh":
        return network.mesh_trial(work, records=args.records, rate=args.rate, seed=args.seed + 5,
                                  max_runs=args.max_runs, batch_size=args.batch_size)
    if name in ("network-postgres", "network-mysql"):
        kind = name.split("-")[1]
        return network.sql_trial(work, kind, records=args.records, rate=args.rate, seed=args.seed + _SERVER_SEEDS[kind][1],
                                 max_runs=args.max_runs, batch_size=args.batch_size)
    if name in ("concurrency", "concurrency-postgres", "concurrency-mysql"):
        kind = name.partition("-")[2]
        url = procs.create_database(kind) if kind else f"sqlite:///{work}/target.sqlite"
        try:
            return concurrency.trial(work, url, items=args.items)
        finally:
            if kind:
                procs.drop_database(url)
    if name == "disk-full":
        return disk.disk_full_trial(work)
    if name == "read-only":
        return disk.read_only_trial(work)
    raise SystemExit(f"unknown trial {name!r}; choose from {', '.join(TRIALS)}")


def verdict(name: str, figures: dict) -> bool:
    """True when the figures show nothing lost, duplicated, different, corrupt or unclean."""
    bad = sum(int(figures.get(k) or 0) for k in (
        "lost", "duplicated", "differing", "unclean_failures", "unclean_errors", "log_mismatches", "lost_in_target",
        "duplicated_in_target", "seq_order_violations", "wrong_record_at_seq", "event_seq_violations", "calls_failed",
        "writer_errors", "pending_after_rerun", "pending_after_final_flush", "unexpected_success"))
    if "reruns_ok" in figures and figures["reruns_ok"] != figures["trials"]:
        bad += 1
    if name.startswith("network") and not figures.get("completed"):
        bad += 1
    if "journal_integrity" in figures and figures["journal_integrity"] != "ok":
        bad += 1
    if figures.get("journal_unchanged") is False or figures.get("journal_unchanged_by_failed_import") is False:
        bad += 1
    return bad == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trials_to_run", nargs="*", metavar="TRIAL", help=f"some of: {', '.join(TRIALS)} (default: all)")
    parser.add_argument("--trials", type=int, default=50, help="kill -9 trials per crash target (default 50)")
    parser.add_argument("--crash-records", type=int, default=6000, help="journal records of the crash trials")
    parser.add_argument("--records", type=int, default=10000, help="records of the network-fault flushes")
    parser.add_argument("--rate", type=float, default=0.2, help="fault rate of the network trials (default 0.2)")
    parser.add_argument("--batch-size", type=int, default=100, help="flush batch size of the network trials")
    parser.add_argument("--crash-batch-size", type=int, default=50,
                        help="flush batch size of the crash trials (1000 or more puts PostgreSQL's COPY path under the kill)")
    parser.add_argument("--max-runs", type=int, default=2000, help="flush runs allowed per network trial")
    parser.add_argument("--items", type=int, default=150, help="work items per writer in the concurrency trial")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=HERE / "last-run.json")
    args = parser.parse_args(argv)
    chosen = args.trials_to_run or list(TRIALS)
    results = {}
    with tempfile.TemporaryDirectory(prefix="uvctl-reliability-") as tmp:
        for name in chosen:
            if name in ("disk-full", "read-only") and not disk.can_mount():
                results[name] = {"skipped": "needs root to mount a tmpfs"}
                continue
            print(f"== {name}", flush=True)
            started = time.monotonic()
            figures = run_trial(name, Path(tmp) / name, args)
            figures["seconds"] = round(time.monotonic() - started, 1)
            figures["ok"] = verdict(name, figures)
            results[name] = figures
            print(json.dumps(figures, indent=2, default=str), flush=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    arguments = {k: v for k, v in vars(args).items() if k not in ("out", "trials_to_run")}
    for figures in results.values():
        figures.update({"finished_at": stamp, "arguments": arguments})
    merged = {}
    if args.out.exists():  # trials run separately accumulate in one file; a rerun replaces its entry
        try:
            merged = json.loads(args.out.read_text()).get("results", {})
        except ValueError:
            merged = {}
    merged.update(results)
    args.out.write_text(json.dumps({"results": merged}, indent=2, default=str) + "\n")
    failed = [name for name, f in results.items() if f.get("ok") is False]
    print(f"figures written to {args.out}; " + (f"FAILED: {', '.join(failed)}" if failed else "all trials passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
