"""Errors that reach the user as one line, and the masking of secrets inside them.

Masking runs over every error message, so it is linear in its input: URL passwords are found
by ``str.find`` scans that never go over the same text twice, and the one regex left starts
with literal words and uses only possessive repeats (nothing to backtrack into).
"""

from __future__ import annotations

import re

#: Characters of an error message at most (after masking): an error names what is wrong, it
#: does not echo a megabyte of input back.
MAX_MESSAGE = 4000
#: Characters of a value quoted by :func:`excerpt`.
EXCERPT = 80


class UvctlError(Exception):
    """A problem the user can fix: printed as one line, exit code ``exit_code``.

    The message is masked (:func:`mask_secrets`), its control characters escaped
    (:func:`printable`, so it stays one line) and cut to :data:`MAX_MESSAGE` characters;
    ``details`` are lines printed indented under it, each treated the same way.
    """

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None, details=()):
        super().__init__(safe_text(message) + "".join(f"\n  {safe_text(line)}" for line in details))
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UvctlError):
    """Bad input: a descriptor, a URL, a file, an option."""

    exit_code = 2


class BackendUnavailable(UvctlError):
    """The backend could not be reached; journal records stay pending."""

    exit_code = 3


def safe_text(text) -> str:
    """``text`` as an error line may show it: secrets masked, control characters escaped, cut
    to :data:`MAX_MESSAGE` characters."""
    text = printable(mask_secrets(text))
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE} more characters)"


def excerpt(value, limit: int = EXCERPT) -> str:
    """``repr(value)``, cut to about ``limit`` characters, for naming a value in an error."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {round(value.bit_length() * 0.30103)} digits"  # str() of it may refuse
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


#: Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
#: overrides a terminal would act on: escaped in every printed value.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\r``, ``\\x1b``): one line, no
    terminal escape sequences."""
    text = str(text)
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>password|passwd|pwd|token|secret|sessionid|api[_-]?key)"
    # the separator, raw or percent-encoded (a URL's query: options=-c%20password%3Dsecret)
    r"(?P<sep>(?:[\"']|%2[27])?+(?:\s|%20)*+(?:[=:]|%3[aAdD])(?:\s|%20)*+(?:[\"']|%2[27])?+)"
    r"(?!(?:YES|NO)\)(?:[\s\"'&;,}]|$))(?P<val>[^\s\"'&;,}]++)"
)
_USER_END = re.compile(r"[:/@\s]")
_PASSWORD_END = re.compile(r"[@\s]")


def mask_url(url: str) -> str:
    """``scheme://user:***@host/db?password=***`` for ``scheme://user:secret@host/db?password=secret``.

    In a URL alone the password runs to its last ``@``: one holding a space or a raw ``@``
    is masked whole (the user part may hold a raw ``@`` too, as hosted databases'
    ``admin@server`` names do)."""
    url = str(url)
    start = len(url) - len(url.lstrip())
    slashes = url.find("://", start)
    at = url.rfind("@")
    if slashes > start and url[start].isascii() and url[start].isalpha() and _scheme(url[start:slashes]):
        colon = _first(url, ":/", slashes + 3)
        if colon is not None and url[colon] == ":" and at > colon and not any(c.isspace() for c in url[slashes + 3:colon]):
            url = f"{url[:colon + 1]}***{url[at:]}"
    return mask_secrets(url)


def mask_secrets(text: str) -> str:
    """Mask passwords in URLs (``user:secret@`` and ``?password=secret``) and
    ``password=...``-style pairs anywhere in ``text``."""
    return _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}***", _mask_url_passwords(str(text)))


def _mask_url_passwords(text: str) -> str:
    """Every ``://user:password@`` of ``text`` as ``://user:***@``, in one pass.

    From each ``://`` the user part ends at the next ``:``, ``/``, ``@`` or space (so these scans
    never overlap: the next ``://`` stops them), and the password at the next ``@`` or space,
    found once and reused while it lies ahead (so that scan never repeats either).
    """
    if "://" not in text:
        return text
    parts, kept, search = [], 0, 0
    end = -1  # the first '@' or space at or after the last password start looked at
    while (slashes := text.find("://", search)) >= 0:
        search = slashes + 3
        user_end = _USER_END.search(text, search)
        if user_end is None or user_end[0] != ":":
            continue
        colon = user_end.start()
        if end <= colon:
            found = _PASSWORD_END.search(text, colon + 1)
            end = found.start() if found else len(text)
        if end < len(text) and text[end] == "@":
            parts += (text[kept:colon + 1], "***")
            kept = search = end
    parts.append(text[kept:])
    return "".join(parts)


def _scheme(text: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "+.-") for c in text)


def _first(text: str, chars: str, start: int):
    """The index of the first of ``chars`` in ``text`` from ``start``, or None."""
    found = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(found) if found else None
