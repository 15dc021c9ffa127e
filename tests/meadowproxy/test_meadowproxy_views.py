"""uvctl queue / runs --from-backend through meadowproxy against the real meadow server."""

from __future__ import annotations

import json

from ..views.conftest import ITEMS, RUNS, fill, traffic, work_item_hash


def _json(cli_runner, *args):
    result = cli_runner([*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _sources(answer: dict) -> dict:
    """``answer`` without its Source(s), and them apart."""
    rest = dict(answer)
    return rest, rest.pop("Source", None) or rest.pop("Sources")


def test_the_views_answer_from_meadow_as_from_the_journal(cli_runner, meadow):
    from uvctl.journal import Journal

    with Journal.open() as journal:
        fill(journal, traffic())
    assigned = cli_runner(["persistence", "assign", "--backend", "meadowproxy", "--transport", "direct",
                           "--url", meadow.url, "--route-hash", meadow.route_hash])
    assert assigned.exit_code == 0, assigned.output
    assert cli_runner(["flush"]).exit_code == 0

    # meadowproxy takes RunHash; a range key (--since, --after) it refuses, and the journal answers
    backend = {"Manifest": "backend", "WorkItems": "backend"}
    for args, source in [
        (("queue", "ls"), "backend"), (("queue", "ls", "--status", "Error", "--limit", "2"), "backend"),
        (("queue", "ls", "--run", RUNS[1]), "backend"), (("runs", "ls"), "backend"),
        (("queue", "ls", "--since", "2026-11-26T22:05:00Z"), "journal"),
        (("queue", "show", work_item_hash(3)), {"WorkItem": "backend", "Events": "backend", "Attempts": "journal"}),
        (("runs", "show", RUNS[0]), backend),
    ]:
        (journal, _), (answer, said) = _sources(_json(cli_runner, *args)), _sources(_json(cli_runner, *args, "--from-backend"))
        assert said == source and answer == journal, args
    shown = _json(cli_runner, "runs", "show", RUNS[0], "--from-backend")
    assert [r["WorkItemHash"] for r in shown["WorkItems"]] == [work_item_hash(n) for n in reversed(range(ITEMS)) if n % 2 == 0]
