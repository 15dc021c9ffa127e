"""Printing for commands: text or ``--json``, and progress bars only on a terminal."""

from __future__ import annotations

import contextlib
import json
import sys

import click


def echo(text: str = "", err: bool = False) -> None:
    """Print one line whose values may come from input (imported records, state files, a
    coordinator): control characters are escaped, so a value cannot break or recolour it."""
    from ..errors import printable

    click.echo(printable(text), err=err)


def emit_json(data) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


def emit(data, as_json: bool, text) -> None:
    """Print ``data`` as JSON when ``as_json``, else call ``text(data)`` to print it."""
    if as_json:
        emit_json(data)
    else:
        text(data)


class _NullBar:
    def update(self, n: int) -> None:
        pass


@contextlib.contextmanager
def progress(total: int | None, label: str):
    """A click progress bar on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield _NullBar()
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


def json_option(func):
    """The ``--json`` flag shared by every command a script may read."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)
