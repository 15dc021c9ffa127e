"""Disk trials: a data dir on a full disk, and a read-only data dir.

The data dir lives on a small tmpfs mounted for the trial (root only; ``mount`` and
``umount`` are called on that one folder). On a full disk, journal imports fail with one
clear line and journal nothing; a flush whose mark cannot be written stops cleanly and
resumes once there is space. On a read-only data dir every writing command fails with one
clear line; reads still work; nothing changes. After each trial the journal passes
``PRAGMA integrity_check`` and holds exactly what was acknowledged before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

from . import procs
from .compare import compare_target
from .network import clean_failure
from .workload import traffic, write_jsonl


def can_mount() -> bool:
    """True when this process may mount a tmpfs (root on Linux)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/proc/filesystems").read_text().find("tmpfs") >= 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted on ``path`` for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, read_only: bool) -> None:
    subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(path)], check=True)


def journal_digest(path: Path) -> tuple[str, str]:
    """``(integrity_check, digest of the log and state rows)`` of the journal at ``path``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        digest = hashlib.sha256()
        for table in ("log", "UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest"):
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):  # fixed table names
                digest.update(repr(row).encode())
        return integrity, digest.hexdigest()
    finally:
        conn.close()


def _log_count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
    finally:
        conn.close()


def disk_full_trial(work_dir, size: str = "1m", chunk: int = 200, log=print) -> dict:
    """Import chunks until the disk is full; then a flush whose mark cannot be written."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mount = work_dir / "fs"
    figures = {"imports_ok": 0, "imports_failed": 0, "unclean_errors": 0, "first_unclean": None}
    with tmpfs(mount, size):
        data_dir = mount / "data"
        journal = data_dir / "journal.sqlite"
        target = f"sqlite:///{work_dir / 'target.sqlite'}"
        assign = procs.run(data_dir, "persistence", "assign", "--backend", "sql", "--db", target)
        figures["assign_exit"] = assign.returncode
        n, before = 0, None
        while figures["imports_failed"] == 0 and n < 500:
            part = work_dir / f"chunk-{n}.jsonl"
            write_jsonl(part, traffic(chunk, prefix=f"full{n}", seed=n))
            if journal.exists():
                before = journal_digest(journal)
            result = procs.run(data_dir, "journal", "import", part)
            n += 1
            if result.returncode == 0:
                figures["imports_ok"] += 1
                continue
            figures["imports_failed"] += 1
            figures["import_error"] = result.stderr.strip()
            if not clean_failure(result.stderr):
                figures["unclean_errors"] += 1
                figures["first_unclean"] = result.stderr[-500:]
        after = journal_digest(journal)
        figures["journal_integrity"] = after[0]
        figures["journal_unchanged_by_failed_import"] = before is not None and before[1] == after[1]
        figures["log_records"] = _log_count(journal)
        figures["log_records_expected"] = figures["imports_ok"] * chunk
        stats = procs.run(data_dir, "journal", "stats")
        figures["stats_exit_on_full_disk"] = stats.returncode
        flush = procs.run(data_dir, "flush", "--batch-size", 50)
        figures["flush_exit_on_full_disk"] = flush.returncode
        figures["flush_error"] = flush.stderr.strip() or None
        if flush.returncode != 0 and not clean_failure(flush.stderr):
            figures["unclean_errors"] += 1
            figures["first_unclean"] = figures["first_unclean"] or flush.stderr[-500:]
        # make room (drop the import chunks' journal? no: grow the tmpfs) and resume
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        rerun = procs.run(data_dir, "flush")
        figures["flush_exit_after_space"] = rerun.returncode
        from uvctl.journal import Journal

        with Journal.open(journal) as opened:
            result = compare_target(target, opened)
        figures.update({"records_compared": result.compared, "lost": result.lost, "duplicated": result.duplicated,
                        "differing": result.differing, "first_problem": result.first_problem})
    return figures


def read_only_trial(work_dir, log=print) -> dict:
    """Every writing command on a read-only data dir: one clear line, nothing changed."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mount = work_dir / "ro"
    figures = {"commands": 0, "clean_errors": 0, "unclean_errors": 0, "unexpected_success": 0, "errors": {}}
    source = work_dir / "ro.jsonl"
    write_jsonl(source, traffic(300, prefix="ro", seed=5))
    more = work_dir / "ro-more.jsonl"
    write_jsonl(more, traffic(50, prefix="ro-more", seed=6))
    write_jsonl(work_dir / "ro-new.jsonl", traffic(50, prefix="ro-new", seed=7))
    target = f"sqlite:///{work_dir / 'ro-target.sqlite'}"
    with tmpfs(mount, "16m"):
        data_dir = mount / "data"
        procs.run(data_dir, "journal", "import", source)
        procs.run(data_dir, "persistence", "assign", "--backend", "sql", "--db", target)
        procs.run(data_dir, "flush")  # acknowledged records: 'journal prune' has work to refuse
        procs.run(data_dir, "journal", "import", more)  # and pending ones: 'flush' too
        journal = data_dir / "journal.sqlite"
        before = journal_digest(journal)
        remount(mount, read_only=True)
        try:
            writes = {
                "journal import": ("journal", "import", source.with_name("ro-new.jsonl")),
                "flush": ("flush",),
                "persistence assign": ("persistence", "assign", "--backend", "sql", "--db", target),
                "persistence clear": ("persistence", "clear"),
                "journal prune": ("journal", "prune"),
            }
            for label, args in writes.items():
                result = procs.run(data_dir, *args)
                figures["commands"] += 1
                figures["errors"][label] = result.stderr.strip() or None
                if result.returncode == 0:
                    figures["unexpected_success"] += 1
                elif clean_failure(result.stderr):
                    figures["clean_errors"] += 1
                else:
                    figures["unclean_errors"] += 1
            reads = {"journal stats": ("journal", "stats"), "persistence status": ("persistence", "status", "--no-bootstrap")}
            figures["reads_ok"] = sum(procs.run(data_dir, *args).returncode == 0 for args in reads.values())
            figures["reads"] = len(reads)
        finally:
            remount(mount, read_only=False)
        after = journal_digest(journal)
        figures["journal_integrity"] = after[0]
        figures["journal_unchanged"] = before[1] == after[1]
        figures["flush_after_rw_exit"] = procs.run(data_dir, "flush").returncode
        from uvctl.journal import Journal

        with Journal.open(journal) as opened:
            result = compare_target(target, opened)
        figures.update({"records_compared": result.compared, "lost": result.lost, "duplicated": result.duplicated,
                        "differing": result.differing})
    return figures
