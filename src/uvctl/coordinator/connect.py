"""A coordinator client for the console: cached session cookie, login on demand.

The coordinator answers 401 on a secured instance; the shared client then calls
:meth:`ConsoleCoordinator.login`, which takes the user from the URL, ``--user`` /
``UVCTL_COORDINATOR_USER`` or the cached session, and the password from
``UVCTL_COORDINATOR_PASSWORD`` or a hidden prompt (only on a terminal). Passwords are never
options. A successful login caches the ``SessionID`` cookie (see :mod:`uvctl.mesh.session`),
which later runs send first.
"""

from __future__ import annotations

import os
import sys

from ..errors import UsageError, UvctlError
from ..mesh import Coordinator, split_credentials
from ..mesh.session import SessionCache

URL_ENV = "UVCTL_COORDINATOR"
USER_ENV = "UVCTL_COORDINATOR_USER"
PASSWORD_ENV = "UVCTL_COORDINATOR_PASSWORD"


class ConsoleCoordinator(Coordinator):
    """:class:`uvctl.mesh.Coordinator` with a persistent session and interactive login."""

    def __init__(self, url: str, *, username: str | None = None, sessions: SessionCache | None = None,
                 interactive: bool | None = None, **options):
        super().__init__(url, username=username, **options)
        self.sessions = sessions if sessions is not None else SessionCache()
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        cached = self.sessions.get(self.base_url)
        self._cached_session = None
        if cached and (not self.username or cached.get("UserName") in (None, self.username)):
            self.username = self.username or cached.get("UserName")
            self._cached_session = cached["SessionID"]

    def _http(self):
        client = super()._http()
        if self._cached_session:
            client.client.cookies.set("SessionID", self._cached_session)
            self._cached_session = None
        return client

    def login(self) -> None:
        """``POST /1.0/Authenticate`` with the user and password found or asked for; cache the cookie."""
        if not self.username:
            self.username = os.environ.get(USER_ENV) or self._ask("user", hide=False)
        if self.password is None:
            self.password = os.environ.get(PASSWORD_ENV)
            if self.password is None:
                self.password = self._ask("password", hide=True)
        cookies = self._http().client.cookies
        cookies.clear()
        try:
            super().login()
        except UvctlError as exc:
            if exc.exit_code != 1:  # unreachable: keep the original error and its code
                raise
            self.sessions.forget(self.base_url)
            raise UvctlError(
                f"login to the coordinator at {self.display_url} as {self.username!r} failed; check the user "
                f"(--user or {USER_ENV}) and the password ({PASSWORD_ENV} or the prompt)"
            ) from None
        session = cookies.get("SessionID")
        if session:
            self.sessions.save(self.base_url, session, self.username)

    def auth_enabled(self) -> bool | None:
        """``AuthEnabled`` of ``GET /status`` (mesh reference §1.8): False on a promiscuous coordinator."""
        response = self._request("GET", "/status")
        data = self._json(response)
        value = data.get("AuthEnabled") if response.status_code == 200 and isinstance(data, dict) else None
        return value if isinstance(value, bool) else None

    def _ask(self, what: str, hide: bool) -> str:
        if not self.interactive:
            raise UvctlError(
                f"the coordinator at {self.display_url} requires a login and no {what} is set: set "
                f"{USER_ENV if what == 'user' else PASSWORD_ENV} (or run 'uvctl coordinator login' on a terminal)"
            )
        import click

        label = f"{what.capitalize()} for {self.display_url}" + (f" ({self.username})" if hide and self.username else "")
        return click.prompt(label, hide_input=hide, err=True)


def open_coordinator(url: str | None, user: str | None = None, url_from_flag: bool = True,
                     **options) -> ConsoleCoordinator:
    """The console client for ``url``; a UsageError when it is missing or carries a password in a flag."""
    if not url:
        raise UsageError(f"no coordinator given: pass --coordinator URL or set {URL_ENV}")
    _, _, password = split_credentials(url)
    if password is not None and url_from_flag:
        raise UsageError(
            f"--coordinator must not carry a password (it would stay in the shell history); "
            f"set {PASSWORD_ENV} or let uvctl prompt for it"
        )
    return ConsoleCoordinator(url, username=user, **options)
