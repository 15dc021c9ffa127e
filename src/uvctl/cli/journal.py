"""`uvctl journal import|stats|prune`: the local-first journal in the data dir."""

from __future__ import annotations

import click

from .output import echo, emit, json_option, progress


@click.group("journal")
def journal_group():
    """The local-first journal (journal.sqlite in the data dir).

    \b
    Every queue write and run manifest lands here first, in one ordered log,
    before it goes to the assigned backend (see 'uvctl flush').
    """


@journal_group.command("import")
@click.argument("path", type=click.Path(path_type=str), required=False)
@click.option("--staging", type=click.Path(path_type=str), default=None,
              help="Ultravisor's staging root (UltravisorStagingRoot) holding the Manifest_*.json run folders. "
                   "Default: a 'staging' or 'ultravisor_staging' folder next to the data.")
@click.option("--no-manifests", is_flag=True, help="Import the queue history only.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Data directory: leave out rows and manifests uvctl cannot journal (a value of the wrong type, "
                   "text too long) instead of importing nothing; they are counted and listed.")
@click.option("--coordinator", "coordinator_url", default=None, metavar="URL",
              help="Instead of PATH: pull work items, events and manifests from a running coordinator's read "
                   "routes (login as in 'uvctl coordinator login').")
@json_option
def import_command(path, staging, no_manifests, skip_bad_rows, coordinator_url, as_json):
    """Import PATH: a JSONL file of bridge actions, or an Ultravisor data directory.

    \b
    JSONL: one {"Action": "QP_...", "Settings": {...}} per line; the first bad line is an
    error naming it, and nothing from the file is imported.
    Data directory (UltravisorFileStorePath): beacon/beacon-queue.sqlite (work items, events,
    attempts; read from a copy, the source is never changed) and the staging root's manifests.
    --coordinator URL: a running coordinator's history over its HTTP read routes.
    Importing the same source again adds nothing.
    """
    from ..journal import Journal
    from ..journal.importer import import_path

    if coordinator_url is not None:
        from .coordinator import import_from_coordinator

        emit(import_from_coordinator(coordinator_url, path, staging, not no_manifests), as_json, _print_import)
        return
    if path is None:
        from ..errors import UsageError

        raise UsageError("give PATH (a JSONL file or an Ultravisor data directory) or --coordinator URL")
    with Journal.open() as journal:
        report = import_path(journal, path, staging=staging, manifests=not no_manifests, progress=progress,
                             skip_bad=skip_bad_rows)
    emit(report, as_json, _print_import)
    _warn_import(report)


def _warn_import(report: dict) -> None:
    """What an import left out or changed, on stderr (also with --json)."""
    _warn_list(report.get("LeftOut"), report.get("LeftOutExamples"), "left out {} bad records (--skip-bad-rows)")
    _warn_list(report.get("ChangedValues"), report.get("ChangedExamples"),
               "{} values were stored other than the source has them (their records are journaled)")
    if report.get("ReplacedText"):
        echo(f"uvctl: warning: {report['ReplacedText']} text values of the source were not UTF-8; their "
             f"undecodable bytes were read as U+FFFD", err=True)


def _warn_list(count, shown, head: str) -> None:
    if count:
        echo(f"uvctl: warning: {head.format(count)}; {'they are' if len(shown) == count else f'the first {len(shown)} are'}:",
             err=True)
        for line in shown:
            echo(f"  {line}", err=True)


def _print_import(report: dict) -> None:
    labels = {"WorkItems": "work items", "Events": "events", "Attempts": "attempts", "Manifests": "manifests",
              "Actions": "actions"}
    read = ", ".join(f"{n} {labels.get(k, k)}" for k, n in report["Read"].items())
    echo(f"read {read} from {report['Source']}")
    if report.get("StagingRoot"):
        echo(f"manifests from {report['StagingRoot']}")
    if report["Journaled"]:
        echo(f"journaled {report['Journaled']} records (seq {report['FirstSeq']}..{report['LastSeq']}); "
                   f"{report['Skipped']} already in the journal")
        echo("run 'uvctl flush' to send them to the assigned backend")
    else:
        echo(f"nothing new: all {report['Skipped']} records are already in the journal")


@journal_group.command("stats")
@json_option
def stats_command(as_json):
    """Size, sequences, pending records per assigned backend, and state row counts."""
    from ..journal import Journal
    from ..journal.retention import acknowledgements

    with Journal.open(read_only=True) as journal:
        stats = journal.stats()
        stats["Backends"] = acknowledgements(journal)
    emit(stats, as_json, _print_stats)


def _print_stats(stats: dict) -> None:
    echo(f"journal {stats['Path']} ({stats['SizeBytes'] / 1024:.0f} KiB, synchronous {stats['Synchronous']}, "
               f"last seq {stats['LastSeq']})")
    for bridge, log in stats["Log"].items():
        seqs = f"seq {log['FirstSeq']}..{log['LastSeq']}" if log["Records"] else "empty"
        ack = stats["Backends"][bridge]
        if ack["HighWaterMark"] is not None:
            where = f"{ack['Pending']} pending for {ack['Identity']} (acknowledged up to {ack['HighWaterMark']})"
        else:
            where = f"all pending: {ack['Reason']}"
        echo(f"  {bridge:<9} {log['Records']} log records ({seqs}); {where}")
    state = stats["State"]
    echo(f"  state: {state['WorkItems']} work items, {state['Events']} events, {state['Attempts']} attempts, "
               f"{state['Manifests']} manifests ({state['ManifestsRemoved']} removed)")
    if stats["WorkItemsByStatus"]:
        echo("  work items by status: " + ", ".join(f"{k or '(none)'} {n}" for k, n in stats["WorkItemsByStatus"].items()))


@journal_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--keep", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Keep the newest N log records of each bridge even when acknowledged.")
@json_option
def prune_command(dry_run, keep, as_json):
    """Delete log records every assigned backend has acknowledged.

    Only records at or below the high-water mark of the backend assigned to their bridge
    go; pending ones never do. With no backend assigned nothing is pruned. The current
    state (work items, events, attempts, manifests) stays, so reads are unaffected, and a
    backend assigned later (or 'uvctl flush --replay') gets that state first, then the log.
    """
    from ..journal import Journal
    from ..journal.retention import prune_acknowledged

    with Journal.open(read_only=dry_run) as journal:
        report = prune_acknowledged(journal, dry_run=dry_run, keep=keep)
    emit({"DryRun": dry_run, "Bridges": report}, as_json, _print_prune)


def _print_prune(result: dict) -> None:
    verb = "would prune" if result["DryRun"] else "pruned"
    for bridge, info in result["Bridges"].items():
        line = f"{bridge}: {verb} {info['Pruned']} log records"
        if info["HighWaterMark"]:
            line += f" (acknowledged up to seq {info['HighWaterMark']} by {info['Identity']})"
        if info["Reason"]:
            line += f"; nothing more: {info['Reason']}" if info["Pruned"] else f": {info['Reason']}"
        echo(line)


COMMANDS = [journal_group]
