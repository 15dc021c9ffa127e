"""Crash trials: ``kill -9`` at a random moment of ``uvctl flush`` / ``uvctl journal import``,
then a rerun; the target must equal the journal row for row (and the journal the source).

The kill moment is drawn uniformly from 0 .. the duration of an undisturbed run
(measured first), so it lands in start-up, in any batch, between a commit and the mark
write, in the import transaction, or after the end.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import time
from pathlib import Path

from . import procs
from .compare import Comparison, compare_rows, compare_target, journal_rows
from .workload import record, traffic, write_jsonl


def _kill_at(proc, seconds: float) -> bool:
    """SIGKILL ``proc`` after ``seconds``; True when it was still running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
    running = proc.poll() is None
    if running:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def _timed(func) -> float:
    start = time.monotonic()
    func()
    return time.monotonic() - start


def _pending(data_dir, url) -> dict:
    """Per bridge, the journal records the sql target at ``url`` has not acknowledged."""
    import os

    from uvctl import host
    from uvctl.flush import HighWaterMarks
    from uvctl.journal import Journal

    old = os.environ.get("UVCTL_DATA_DIR")
    os.environ["UVCTL_DATA_DIR"] = str(data_dir)
    try:
        identity = host.backend_info("sql").identity_of({"Db": url})
        marks = HighWaterMarks()
        with Journal.open() as journal:
            return {b: journal.count_after(b, marks.get(b, identity)) for b in ("Queue", "Manifest")}
    finally:
        if old is None:
            os.environ.pop("UVCTL_DATA_DIR", None)
        else:
            os.environ["UVCTL_DATA_DIR"] = old


def _assign(data_dir, url) -> None:
    result = procs.run(data_dir, "persistence", "assign", "--backend", "sql", "--db", url, "--json")
    if result.returncode != 0:
        raise RuntimeError(f"assign failed: {result.stderr.strip()}")


def flush_trials(work_dir, make_url, drop_url=None, trials: int = 50, records: int = 3000, batch_size: int = 50,
                 seed: int = 1, log=print) -> dict:
    """``trials`` flushes into fresh targets, each killed at a random moment and rerun."""
    from uvctl.journal import Journal

    work_dir = Path(work_dir)
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with Journal.open(data_dir / "journal.sqlite") as journal:
        if journal.last_seq() == 0:
            record(journal, traffic(records, prefix="crash", seed=seed))
    rng = random.Random(seed)
    figures = {"trials": 0, "killed_mid_run": 0, "reruns_ok": 0, "faults_injected": 0, "records_in_journal": records,
               "pending_after_rerun": 0}
    total = Comparison()

    def one(url, kill_after):
        _assign(data_dir, url)
        killed = _kill_at(procs.start(data_dir, "flush", "--batch-size", batch_size), kill_after)
        rerun = procs.run(data_dir, "flush", "--batch-size", batch_size * 2)
        return killed, rerun

    calibration = make_url(-1)
    try:
        _assign(data_dir, calibration)
        duration = _timed(lambda: procs.run(data_dir, "flush", "--batch-size", batch_size))
    finally:
        if drop_url:
            drop_url(calibration)
    for n in range(trials):
        url = make_url(n)
        try:
            kill_after = rng.uniform(0.0, duration)
            killed, rerun = one(url, kill_after)
            figures["trials"] += 1
            figures["faults_injected"] += 1
            figures["killed_mid_run"] += int(killed)
            figures["reruns_ok"] += int(rerun.returncode == 0)
            with Journal.open(data_dir / "journal.sqlite") as journal:
                result = compare_target(url, journal)
            figures["pending_after_rerun"] += sum(_pending(data_dir, url).values())
            total.add(result)
            log(f"  flush trial {n + 1}/{trials}: kill at {kill_after:.2f}s (running={killed}), rerun exit "
                f"{rerun.returncode}, {result.compared} rows, lost {result.lost}, dup {result.duplicated}, "
                f"diff {result.differing}" + (f" {rerun.stderr.strip()}" if rerun.returncode else ""))
        finally:
            if drop_url:
                drop_url(url)
    figures["calibration_seconds"] = round(duration, 2)
    figures.update({"records_compared": total.compared, "lost": total.lost, "duplicated": total.duplicated,
                    "differing": total.differing, "first_problem": total.first_problem})
    return figures


def _log_rows(path) -> list:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT seq, bridge, action, settings FROM log ORDER BY seq").fetchall()
    finally:
        conn.close()


def import_trials(work_dir, trials: int = 50, records: int = 6000, seed: int = 2, log=print) -> dict:
    """``trials`` imports of a JSONL file (half of it imported before), each killed and rerun.

    After the rerun the journal must hold exactly what one undisturbed import gives: the same
    log (seq, action, settings) and the same current state, row for row.
    """
    from uvctl.journal import Journal

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    calls = traffic(records, prefix="imp", seed=seed)
    half, full = work_dir / "half.jsonl", work_dir / "full.jsonl"
    write_jsonl(half, calls[: records // 2])
    write_jsonl(full, calls)
    base, reference = work_dir / "base", work_dir / "reference"
    for folder in (base, reference):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if procs.run(folder, "journal", "import", half).returncode != 0:
            raise RuntimeError("the base import failed")
    duration = _timed(lambda: procs.run(reference, "journal", "import", full))
    with Journal.open(reference / "journal.sqlite") as journal:
        want_state = journal_rows(journal)
    want_log = _log_rows(reference / "journal.sqlite")
    rng = random.Random(seed)
    figures = {"trials": 0, "killed_mid_run": 0, "reruns_ok": 0, "faults_injected": 0, "log_rows_compared": 0,
               "log_mismatches": 0, "records_in_file": records}
    total = Comparison()
    for n in range(trials):
        trial = work_dir / f"trial-{n}"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(base, trial)
        kill_after = rng.uniform(0.0, duration)
        killed = _kill_at(procs.start(trial, "journal", "import", full), kill_after)
        rerun = procs.run(trial, "journal", "import", full)
        with Journal.open(trial / "journal.sqlite") as journal:
            result = compare_rows(want_state, journal_rows(journal))
            integrity = journal._conn.execute("PRAGMA integrity_check").fetchone()[0]
        got_log = _log_rows(trial / "journal.sqlite")
        mismatches = sum(1 for a, b in zip(want_log, got_log) if a != b) + abs(len(want_log) - len(got_log))
        figures["trials"] += 1
        figures["faults_injected"] += 1
        figures["killed_mid_run"] += int(killed)
        figures["reruns_ok"] += int(rerun.returncode == 0 and integrity == "ok")
        figures["log_rows_compared"] += len(want_log)
        figures["log_mismatches"] += mismatches
        total.add(result)
        log(f"  import trial {n + 1}/{trials}: kill at {kill_after:.2f}s (running={killed}), rerun exit "
            f"{rerun.returncode}, integrity {integrity}, {result.compared} rows, lost {result.lost}, "
            f"dup {result.duplicated}, diff {result.differing}, log mismatches {mismatches}")
        shutil.rmtree(trial, ignore_errors=True)
    figures["calibration_seconds"] = round(duration, 2)
    figures.update({"records_compared": total.compared, "lost": total.lost, "duplicated": total.duplicated,
                    "differing": total.differing, "first_problem": total.first_problem})
    return figures
