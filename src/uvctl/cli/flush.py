"""``uvctl flush``: send the journal's pending records to the assigned backends."""

from __future__ import annotations

import click

from ..flush.service import DEFAULT_BATCH, MAX_BATCH
from .output import echo, emit, json_option


@click.command(name="flush")
@click.option("--replay", is_flag=True, help="Send everything from the first journal record (safe: delivery is idempotent).")
@click.option("--batch-size", type=int, default=DEFAULT_BATCH, show_default=True, metavar="N",
              help=f"Records per batch, 1 to {MAX_BATCH} (one transaction each; the mark advances after each).")
@click.option("--dry-run", is_flag=True, help="Only say how many records each bridge would send.")
@json_option
def flush_command(replay, batch_size, dry_run, as_json):
    """Send every journal record past each backend's high-water mark, in order, in batches.

    A failing batch stops that bridge's run with an error and a non-zero exit (3 when the
    backend cannot be reached); the mark stays at the last acknowledged batch, so the next
    'uvctl flush' resumes there. The other bridge is flushed all the same. Only one flush
    runs at a time per journal.
    """
    from ..errors import UvctlError
    from ..flush import flush
    from .output import progress

    report = flush(replay=replay, batch_size=batch_size, dry_run=dry_run, progress=progress)
    emit(report.to_dict(), as_json, _print_report)
    if not report.ok:
        started = next(b for b in report.Bridges if b.State == "failed").Identity is not None
        resume = "; the high-water mark stays at the last acknowledged batch, run 'uvctl flush' again to resume"
        raise UvctlError(f"{report.error}{resume if started else ''}", exit_code=3 if report.unavailable else 1)


def _print_report(data: dict) -> None:
    for bridge, row in data["Bridges"].items():
        target = row["Identity"] or row["Backend"]
        if row["State"] == "failed" and row["Identity"] is None:
            continue  # it never got to its backend: the error line says why
        if row["State"] == "unassigned":
            echo(f"{bridge}: unassigned ({row['Pending']} journal records wait for 'uvctl persistence assign')")
        elif row["State"] == "dry-run":
            start = f"seq {row['FromSeq']}"
            if row["FromSeq"] < row["PrunedUpto"]:  # the log below PrunedUpto is gone: the state goes first
                start = f"the current state, as the log up to seq {row['PrunedUpto']} was pruned"
            echo(f"{bridge}: would send {row['Pending']} records to {target} (from {start})")
        elif row["State"] == "up-to-date":
            echo(f"{bridge}: {target} is up to date (high-water mark {row['HighWaterMark']})")
        else:
            snapshot = (f"{row['Snapshot']} of them the current state, as the log up to seq {row['PrunedUpto']} "
                        f"was pruned; ") if row["Snapshot"] else ""
            echo(
                f"{bridge}: sent {row['Sent']} records in {row['Batches']} batches to {target} "
                f"({snapshot}{row['AlreadyPresent']} already present); high-water mark {row['HighWaterMark']}, "
                f"{row['Pending']} pending"
            )


COMMANDS = [flush_command]
