"""``uvctl queue ls`` / ``show``: the work items, their events and attempts."""

from __future__ import annotations

import click

from .listing import (echo_fields, echo_table, filter_options, footer, local_time, not_found, page_options,
                      source_options, zone_note)
from .output import emit

#: The work item's columns ``queue show`` prints, in this order (``--json`` has every column).
SHOWN = ("WorkItemHash", "Status", "RunHash", "RunID", "NodeHash", "OperationHash", "Capability", "Action",
         "AssignedBeaconID", "Priority", "AttemptNumber", "MaxAttempts", "EnqueuedAt", "AssignedAt", "DispatchedAt",
         "StartedAt", "CompletedAt", "CanceledAt", "LastEventAt", "QueueWaitMs", "HealthLabel", "HealthReason",
         "CancelRequested", "LastError", "Settings", "Result")


@click.group(name="queue")
def queue_group():
    """Look at the queue: work items, their events and attempts (journal or backend)."""


@queue_group.command(name="ls")
@filter_options
@click.option("--run", metavar="RUN", help="Only the work items of this run (its RunHash, as 'uvctl runs ls' shows it).")
@page_options
@source_options
def ls_command(status, since, operation, run, limit, after, from_backend, utc, as_json):
    """List work items, newest enqueued first, one page at a time.

    \b
    --json prints {"Source": "journal"|"backend", "WorkItems": [row, ...],
    "Next": CURSOR|null, "Limit": N, "Since": the --since time as
    compared (UTC ISO) or null}; each row has every UVQueueWorkItem column, times
    as stored (UTC ISO). Pass Next to --after for the next page.
    """
    from ..views import Views

    with Views(from_backend) as views:
        page = views.list_work_items(status=status, since=since, run=run, operation=operation, limit=limit, after=after)

    def text(data):
        echo_work_items(data["WorkItems"], utc)
        footer(("work item", "work items"), len(data["WorkItems"]), data["Source"], data["Next"], utc, data["Since"])

    emit(page, as_json, text)


@queue_group.command(name="show")
@click.argument("work_item_hash", metavar="WORKITEMHASH")
@source_options
def show_command(work_item_hash, from_backend, utc, as_json):
    """Show one work item, its events in order and its attempts.

    An unknown hash is an error (exit 1). Attempts always come from the journal (the bridges
    have no read of attempts).

    \b
    --json prints {"WorkItem": row, "Events": [row, ...] (Seq order, the first 5000),
    "EventsTruncated": bool, "Attempts": [row, ...] (by AttemptNumber),
    "Sources": {"WorkItem", "Events", "Attempts": "journal"|"backend"}}.
    """
    from ..views import Views

    with Views(from_backend) as views:
        found = views.work_item(work_item_hash)
    if found is None:
        raise not_found("work item", work_item_hash, from_backend)

    def text(data):
        echo_fields(data["WorkItem"], SHOWN, utc)
        events, attempts = data["Events"], data["Attempts"]
        more = " (the first ones)" if data["EventsTruncated"] else ""
        click.echo(f"\nEvents: {len(events)}{more}, from the {data['Sources']['Events']}")
        if events:
            echo_table(["SEQ", "EMITTED", "TYPE", "FROM", "TO", "BEACON", "PAYLOAD"],
                       [[e.get("Seq"), local_time(e.get("EmittedAt"), utc), e.get("EventType"), e.get("FromStatus"),
                         e.get("ToStatus"), e.get("BeaconID"), e.get("Payload")] for e in events], keep=(1,))
        click.echo(f"\nAttempts: {len(attempts)}, from the {data['Sources']['Attempts']}")
        if attempts:
            echo_table(["#", "BEACON", "STARTED", "ENDED", "OUTCOME", "ERROR"],
                       [[a.get("AttemptNumber"), a.get("BeaconID"), local_time(a.get("StartedAt"), utc),
                         local_time(a.get("EndedAt"), utc), a.get("Outcome"), a.get("Error")] for a in attempts], keep=(2, 3))
        click.echo(f"\nwork item from the {data['Sources']['WorkItem']}; " + zone_note(utc))

    emit(found, as_json, text)


def echo_work_items(rows: list[dict], utc: bool) -> None:
    """The work-item table of ``queue ls`` and ``runs show``."""
    echo_table(["ENQUEUED", "WORK ITEM", "STATUS", "OPERATION", "CAPABILITY", "BEACON", "TRY", "ERROR"],
               [[local_time(r.get("EnqueuedAt"), utc), r.get("WorkItemHash"), r.get("Status"), r.get("OperationHash"),
                 "/".join(x for x in (r.get("Capability"), r.get("Action")) if x), r.get("AssignedBeaconID"),
                 r.get("AttemptNumber"), r.get("LastError")] for r in rows], keep=(0, 2))


COMMANDS = [queue_group]
