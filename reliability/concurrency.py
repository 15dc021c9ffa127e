"""Concurrency trial: four processes write through the bridges into one journal while
``uvctl flush`` runs again and again; then a final flush.

Checked: every call succeeded; every journaled record is in the log exactly once, at the
seq its writer was told, and each writer's seqs rise in the order it wrote; events of a
work item are numbered 1, 2, 3 in write order; the target equals the journal row for row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from . import procs
from .compare import compare_target

REPO = Path(__file__).resolve().parent.parent


def trial(work_dir, target_url: str, writers: int = 4, items: int = 150, manifests: int = 15, log=print) -> dict:
    """Run the trial against the sql backend at ``target_url``; its figures."""
    from uvctl.journal import Journal

    work_dir = Path(work_dir)
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    assign = procs.run(data_dir, "persistence", "assign", "--backend", "sql", "--db", target_url)
    if assign.returncode != 0:
        raise RuntimeError(f"assign failed: {assign.stderr.strip()}")
    outs = [work_dir / f"writer-{n}.jsonl" for n in range(writers)]
    env = procs.env_for(data_dir, PYTHONPATH=str(REPO))
    started = [subprocess.Popen([sys.executable, "-m", "reliability.writer", f"w{n}", str(items), str(manifests), str(out)],
                                env=env, cwd=str(REPO), stderr=subprocess.PIPE, text=True)
               for n, out in enumerate(outs)]
    flushes = busy = 0
    deadline = time.monotonic() + 900
    while any(p.poll() is None for p in started) and time.monotonic() < deadline:
        result = procs.run(data_dir, "flush", "--batch-size", 100)
        flushes += 1
        busy += int(result.returncode != 0)
    errors = [p.stderr.read() for p in started if p.wait() != 0]
    final = procs.run(data_dir, "flush")
    figures = {"writers": writers, "flushes_during_writes": flushes, "flushes_failed": busy,
               "writer_errors": len(errors), "first_writer_error": errors[0][-500:] if errors else None,
               "final_flush_exit": final.returncode}
    figures.update(_check_journal(data_dir, outs))
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(target_url, journal)
        pending = journal.count_after("Queue", _mark(data_dir, target_url, "Queue")) + \
            journal.count_after("Manifest", _mark(data_dir, target_url, "Manifest"))
    figures.update({"records_compared": result.compared, "lost_in_target": result.lost,
                    "duplicated_in_target": result.duplicated, "differing": result.differing,
                    "first_problem": figures.get("first_problem") or result.first_problem,
                    "pending_after_final_flush": pending})
    return figures


def _mark(data_dir, url, bridge) -> int:
    from uvctl import host

    hwm = data_dir / "persistence-bridge-hwm.json"
    if not hwm.exists():
        return 0
    identity = host.backend_info("sql").identity_of({"Db": url})
    return json.loads(hwm.read_text())[bridge].get(identity, 0)


def _check_journal(data_dir: Path, outs) -> dict:
    import sqlite3

    from .writer import natural_key

    conn = sqlite3.connect(str(data_dir / "journal.sqlite"))
    log_rows = {seq: (action, json.loads(settings))
                for seq, action, settings in conn.execute("SELECT seq, action, settings FROM log")}
    events = conn.execute('SELECT "WorkItemHash", "EventGUID", "Seq" FROM "UVQueueWorkItemEvent"').fetchall()
    conn.close()
    calls = failed = out_of_order = wrong_record = 0
    told: dict = {}
    problem = None
    for out in outs:
        last = 0
        for line in Path(out).read_text().splitlines():
            name, key, seq, success, _pending = json.loads(line)
            calls += 1
            failed += int(not success)
            if seq is None:
                continue
            told[seq] = told.get(seq, 0) + 1
            if seq <= last:
                out_of_order += 1
                problem = problem or f"{out.name}: seq {seq} after {last}"
            last = seq
            logged = log_rows.get(seq)
            if logged is None or logged[0] != name or natural_key(*logged) != key:
                wrong_record += 1
                problem = problem or f"seq {seq}: writer wrote {name} {key}, the log holds {logged and logged[0]}"
    lost = sum(1 for seq in told if seq not in log_rows)
    duplicated = sum(n - 1 for n in told.values() if n > 1) + sum(1 for seq in log_rows if seq not in told)
    bad_event_seq = sum(1 for _hash, guid, seq in events if not guid.endswith(f"-ev{seq}"))
    return {"calls": calls, "calls_failed": failed, "journaled": len(told), "log_rows": len(log_rows),
            "lost": lost, "duplicated": duplicated, "seq_order_violations": out_of_order,
            "wrong_record_at_seq": wrong_record, "events": len(events), "event_seq_violations": bad_event_seq,
            "first_problem": problem}
