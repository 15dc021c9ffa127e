"""A loopback TCP fault proxy: sits between uvctl and a server and misbehaves on purpose.

Two modes:

- ``http``: one request per upstream connection. Each request, with probability ``rate``,
  gets one fault drawn from ``kinds``:
  ``drop`` (close without an answer, the server never sees it), ``drop-after`` (the server
  handles it, the answer is thrown away and the connection closed), ``500`` / ``503``
  (answered by the proxy, the server never sees it), ``500-after`` (the server handles it,
  the client gets a 500), ``delay`` (forwarded after a pause).
- ``tcp``: byte streams (PostgreSQL). Each new connection, with probability ``rate``, gets
  ``refuse`` (closed at once), ``delay`` (connected after a pause) or ``cut`` (both sides
  closed after a random number of bytes from the server). A connection that passed is
  still cut (``cut-mid``) before any server chunk with probability ``chunk_rate``
  (default ``rate / 4``), so long-lived pooled connections see faults too.

Only 127.0.0.1 is ever listened on or connected to. Every loop is bounded: the proxy stops
by itself after ``lifetime`` seconds or ``max_connections`` connections, and idle sockets
time out. ``counts`` says what it did (``passed``, and one entry per fault kind).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter

LOOPBACK = "127.0.0.1"
HTTP_KINDS = ("drop", "drop-after", "500", "503", "500-after", "delay")
TCP_KINDS = ("refuse", "delay", "cut")
_MAX_HEAD = 64 * 1024
_REASONS = {500: "Internal Server Error", 503: "Service Unavailable"}


class FaultProxy:
    """``FaultProxy(target_port, mode="http", rate=0.2).start()``; ``.url``; ``.stop()``."""

    def __init__(self, target_port: int, *, mode: str = "http", rate: float = 0.2, kinds=None,
                 delay: tuple[float, float] = (0.02, 0.2), seed: int = 0, lifetime: float = 1800.0,
                 max_connections: int = 1_000_000, idle_timeout: float = 60.0, chunk_rate: float | None = None):
        if mode not in ("http", "tcp"):
            raise ValueError("mode must be 'http' or 'tcp'")
        allowed = HTTP_KINDS if mode == "http" else TCP_KINDS
        self.kinds = tuple(kinds or allowed)
        unknown = set(self.kinds) - set(allowed)
        if unknown:
            raise ValueError(f"unknown {mode} fault kinds: {sorted(unknown)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        self.target_port = int(target_port)
        self.mode = mode
        self.rate = rate
        self.chunk_rate = rate / 4 if chunk_rate is None else chunk_rate
        self.delay = delay
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.counts: Counter = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._open: set = set()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def faults(self) -> int:
        """How many faults were injected so far."""
        with self._lock:
            return sum(n for kind, n in self.counts.items() if kind != "passed")

    def start(self) -> "FaultProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._deadline = time.monotonic() + self.lifetime
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every open socket (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def set_rate(self, rate: float) -> None:
        """Change the fault rate while running (0 turns the proxy into a plain forwarder)."""
        with self._lock:
            self.rate = rate
            self.chunk_rate = rate / 4

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ plumbing
    def _accept_loop(self) -> None:
        accepted = 0
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline and accepted < self.max_connections:
                try:
                    client, _ = self._listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                accepted += 1
                client.settimeout(self.idle_timeout)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._track(client)
                handler = self._http_client if self.mode == "http" else self._tcp_client
                threading.Thread(target=self._guard, args=(handler, client), daemon=True).start()
        finally:
            _close(self._listener)
            self._stop.set()

    def _guard(self, handler, client) -> None:
        try:
            handler(client)
        except OSError:
            pass
        finally:
            self._untrack(client)
            _close(client)

    def _track(self, sock) -> None:
        with self._lock:
            self._open.add(sock)

    def _untrack(self, sock) -> None:
        with self._lock:
            self._open.discard(sock)

    def _draw(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.rate:
                self.counts["passed"] += 1
                return None
            kind = self._rng.choice(self.kinds)
            self.counts[kind] += 1
            return kind

    def _cut_now(self) -> bool:
        with self._lock:
            if self._rng.random() >= self.chunk_rate:
                return False
            self.counts["cut-mid"] += 1
            return True

    def _pause(self) -> None:
        with self._lock:
            seconds = self._rng.uniform(*self.delay)
        self._stop.wait(seconds)

    def _upstream(self) -> socket.socket:
        sock = socket.create_connection((LOOPBACK, self.target_port), timeout=self.idle_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(sock)
        return sock

    # ------------------------------------------------------------------ http mode
    def _http_client(self, client) -> None:
        request = _read_request(client)
        if request is None:
            return
        kind = self._draw()
        if kind == "drop":
            return
        if kind in ("500", "503"):
            client.sendall(_error_response(int(kind)))
            return
        if kind == "delay":
            self._pause()
        response = self._forward(request)
        if kind == "drop-after" or response is None:
            return
        if kind == "500-after":
            client.sendall(_error_response(500))
            return
        client.sendall(response)

    def _forward(self, request: bytes) -> bytes | None:
        upstream = self._upstream()
        try:
            upstream.sendall(request)
            chunks, deadline = [], time.monotonic() + self.idle_timeout
            while time.monotonic() < deadline:  # the server closes: we asked for Connection: close
                data = upstream.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return _close_after(b"".join(chunks)) if chunks else None
        finally:
            self._untrack(upstream)
            _close(upstream)

    # ------------------------------------------------------------------ tcp mode
    def _tcp_client(self, client) -> None:
        kind = self._draw()
        if kind == "refuse":
            return
        if kind == "delay":
            self._pause()
        upstream = self._upstream()
        budget = None
        if kind == "cut":
            with self._lock:
                budget = [self._rng.randint(1, 64 * 1024)]
        try:
            threads = [
                threading.Thread(target=self._pump, args=(client, upstream, None, False), daemon=True),
                threading.Thread(target=self._pump, args=(upstream, client, budget, kind is None), daemon=True),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(self.lifetime)
        finally:
            self._untrack(upstream)
            _close(upstream)

    def _pump(self, src, dst, budget, may_cut: bool) -> None:
        """Copy ``src`` → ``dst``; an end of stream half-closes ``dst``, a fault closes both."""
        cut = True
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    cut = False
                    break
                if may_cut and self._cut_now():
                    break
                if budget is not None:
                    if len(data) >= budget[0]:
                        dst.sendall(data[: budget[0]])
                        break
                    budget[0] -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock, how in ((dst, socket.SHUT_WR),) if not cut else ((src, socket.SHUT_RDWR), (dst, socket.SHUT_RDWR)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def _close(sock) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def _read_request(client) -> bytes | None:
    """One whole HTTP/1.1 request (head + Content-Length body), rewritten to ``Connection: close``."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEAD:
            return None
        data = client.recv(65536)
        if not data:
            return None
        buf += data
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = 0
    kept = [lines[0]]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name == b"content-length":
            length = int(line.split(b":", 1)[1].strip())
        if name in (b"connection", b"keep-alive"):
            continue
        kept.append(line)
    kept.append(b"Connection: close")
    while len(body) < length:
        data = client.recv(min(65536, length - len(body)))
        if not data:
            return None
        body += data
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def _close_after(response: bytes) -> bytes:
    """The server's answer with ``Connection: close`` so the client never reuses the socket."""
    if b"\r\n\r\n" not in response:
        return response
    head, body = response.split(b"\r\n\r\n", 1)
    lines = [line for line in head.split(b"\r\n") if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body


def _error_response(status: int) -> bytes:
    body = b'{"Error":"fault proxy: injected ' + str(status).encode() + b'"}'
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body
