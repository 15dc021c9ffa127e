"""``uvctl runs ls`` / ``show``: run manifests, and a run with its work items and their outcomes."""

from __future__ import annotations

import click

from .listing import (echo_fields, echo_table, filter_options, footer, local_time, not_found, page_options,
                      source_options)
from .output import emit
from .queue import echo_work_items

#: The manifest's columns ``runs show`` prints (``--json`` has the whole run as sent).
SHOWN = ("Hash", "OperationHash", "OperationName", "Status", "RunMode", "Live", "StartTime", "StopTime", "ElapsedMs",
         "StagingPath")


@click.group(name="runs")
def runs_group():
    """Look at runs: manifests, and each run's work items with their outcomes (journal or backend)."""


@runs_group.command(name="ls")
@filter_options
@page_options
@source_options
def ls_command(status, since, operation, limit, after, from_backend, utc, as_json):
    """List runs (not removed ones), newest started first, one page at a time.

    \b
    Filters: --status (the run's Status), --since (its StartTime), --operation (its
    OperationHash). --json prints {"Source": "journal"|"backend", "Runs": [summary, ...],
    "Next": CURSOR|null, "Limit": N, "Since": the --since time as
    compared (UTC ISO) or null}; a summary has every UVManifest column but
    ManifestJSON, times as stored (UTC ISO). Pass Next to --after for the next page.
    """
    from ..views import Views

    with Views(from_backend) as views:
        page = views.list_runs(status=status, since=since, operation=operation, limit=limit, after=after)

    def text(data):
        echo_table(["STARTED", "RUN", "STATUS", "OPERATION", "NAME", "MODE", "ELAPSED", "STOPPED"],
                   [[local_time(r.get("StartTime"), utc), r.get("Hash"), r.get("Status"), r.get("OperationHash"),
                     r.get("OperationName"), r.get("RunMode"), _elapsed(r.get("ElapsedMs")),
                     local_time(r.get("StopTime"), utc)] for r in data["Runs"]], keep=(0, 2))
        footer(("run", "runs"), len(data["Runs"]), data["Source"], data["Next"], utc, data["Since"])

    emit(page, as_json, text)


@runs_group.command(name="show")
@click.argument("run_hash", metavar="RUNHASH")
@page_options
@source_options
def show_command(run_hash, limit, after, from_backend, utc, as_json):
    """Show one run: its manifest, then its work items (newest first, paged) and their outcomes.

    An unknown or removed run is an error (exit 1).

    \b
    --json prints {"Manifest": the run as Ultravisor sent it, "WorkItems": [row, ...],
    "Next": CURSOR|null, "Limit": N, "Outcomes": {Status: count} (of the page),
    "Sources": {"Manifest", "WorkItems": "journal"|"backend"}}.
    """
    from ..views import Views

    with Views(from_backend) as views:
        found = views.run(run_hash, limit=limit, after=after)
    if found is None:
        raise not_found("run", run_hash, from_backend)

    def text(data):
        echo_fields(data["Manifest"], SHOWN, utc)
        click.echo(f"(manifest from the {data['Sources']['Manifest']})\n")
        items = data["WorkItems"]
        if items:
            echo_work_items(items, utc)
            counts = ", ".join(f"{status or '(none)'} {n}" for status, n in sorted(data["Outcomes"].items()))
            click.echo(f"outcomes: {counts}")
        footer(("work item of this run", "work items of this run"), len(items), data["Sources"]["WorkItems"],
               data["Next"], utc)

    emit(found, as_json, text)


def _elapsed(ms) -> str:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms <= 0:
        return ""
    return f"{ms / 1000:.1f} s" if ms < 60_000 else f"{ms / 60_000:.1f} min"


COMMANDS = [runs_group]
