"""Errors that reach the user as one line, and the masking of secrets inside them."""

from __future__ import annotations

import re


class UvctlError(Exception):
    """A problem the user can fix: printed as one line, exit code ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(mask_secrets(message))
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UvctlError):
    """Bad input: a descriptor, a URL, a file, an option."""

    exit_code = 2


class BackendUnavailable(UvctlError):
    """The backend could not be reached; journal records stay pending."""

    exit_code = 3


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
# In a URL alone the password runs to its last '@': one holding a space or a raw '@' is masked whole.
# (The user part may hold a raw '@' too, as hosted databases' "admin@server" names do.)
_WHOLE_URL_PASSWORD = re.compile(r"^(?P<scheme>\s*[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/\s]*):(?P<pw>.*)@", re.DOTALL)
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>password|passwd|pwd|token|secret|sessionid|api[_-]?key)(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?!(?:YES|NO)\)(?:[\s\"'&;,}]|$))(?P<val>[^\s\"'&;,}]+)"
)


def mask_url(url: str) -> str:
    """``scheme://user:***@host/db?password=***`` for ``scheme://user:secret@host/db?password=secret``."""
    return mask_secrets(_WHOLE_URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url)))


def mask_secrets(text: str) -> str:
    """Mask passwords in URLs (``user:secret@`` and ``?password=secret``) and
    ``password=...``-style pairs anywhere in ``text``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}***", text)
