"""Import into the journal: a JSONL file of bridge actions, or an Ultravisor data directory.

Both imports are idempotent and read the source twice, streamed (memory stays flat however
large it is): first to check every record, so a bad one anywhere imports nothing; then to
journal them, committing every few thousand, so bridge writes get the journal in between
instead of waiting for the whole import. Should the second pass stop (a full disk, a kill),
the next import of the same source journals exactly the rest: source keys, deterministic
EventGUIDs and the unchanged-record check skip what is already in.

- JSONL lines are a history: each line is remembered by its content and its occurrence in
  the file, so re-importing the file (or a longer version of it) journals only new lines
  (:mod:`uvctl.journal.sources.jsonl`).
- A data dir is a snapshot: events get deterministic EventGUIDs (UUIDv5 of the source row);
  work items, attempts and manifests are matched by natural key and skipped when unchanged,
  so a later import of the same data dir brings only what changed there since
  (:mod:`uvctl.journal.sources.datadir`).
"""

from __future__ import annotations

import stat
from pathlib import Path

from ..errors import UsageError, UvctlError
from ..paths import input_stat
from .sources.datadir import DataDirSource
from .sources.jsonl import JsonlSource


def import_path(journal, path, staging=None, manifests: bool = True, progress=None, skip_bad: bool = False) -> dict:
    """Import ``path`` (a JSONL file or an Ultravisor data dir) into ``journal``; a report.

    ``progress`` is an optional ``progress(total, label)`` context manager yielding a bar
    with ``update(n)`` (``uvctl.cli.output.progress``); it advances once per source record.
    """
    path = Path(path).expanduser().resolve()  # StagingPath is stored absolute, as Ultravisor writes it
    info = input_stat(path, "PATH", missing=f"{path} does not exist; give a JSONL file of bridge actions or an "
                                            f"Ultravisor data directory")
    if stat.S_ISDIR(info.st_mode):
        source = DataDirSource(path, staging, manifests, skip_bad)
    elif staging is not None or skip_bad:
        raise UsageError(f"{'--staging' if staging is not None else '--skip-bad-rows'} only applies to an Ultravisor data "
                         f"directory, not to a JSONL file (whose bad lines you can fix)")
    else:
        source = JsonlSource(path)
    with source:
        if progress is None:
            for _ in source.pairs():
                pass
            tally = _journal(journal, source)
        else:
            total = source.total()
            with progress(total, "checking") as bar:
                for _ in _advancing(source.pairs(), bar):
                    pass
            with progress(total, "importing") as bar:
                tally = _journal(journal, source, _advancing(source.pairs(), bar))
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


#: Records per journal transaction of an import (a bridge write waits for one at most), and
#: the pause after each: longer than SQLite's busy handler waits between two tries for the lock.
COMMIT_EVERY = 5000
COMMIT_PAUSE = 0.12


def _journal(journal, source, pairs=None) -> dict:
    """The second pass: journal the source's records, a transaction every COMMIT_EVERY."""
    try:
        return journal.apply_stream(source.pairs() if pairs is None else pairs, reimport=True, commit_every=COMMIT_EVERY,
                                    pause=COMMIT_PAUSE)
    except UvctlError as exc:
        reason = str(exc).removesuffix("; nothing was journaled")
        raise type(exc)(f"{reason}; the import stopped there, and what it journaled before stays: import the same "
                        f"source again to finish (nothing is journaled twice)", exc.exit_code) from None


def _advancing(pairs, bar, step: int = 200):
    """``pairs`` as they are, moving ``bar`` every ``step`` of them (not every one: it redraws)."""
    count = 0
    for pair in pairs:
        yield pair
        count += 1
        if count % step == 0:
            bar.update(step)
    bar.update(count % step)
