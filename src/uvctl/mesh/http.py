"""One keep-alive HTTP client with bounded retries, shared by the coordinator client and
plugins that talk HTTP themselves (meadowproxy's direct transport).

Retried: connection errors (including a keep-alive socket the server closed while idle)
and HTTP 502/503, with exponential backoff. Not retried: timeouts. TLS is verified
unless ``verify`` is False or a CA bundle path. httpx is imported on first use.
"""

from __future__ import annotations

import time

from ..errors import BackendUnavailable

RETRY_STATUSES = (502, 503)


class RetryingClient:
    """``request()`` answers an httpx Response, or raises ``unavailable`` (a BackendUnavailable)."""

    def __init__(self, base_url: str, *, what: str, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.2, verify=True, headers: dict | None = None,
                 unavailable: type[BackendUnavailable] = BackendUnavailable):
        self.base_url = base_url
        self.what = what
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.verify = verify
        if verify is False and base_url.startswith("https:"):
            import sys

            print(f"uvctl: warning: TLS certificate verification is OFF for the {what}; anyone on the path "
                  f"can read and change this traffic", file=sys.stderr)
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.unavailable = unavailable
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout, verify=self.verify,
                                        headers=self.headers)
        return self._client

    def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs):
        import httpx

        timeout = timeout if timeout is not None else self.timeout
        attempt = 0
        while True:
            try:
                response = self.client.request(method, path, timeout=timeout, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # retrying cannot fix a certificate
                    from ..errors import UvctlError

                    reason = str(exc).split("certificate verify failed:")[-1].strip(" ()_")
                    raise UvctlError(
                        f"the TLS certificate of the {self.what} could not be verified ({reason}); use a certificate "
                        f"a trusted CA signed, or point SSL_CERT_FILE at the CA that signed it"
                    ) from None
                if attempt >= self.retries:
                    raise self.unavailable(
                        f"cannot reach the {self.what} ({type(exc).__name__}) after {attempt + 1} attempts"
                    ) from None
            except httpx.TimeoutException:
                raise self.unavailable(f"the {self.what} did not answer {method} {path} within {timeout:g} s") from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return response
            time.sleep(self.backoff * (2**attempt))
            attempt += 1

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
