"""How a meadow request travels: straight over HTTP (``direct``) or as a mesh work item.

Both transports take ``(method, path, body)`` with an already percent-encoded path and
a JSON string body, and answer an :class:`HttpAnswer` (the meadow server's status and
raw text). ``direct`` retries connection errors and 502/503 with backoff; ``mesh``
wraps each request in a ``MeadowProxy``/``Request`` work item for one named beacon
(the coordinator client does the retrying there). A beacon's refusal (allowlist, writes
disabled, connection errors on its side) raises :class:`uvctl.mesh.WorkError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from uvctl.errors import BackendUnavailable
from uvctl.mesh import WorkError, split_credentials
from uvctl.mesh.http import RETRY_STATUSES

@dataclass
class HttpAnswer:
    """A meadow server's answer: HTTP status, raw body text, lower-case headers."""

    status: int
    text: str
    headers: dict = field(default_factory=dict)


class DirectTransport:
    """httpx with keep-alive to a meadow REST server or a databeacon's base URL."""

    def __init__(self, url: str, remote_user: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.2, verify=True):
        from uvctl.mesh.http import RetryingClient

        self.base_url, _, _ = split_credentials(url)
        self.remote_user = remote_user
        self.http = RetryingClient(self.base_url, what=self.describe(), timeout=timeout, retries=retries,
                                   backoff=backoff, verify=verify, headers={"X-Beacon-User": remote_user})

    def describe(self) -> str:
        return f"meadow REST server at {self.base_url}"

    def request(self, method: str, path: str, body: str | None = None) -> HttpAnswer:
        """Send one request; BackendUnavailable when the server cannot be reached."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        content = body.encode("utf-8") if body is not None else None
        try:
            response = self.http.request(method, path, content=content, headers=headers)
        except BackendUnavailable as exc:
            raise BackendUnavailable(f"{exc}; the records stay pending") from None
        if response.status_code in RETRY_STATUSES:  # still unavailable after the retries
            raise BackendUnavailable(
                f"the {self.describe()} answered {method} {path} with HTTP {response.status_code} "
                f"{self.http.retries + 1} times; the records stay pending"
            )
        return HttpAnswer(response.status_code, response.text, dict(response.headers))

    def close(self) -> None:
        self.http.close()


#: How often a MeadowProxy answer whose body does not match its Content-Length is asked again.
DAMAGED_RETRIES = 2


def _damaged(text: str, headers: dict) -> str | None:
    """Why a proxied body cannot be the server's (its Content-Length disagrees), or None."""
    length = str(headers.get("content-length") or headers.get("Content-Length") or "")
    if length.isdigit() and int(length) != len(text.encode("utf-8")):
        return f"Content-Length {length}, received {len(text.encode('utf-8'))} bytes"
    return None


class MeshTransport:
    """Each request is a ``MeadowProxy``/``Request`` work item for the beacon ``beacon``."""

    def __init__(self, coordinator, beacon: str, remote_user: str, *, timeout_ms: int = 30000):
        self.coordinator = coordinator
        self.beacon = beacon
        self.remote_user = remote_user
        self.timeout_ms = timeout_ms
        self.beacon_id: str | None = None  # the BeaconID seen first (or at the last bootstrap)

    def describe(self) -> str:
        return f"beacon {self.beacon!r} via the coordinator at {self.coordinator.display_url}"

    def run(self, capability: str, action: str, settings: dict, timeout_ms: int | None = None) -> dict:
        """Any work item on the assigned beacon (bootstrap steps); its Outputs."""
        self.check_same_beacon()
        return self.coordinator.dispatch(capability, action, settings, self.beacon, timeout_ms or self.timeout_ms)

    def check_same_beacon(self) -> None:
        """A WorkError when the beacon re-registered since it was first seen (a reconnect:
        a restarted databeacon has lost its runtime allowlist, so bootstrap again)."""
        self.coordinator.require_beacon(self.beacon)
        current = self.coordinator.beacon_ids.get(self.beacon)
        if self.beacon_id is None:
            self.beacon_id = current
        elif current is not None and current != self.beacon_id:
            raise WorkError(f"beacon {self.beacon!r} re-registered ({self.beacon_id} -> {current}); bootstrap again")

    def request(self, method: str, path: str, body: str | None = None) -> HttpAnswer:
        settings = {"Method": method, "Path": path, "RemoteUser": self.remote_user}
        if body is not None:
            settings["Body"] = body
        for attempt in range(DAMAGED_RETRIES + 1):
            outputs = self.run("MeadowProxy", "Request", settings)
            status = outputs.get("Status")
            if not isinstance(status, int):
                raise WorkError(f"beacon {self.beacon!r} answered MeadowProxy/Request without an HTTP Status")
            text = outputs.get("Body") if isinstance(outputs.get("Body"), str) else ""
            headers = outputs.get("Headers") if isinstance(outputs.get("Headers"), dict) else {}
            damaged = _damaged(text, headers)
            if damaged is None:
                return HttpAnswer(status, text, headers)
        # Upstream's MeadowProxy decodes each chunk on its own, so a character split across
        # chunks becomes U+FFFD: the JSON stays valid and the data silently wrong.
        raise WorkError(
            f"{method} {path}: the body from beacon {self.beacon!r} arrived damaged {DAMAGED_RETRIES + 1} times "
            f"({damaged}; MeadowProxy splits UTF-8 characters across chunks); not using it"
        )

    def close(self) -> None:
        self.coordinator.close()
