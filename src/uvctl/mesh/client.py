"""A client of an Ultravisor coordinator: beacons, login, and synchronous work dispatch.

Work goes to one beacon by name: ``POST /Beacon/Work/Dispatch`` with ``AffinityKey`` set
to the beacon's Name and ``RequireAffinityMatch: true``. The coordinator would make a
dispatch to a missing name wait out its whole timeout (and may hand it to another
beacon), so the beacon is looked up in ``GET /Beacon`` first. httpx is imported
lazily so that ``uvctl --help`` stays light.
"""

from __future__ import annotations

import time
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import BackendUnavailable, UsageError, UvctlError, mask_url

class MeshError(UvctlError):
    """The coordinator answered, but not with what was asked for."""


class WorkError(MeshError):
    """The beacon ran the work item and reported an error (its ``ErrorMessage``)."""


class CoordinatorUnavailable(BackendUnavailable):
    """The coordinator cannot be reached (after the retries)."""


class BeaconNotFound(BackendUnavailable):
    """No beacon with that Name is registered with the coordinator."""


class DispatchTimeout(BackendUnavailable):
    """The beacon did not finish the work item within its timeout."""


def split_credentials(url: str, what: str = "coordinator URL") -> tuple[str, str | None, str | None]:
    """``(url without user:password@, user, password)``; a UsageError naming ``what`` for a non-http URL."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL"
        raise UsageError(f"{what} {mask_url(url)!r} is not a valid URL ({exc}); it must look like http(s)://host:port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} {mask_url(url)!r} must look like http(s)://host:port")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port:
        netloc += f":{port}"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), user, password


class Coordinator:
    """One coordinator, one keep-alive HTTP client, an optional login.

    ``url`` may carry ``user:password@`` for a secured coordinator (the password never
    appears in messages). ``retries`` bounds the retries on connection errors and
    502/503, with exponential ``backoff`` seconds. TLS certificates are verified unless
    ``verify`` is False (or a CA bundle path).
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        verify=True,
        beacon_ttl: float = 5.0,
    ):
        self.base_url, url_user, url_password = split_credentials(url)
        self.username = username if username is not None else url_user
        self.password = password if password is not None else url_password
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.verify = verify
        self.beacon_ttl = beacon_ttl
        self._client = None
        self._beacon_seen: dict[str, float] = {}
        #: The BeaconID each beacon name had when last seen: a new one means it re-registered.
        self.beacon_ids: dict[str, str | None] = {}

    # -- plumbing -----------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The coordinator URL as it may appear in messages."""
        return self.base_url

    def _http(self):
        if self._client is None:
            from .http import RetryingClient

            self._client = RetryingClient(
                self.base_url, what=f"Ultravisor coordinator at {self.base_url}", timeout=self.timeout,
                retries=self.retries, backoff=self.backoff, verify=self.verify,
                unavailable=CoordinatorUnavailable,
            )
        return self._client

    def close(self) -> None:
        """Close the HTTP client (idempotent)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method: str, path: str, body=None, timeout: float | None = None, _login_retry=True):
        """One HTTP exchange (retried on connection errors and 502/503); logs in once on a 401."""
        from .http import RETRY_STATUSES

        response = self._http().request(method, path, json=body, timeout=timeout)
        if response.status_code == 401 and _login_retry:
            self.login()
            return self._request(method, path, body, timeout, _login_retry=False)
        if response.status_code in RETRY_STATUSES:
            data = self._json(response)
            error = data.get("Error") if isinstance(data, dict) else None
            raise CoordinatorUnavailable(
                f"the coordinator at {self.display_url} answered {method} {path} with HTTP "
                f"{response.status_code} ({error or 'unavailable'}) after {self.retries + 1} attempts"
            )
        return response

    @staticmethod
    def _json(response):
        try:
            return response.json()
        except ValueError:
            return None

    # -- login ----------------------------------------------------------------------

    def use_session(self, session_id: str) -> None:
        """Send ``session_id`` as the ``SessionID`` cookie (a session cached by an earlier login)."""
        self._http().client.cookies.set("SessionID", session_id)


    def login(self) -> None:
        """``POST /1.0/Authenticate``; the ``SessionID`` cookie rides on later requests."""
        if not self.username:
            raise UvctlError(
                f"the coordinator at {self.display_url} requires a login; run 'uvctl coordinator login' "
                f"or put the user in the URL (https://USER:PASSWORD@host:port)"
            )
        response = self._request(
            "POST",
            "/1.0/Authenticate",
            {"UserName": self.username, "Password": self.password or ""},
            _login_retry=False,
        )
        data = self._json(response) or {}
        if response.status_code >= 400 or not data.get("LoggedIn"):
            raise UvctlError(
                f"login to the coordinator at {self.display_url} as {self.username!r} failed "
                f"(HTTP {response.status_code}); check the user and password in --url"
            )
        client = self._http().client
        if "SessionID" not in client.cookies and data.get("SessionID"):
            client.cookies.set("SessionID", str(data["SessionID"]))

    # -- beacons --------------------------------------------------------------------

    def list_beacons(self) -> list[dict]:
        """The coordinator's beacon records (``GET /Beacon``)."""
        response = self._request("GET", "/Beacon")
        data = self._json(response)
        if response.status_code != 200 or not isinstance(data, list):
            raise MeshError(
                f"GET /Beacon on {self.display_url} answered HTTP {response.status_code}, not a beacon "
                f"list; is --url an Ultravisor coordinator?"
            )
        return data

    def find_beacon(self, name: str) -> dict | None:
        """The record of the beacon called ``name``, or None when it is not registered."""
        for record in self.list_beacons():
            if record.get("Name") == name and record.get("Status") != "Offline":
                self._beacon_seen[name] = time.monotonic()
                self.beacon_ids[name] = record.get("BeaconID")
                return record
        self._beacon_seen.pop(name, None)
        return None

    def require_beacon(self, name: str) -> None:
        """Raise BeaconNotFound unless ``name`` is registered (checked at most every ``beacon_ttl`` s)."""
        seen = self._beacon_seen.get(name)
        if seen is not None and time.monotonic() - seen < self.beacon_ttl:
            return
        if self.find_beacon(name) is None:
            names = sorted({str(b.get("Name")) for b in self.list_beacons() if b.get("Name")})
            raise BeaconNotFound(
                f"beacon {name!r} is not registered with the coordinator at {self.display_url} "
                f"(registered: {', '.join(names) or 'none'}); start it or fix --beacon"
            )

    # -- work -------------------------------------------------------------------------

    def dispatch(self, capability: str, action: str, settings: dict, beacon: str, timeout_ms: int = 30000) -> dict:
        """Run one work item on the beacon called ``beacon``; its ``Outputs``.

        Raises BeaconNotFound (the name is not registered), DispatchTimeout (no answer
        within ``timeout_ms``), WorkError (the beacon reported an error, or lacks the
        capability), CoordinatorUnavailable, or MeshError.
        """
        return self.dispatch_item(capability, action, settings, beacon, timeout_ms)[1]

    def dispatch_item(self, capability: str, action: str, settings: dict, beacon: str,
                      timeout_ms: int = 30000) -> tuple[str | None, dict]:
        """:meth:`dispatch`, also giving the work item's ``WorkItemHash``."""
        self.require_beacon(beacon)
        request = {
            "Capability": capability,
            "Action": action,
            "Settings": settings,
            "AffinityKey": beacon,
            "RequireAffinityMatch": True,
            "TimeoutMs": int(timeout_ms),
        }
        response = self._request("POST", "/Beacon/Work/Dispatch", request, timeout=timeout_ms / 1000 + self.timeout)
        data = self._json(response)
        data = data if isinstance(data, dict) else {}
        if response.status_code == 200 and data.get("Success"):
            outputs = data.get("Outputs")
            outputs = outputs if isinstance(outputs, dict) else {}
            if outputs.get("ExitCode") == -1 and str(outputs.get("StdOut", "")).startswith("Unknown capability"):
                raise WorkError(f"beacon {beacon!r} does not provide {capability}/{action}")
            return data.get("WorkItemHash"), outputs
        error = str(data.get("Error") or f"HTTP {response.status_code}")
        if response.status_code == 500 and "timed out" in error:
            self._beacon_seen.pop(beacon, None)
            raise DispatchTimeout(
                f"beacon {beacon!r} did not finish {capability}/{action} within {timeout_ms} ms "
                f"(coordinator {self.display_url}: {error}); is the beacon polling?"
            )
        if response.status_code == 500:
            raise WorkError(error)
        raise MeshError(
            f"POST /Beacon/Work/Dispatch on {self.display_url} answered HTTP {response.status_code}: {error}"
        )
