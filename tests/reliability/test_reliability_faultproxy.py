"""The fault proxy itself: it injects what it says, passes the rest intact, and stops by itself."""

from __future__ import annotations

import errno
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from reliability.faultproxy import FaultProxy


class _Echo(BaseHTTPRequestHandler):
    seen: list = []
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo():
    _Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


_CLIENT = httpx.Client(timeout=10)  # one SSL context for the module: creating one costs ~40 ms


def _post(url: str, body: bytes):
    return _CLIENT.post(url + "/x", content=body)


def test_rate_zero_forwards_every_request_byte_for_byte(echo):
    with FaultProxy(echo.server_address[1], rate=0.0) as proxy:
        bodies = [bytes([n]) * (n * 1000 + 1) for n in range(20)]
        answers = [_post(proxy.url, body) for body in bodies]
    assert [a.status_code for a in answers] == [200] * 20
    assert [a.content for a in answers] == bodies
    assert proxy.counts["passed"] == 20 and proxy.faults == 0


@pytest.mark.parametrize("kind", ["500", "503"])
def test_status_faults_answer_without_reaching_the_server(echo, kind):
    with FaultProxy(echo.server_address[1], rate=1.0, kinds=(kind,)) as proxy:
        answers = [_post(proxy.url, b"payload") for _ in range(5)]
    assert {a.status_code for a in answers} == {int(kind)}
    assert _Echo.seen == [] and proxy.counts[kind] == 5


def test_500_after_reaches_the_server_but_answers_500(echo):
    with FaultProxy(echo.server_address[1], rate=1.0, kinds=("500-after",)) as proxy:
        answer = _post(proxy.url, b"applied")
    assert answer.status_code == 500 and _Echo.seen == [b"applied"]


@pytest.mark.parametrize("kind, reaches", [("drop", False), ("drop-after", True)])
def test_drops_close_the_connection_without_an_answer(echo, kind, reaches):
    with FaultProxy(echo.server_address[1], rate=1.0, kinds=(kind,)) as proxy:
        with pytest.raises(httpx.RemoteProtocolError):
            _post(proxy.url, b"lost")
    assert (_Echo.seen == [b"lost"]) is reaches


def test_mixed_rate_injects_about_that_share(echo):
    with FaultProxy(echo.server_address[1], rate=0.2, kinds=("503", "delay"), delay=(0.0, 0.001), seed=3) as proxy:
        statuses = [_post(proxy.url, b"x").status_code for _ in range(200)]
    assert 20 <= proxy.faults <= 60
    assert statuses.count(503) == proxy.counts["503"]
    assert proxy.counts["passed"] + proxy.faults == 200


def _tcp_echo():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except OSError:  # the proxy cut this connection on purpose; serve the next one
                    continue

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _roundtrip(port: int, payload: bytes) -> bytes:
    """What comes back for ``payload``; a reset connection counts as what arrived before it."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            while data := sock.recv(65536):
                got += data
        except OSError as exc:
            # the proxy may reset the connection before or while we write: ENOTCONN comes from
            # shutdown() on a socket the peer already reset (seen under load)
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN):
                raise
    return got


def test_tcp_mode_refuses_cuts_and_passes():
    listener = _tcp_echo()
    try:
        port = listener.getsockname()[1]
        with FaultProxy(port, mode="tcp", rate=0.0, chunk_rate=0.0) as proxy:
            assert _roundtrip(proxy.port, b"a" * 100_000) == b"a" * 100_000
        with FaultProxy(port, mode="tcp", rate=1.0, kinds=("refuse",)) as proxy:
            assert _roundtrip(proxy.port, b"hello") == b""
        with FaultProxy(port, mode="tcp", rate=1.0, kinds=("cut",), seed=1) as proxy:
            got = _roundtrip(proxy.port, b"b" * 200_000)
        assert 0 < len(got) < 200_000 and proxy.counts["cut"] == 1
    finally:
        listener.close()


def test_it_listens_on_loopback_only_and_stops_by_itself(echo):
    proxy = FaultProxy(echo.server_address[1], rate=0.0, lifetime=0.3).start()
    assert proxy.url.startswith("http://127.0.0.1:")
    time.sleep(1.0)  # past its lifetime: the accept loop ended and closed the listener
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    proxy.stop()
