"""Aligned tables that fit the terminal, and times in the operator's local time."""

from __future__ import annotations

import shutil
import unicodedata
from datetime import datetime, timezone

import click

#: A column never shrinks below this many characters (headers are cut like cells).
_MIN_WIDTH = 6
_GAP = "  "


def escape(value) -> str:
    """``value`` as one printable line: control characters (CR, LF, ESC, ...) as escapes."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_width() -> int:
    """The terminal's width ($COLUMNS first); 100 when stdout is no terminal."""
    return max(20, shutil.get_terminal_size((100, 24)).columns)


def local_time(value, utc: bool = False) -> str:
    """A stored time (UTC ISO text) in local time as ``YYYY-MM-DD HH:MM:SS``; as stored with
    ``utc`` or when it is no ISO time."""
    text = escape(value)
    if utc or not text:
        return text
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:  # Ultravisor's timestamps without a zone are UTC
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone().isoformat(sep=" ", timespec="seconds")[:19]
    except (ValueError, OverflowError, OSError):  # not a time, or one the local zone cannot hold
        return text


def zone_note(utc: bool) -> str:
    """Which zone the times of a table are in."""
    if utc:
        return "times as stored (UTC)"
    return f"times in local time ({datetime.now().astimezone().strftime('%Z %z')}); --utc shows them as stored"


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide characters take two, combining ones none)."""
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` columns, ending in … when cut."""
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def render(headers: list[str], rows: list[list], max_width: int | None = None, keep=()) -> list[str]:
    """Lines of an aligned table of ``rows`` (cells escaped) no wider than ``max_width``:
    the widest columns are cut first, down to a minimum; the columns ``keep`` (indexes) are
    cut only when cutting the others is not enough."""
    max_width = max_width or terminal_width()
    cells = [[escape(c) for c in row] for row in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    room = max_width - len(_GAP) * (len(headers) - 1)
    floor = [w if i in keep else min(w, _MIN_WIDTH) for i, w in enumerate(widths)]
    widths = _fit(_fit(widths, floor, room), [min(w, _MIN_WIDTH) for w in widths], room)

    def line(values):
        parts = [truncate(v, w) for v, w in zip(values, widths)]
        padded = [p + " " * (w - width(p)) for p, w in zip(parts, widths)]
        return _GAP.join(padded).rstrip()

    return [line(headers)] + [line(r) for r in cells]


def _fit(widths: list[int], floor: list[int], room: int) -> list[int]:
    """``widths`` with the widest cut one column at a time (never below ``floor``) until they fit ``room``."""
    widths = list(widths)
    excess = sum(widths) - room
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def echo_table(headers: list[str], rows: list[list], keep=()) -> None:
    """Print :func:`render`'s lines (nothing for no rows)."""
    if rows:
        for text in render(headers, rows, keep=keep):
            click.echo(text)


# ---------------------------------------------------------------------- options of uvctl queue / runs
def source_options(func):
    """``--from-backend``, ``--utc`` and ``--json``, shared by every queue / runs command."""
    from .output import json_option

    func = json_option(func)
    func = click.option("--utc", is_flag=True, help="Show times as stored (UTC ISO) instead of local time.")(func)
    return click.option("--from-backend", is_flag=True,
                        help="Read the assigned backend (when it has every journal record; else the journal answers).")(func)


def page_options(func):
    """``--limit`` and ``--after``."""
    from ..views import DEFAULT_LIMIT, MAX_LIMIT

    func = click.option("--after", metavar="CURSOR", help="Start after this cursor (printed under a page that has more).")(func)
    return click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=DEFAULT_LIMIT, show_default=True,
                        metavar="N", help=f"Rows per page, 1 to {MAX_LIMIT}.")(func)


def filter_options(func):
    """``--status``, ``--since`` and ``--operation``."""
    func = click.option("--operation", metavar="OP", help="Only this OperationHash.")(func)
    func = click.option("--since", metavar="WHEN",
                        help="Only those since WHEN: a duration back from now (30m, 2h, 7d), a date, or an ISO time "
                             "(local unless it has Z or an offset).")(func)
    return click.option("--status", "status", multiple=True, metavar="S",
                        help="Only this status (repeat or comma-separate for several; any case).")(func)


def not_found(what: str, key: str, from_backend: bool):
    """The error of a ``show`` whose hash neither source knows (exit 1, as any failure)."""
    from ..errors import UvctlError

    return UvctlError(f"no {what} {key!r} in the {'backend or the ' if from_backend else ''}journal")


def footer(what: tuple[str, str], shown: int, source: str, cursor: str | None, utc: bool,
           since: str | None = None) -> None:
    """The lines under a page: how many (``what`` is the singular and the plural), who answered,
    the zone, and the command of the next page."""
    click.echo(f"{shown} {what[shown != 1]} from the {source}; {zone_note(utc)}")
    if cursor:
        click.echo(f"more: {next_page_command(cursor, since)}")


def next_page_command(cursor: str, since: str | None = None) -> str:
    """The current command line with ``--after CURSOR`` in place of any earlier one, and
    ``--since`` as the time it stood for (a duration would move on meanwhile)."""
    import shlex

    ctx = click.get_current_context()
    args = []
    for param in ctx.command.params:
        value = since if param.name == "since" and since else ctx.params.get(param.name)
        if param.name in ("after", "as_json") or value in (None, False, ()) or value == param.default:
            continue
        if isinstance(param, click.Argument):
            args.append(shlex.quote(str(value)))
        elif param.is_flag:
            args.append(param.opts[0])
        else:
            for item in value if param.multiple else [value]:
                args += [param.opts[0], shlex.quote(str(item))]
    return " ".join(["uvctl", *ctx.command_path.split()[1:], *args, "--after", cursor])


def echo_fields(record: dict, names, utc: bool) -> None:
    """``Name: value`` lines for the ``names`` of ``record`` (times localized, each line cut to the terminal)."""
    names = [n for n in names if n in record]
    pad = max((len(n) for n in names), default=0)
    limit = terminal_width() - pad - 2
    for name in names:
        value = record[name]
        text = local_time(value, utc) if is_time(name) else escape(value)
        click.echo(f"{name + ':':<{pad + 1}} {truncate(text, limit)}")


def is_time(column: str) -> bool:
    """True for the UV columns holding a timestamp (``...At``, ``StartTime``, ``StopTime``)."""
    return column.endswith("At") or column.endswith("Time")
