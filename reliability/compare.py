"""Row-for-row comparison of a target database with the journal's current state.

Every UV column the journal keeps is compared, after typing both sides the same way
(:mod:`uvctl.testing.rows`, shared with the flush tests). Rows are matched by natural key,
which gives the figures of a trial: rows compared, lost (in the journal, not in the
target), duplicated (a natural key twice in the target, or a key the journal never had)
and differing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from uvctl.testing.rows import TABLES, database_rows, journal_rows


@dataclass
class Comparison:
    """Figures of one comparison; ``equal`` when nothing was lost, duplicated or different."""

    compared: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    first_problem: str | None = None

    @property
    def equal(self) -> bool:
        return not (self.lost or self.duplicated or self.differing)

    def add(self, other: "Comparison") -> None:
        self.compared += other.compared
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.differing += other.differing
        self.first_problem = self.first_problem or other.first_problem

    def to_dict(self) -> dict:
        return {**asdict(self), "equal": self.equal}


def _key(spec, row) -> tuple:
    return tuple(row[k] for k in spec.key)


def compare_rows(expected: dict, actual: dict) -> Comparison:
    """Compare two ``{table: rows}`` sets by natural key, column by column."""
    from uvctl.journal.columns import table

    result = Comparison()
    for name in TABLES:
        spec = table(name)
        want = {_key(spec, r): r for r in expected.get(name, [])}
        counts = Counter(_key(spec, r) for r in actual.get(name, []))
        got = {_key(spec, r): r for r in actual.get(name, [])}
        result.compared += len(want)
        for key, n in counts.items():
            if n > 1 or key not in want:
                result.duplicated += n - 1 if key in want else n
                result.first_problem = result.first_problem or f"{name} {key}: {n} rows in the target, {int(key in want)} in the journal"
        for key, row in want.items():
            other = got.get(key)
            if other is None:
                result.lost += 1
                result.first_problem = result.first_problem or f"{name} {key}: lost"
            elif other != row:
                result.differing += 1
                diff = {c: (row[c], other[c]) for c in row if row[c] != other[c]}
                result.first_problem = result.first_problem or f"{name} {key}: differs {diff}"
    return result


def compare_target(url: str, journal) -> Comparison:
    """The target database at ``url`` against the journal."""
    return compare_rows(journal_rows(journal), database_rows(url))
