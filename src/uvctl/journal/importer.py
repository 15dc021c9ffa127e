"""Import into the journal: a JSONL file of bridge actions, or an Ultravisor data directory.

Both imports are all or nothing and idempotent: the source is streamed into one journal
transaction (so memory stays flat however large it is; concurrent journal writers wait
for it), and importing the same source again journals nothing.

- JSONL lines are a history: each line is remembered by its content and its occurrence in
  the file, so re-importing the file (or a longer version of it) journals only new lines
  (:mod:`uvctl.journal.sources.jsonl`).
- A data dir is a snapshot: events get deterministic EventGUIDs (UUIDv5 of the source row);
  work items, attempts and manifests are matched by natural key and skipped when unchanged,
  so a later import of the same data dir brings only what changed there since
  (:mod:`uvctl.journal.sources.datadir`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .sources.datadir import DataDirSource
from .sources.jsonl import JsonlSource


def import_path(journal, path, staging=None, manifests: bool = True, progress=None) -> dict:
    """Import ``path`` (a JSONL file or an Ultravisor data dir) into ``journal``; a report.

    ``progress`` is an optional ``progress(total, label)`` context manager yielding a bar
    with ``update(n)`` (``uvctl.cli.output.progress``); it advances once per source record.
    """
    path = Path(path).expanduser().resolve()  # StagingPath is stored absolute, as Ultravisor writes it
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a JSONL file of bridge actions or an Ultravisor data directory")
    if path.is_dir():
        source = DataDirSource(path, staging, manifests)
    elif staging is not None:
        raise UsageError("--staging only applies to an Ultravisor data directory, not to a JSONL file")
    else:
        source = JsonlSource(path)
    with source:
        if progress is None:
            tally = journal.apply_stream(source.pairs(), reimport=True)
        else:
            with progress(source.total(), "importing") as bar:
                count = [0]

                def advance(_done, step=200):  # redraw the bar every few hundred records, not every one
                    count[0] += 1
                    if count[0] % step == 0:
                        bar.update(step)

                tally = journal.apply_stream(source.pairs(), reimport=True, sink=advance)
                bar.update(count[0] % 200)
        report = source.report()
    journaled = sum(n for outcome, n in tally["Outcomes"].items() if outcome in ("applied", "not-found"))
    report.update({
        "Journaled": journaled,
        "Skipped": sum(tally["Outcomes"].values()) - journaled,
        "Outcomes": tally["Outcomes"],
        "FirstSeq": tally["FirstSeq"],
        "LastSeq": tally["LastSeq"],
    })
    return report
