"""The direct transport's retries: 502/503 and refused connections, against a scripted server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from uvctl.errors import BackendUnavailable
from uvctl_meadowproxy.transport import DirectTransport


@pytest.fixture
def scripted():
    """A server answering the statuses in ``server.script`` in turn (then 200 ``[]``)."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.server.seen.append((self.path, self.headers.get("X-Beacon-User")))
            status = self.server.script.pop(0) if self.server.script else 200
            payload = json.dumps([] if status == 200 else {"Error": "busy"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.script, server.seen = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_502_and_503_are_retried_with_backoff(scripted):
    scripted.script = [503, 502]
    transport = DirectTransport(f"http://127.0.0.1:{scripted.server_address[1]}", "uvctl:test", backoff=0.01)
    answer = transport.request("GET", "/1.0/h/UVManifests/Count")
    assert answer.status == 200 and json.loads(answer.text) == []
    assert [user for _, user in scripted.seen] == ["uvctl:test"] * 3
    transport.close()


def test_a_server_that_stays_unavailable_is_backend_unavailable(scripted):
    scripted.script = [503] * 10
    transport = DirectTransport(f"http://127.0.0.1:{scripted.server_address[1]}", "u", retries=2, backoff=0.01)
    with pytest.raises(BackendUnavailable, match="HTTP 503 3 times; the records stay pending"):
        transport.request("GET", "/x")
    assert len(scripted.seen) == 3
    transport.close()


def test_a_refused_connection_is_retried_then_backend_unavailable():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = DirectTransport(f"http://127.0.0.1:{port}", "u", retries=1, backoff=0.01)
    with pytest.raises(BackendUnavailable, match=r"cannot reach .* \(ConnectError\) after 2 attempts"):
        transport.request("GET", "/x")
