"""The two ways a beacon is attached to the coordinator: a WebSocket, or HTTP polling.

A session registers, hands the work items it receives to ``on_items(batch)``, a list of
``(raw, received_at, reply)`` where ``reply(work_hash, outputs, error) -> bool`` sends an
answer (False when the coordinator did not take it), and deregisters. A batch holds what
arrived together (up to the frames in flight), so its writes share one journal commit. :meth:`serve` returns None when asked to stop, or the
reason the attachment was lost (the runner then reconnects). Frames: :mod:`.protocol`.

- :class:`WebSocketSession` (recommended): one beacon with both capabilities; work is
  pushed; closing the socket deregisters at once; a new BeaconID at every registration.
- :class:`HttpSession`: one beacon per capability, named ``queue-persistence`` and
  ``manifest-store`` (the only names whose items the coordinator does not strand), each
  polled every 10 ms when idle and at once after an item; ``DELETE /Beacon/<id>`` on
  shutdown (an HTTP beacon that stops polling stays Online and every write to it is lost).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time

import orjson

from ..actions import CAPABILITY, MANIFEST, QUEUE
from ..errors import BackendUnavailable, UvctlError
from .protocol import (CAPABILITIES, HTTP_NAMES, MAX_FRAME, complete_frame, deregister_frame, error_frame,
                       register_frame, websocket_url)

log = logging.getLogger("uvctl.beacon")

#: Seconds between two polls of an idle HTTP beacon.
POLL_IDLE = 0.01
#: Seconds between two checks that an HTTP beacon is still registered (Poll cannot tell).
HTTP_CHECK_EVERY = 2.0


def _encode(frame: dict) -> str:
    """A frame as JSON text (a text frame: the coordinator parses text); orjson, several times
    faster, with the json module for what it refuses (a lone surrogate, an integer past 64 bits)."""
    try:
        return orjson.dumps(frame, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(frame, default=str)


def _decode(data):
    """A received frame: orjson first, the json module for what orjson refuses."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class Rejected(BackendUnavailable):
    """The coordinator refused the registration (``BeaconRejected``): retried with backoff."""


class WebSocketSession:
    """One WebSocket beacon advertising both capabilities."""

    transport = "websocket"

    def __init__(self, coordinator, name: str, max_concurrent: int):
        self.coordinator, self.name, self.max_concurrent = coordinator, name, max_concurrent
        self.beacon_id: str | None = None
        self._ws = None

    def open(self) -> dict:
        """Connect and register; ``{"Queue": BeaconID, "Manifest": BeaconID}`` (the same ID)."""
        from websockets.exceptions import InvalidHandshake, WebSocketException
        from websockets.sync.client import connect

        url = websocket_url(self.coordinator.base_url)
        headers = {}
        session = self.coordinator._http().client.cookies.get("SessionID")
        if session:
            headers["Cookie"] = f"SessionID={session}"
        try:
            # entered as a context manager (closed in close()): what websockets >= 17.1 asks of a
            # connection kept open, and what every older version also accepts
            self._ws = connect(url, additional_headers=headers, max_size=MAX_FRAME, open_timeout=10,
                               close_timeout=2, compression=None).__enter__()
            self._ws.send(json.dumps(register_frame(self.name, self.max_concurrent, CAPABILITIES)))
            reply = json.loads(self._ws.recv(timeout=10))
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException, ValueError) as exc:
            self.close(deregister=False)
            raise BackendUnavailable(f"cannot open the WebSocket {url} ({type(exc).__name__}: {exc})") from None
        if reply.get("EventType") == "BeaconRejected":
            self.close(deregister=False)
            raise Rejected(f"the coordinator rejected the beacon: {reply.get('Reason') or 'no reason given'}")
        if reply.get("EventType") != "BeaconRegistered" or not reply.get("BeaconID"):
            self.close(deregister=False)
            raise BackendUnavailable(f"the coordinator answered the registration with {str(reply)[:200]}")
        self.beacon_id = str(reply["BeaconID"])
        return {QUEUE: self.beacon_id, MANIFEST: self.beacon_id}

    def serve(self, stop: threading.Event, on_items) -> str | None:
        """Receive frames until ``stop`` is set (None) or the socket is lost (the reason); the
        frames already waiting when one arrives are handed over with it, as one batch."""
        from websockets.exceptions import ConnectionClosed

        ws = self._ws
        while not stop.is_set():
            batch: list = []
            try:
                data = ws.recv(timeout=0.25, decode=False)
                while True:
                    self._take(data, batch)
                    if len(batch) >= self.max_concurrent:
                        break
                    data = ws.recv(timeout=0, decode=False)
            except TimeoutError:
                pass
            except ConnectionClosed as exc:
                if batch:
                    on_items(batch)  # journaled all the same; their answers cannot be sent
                return f"the coordinator closed the WebSocket ({exc})"
            except OSError as exc:
                if batch:
                    on_items(batch)
                return f"the WebSocket failed ({exc})"
            if batch:
                on_items(batch)
        return None

    def _take(self, data, batch: list) -> None:
        received = time.perf_counter()
        try:
            frame = _decode(data)
        except ValueError:
            log.warning("ignored a frame that is not JSON: %.80r", data)
            return
        if isinstance(frame, dict) and frame.get("EventType") == "WorkItem":
            batch.append((frame.get("WorkItem"), received, self.answer))

    def receive_pending(self, on_items, timeout: float) -> int:
        """Hand over the frames that arrive within ``timeout`` s (a stopping beacon answers
        what was already pushed to it); how many work items there were."""
        if self._ws is None:
            return 0
        stop, count = threading.Event(), 0

        def counted(batch):
            nonlocal count
            count += len(batch)
            on_items(batch)

        timer = threading.Timer(timeout, stop.set)
        timer.start()
        try:
            self.serve(stop, counted)
        finally:
            timer.cancel()
        return count

    def answer(self, work_hash: str, outputs: dict | None, error: str | None) -> bool:
        """Send WorkComplete (``outputs``) or WorkError (``error``); False when the socket is gone."""
        frame = complete_frame(work_hash, outputs) if error is None else error_frame(work_hash, error)
        try:
            self._ws.send(_encode(frame))
        except Exception:  # ConnectionClosed, or a socket error: the coordinator has dropped us
            return False
        return True

    def close(self, deregister: bool = True) -> None:
        """Deregister (when registered) and close the socket; never raises."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            if deregister and self.beacon_id:
                ws.send(json.dumps(deregister_frame(self.beacon_id)))
            ws.close()
        except Exception:
            pass


class HttpSession:
    """Two HTTP-polling beacons, ``queue-persistence`` and ``manifest-store``."""

    transport = "http"

    def __init__(self, coordinator, max_concurrent: int):
        self.coordinator = coordinator
        # name-routed items count against capacity before delivery (mesh §6.1): one slot spare
        self.max_concurrent = max(2, max_concurrent)
        self.beacon_ids: dict = {}
        self._lost: str | None = None

    def open(self) -> dict:
        """Register both beacons; their BeaconIDs (the same ones again on a re-register)."""
        for bridge in (QUEUE, MANIFEST):
            body = register_frame(HTTP_NAMES[bridge], self.max_concurrent, [CAPABILITY[bridge]])
            body.pop("Action")
            response = self.coordinator._request("POST", "/Beacon/Register", body)
            data = self.coordinator._json(response) or {}
            if response.status_code != 200 or not data.get("BeaconID"):
                raise BackendUnavailable(f"POST /Beacon/Register answered HTTP {response.status_code}: "
                                         f"{(data.get('Error') if isinstance(data, dict) else None) or 'no BeaconID'}")
            self.beacon_ids[bridge] = str(data["BeaconID"])
        return dict(self.beacon_ids)

    def serve(self, stop: threading.Event, on_items) -> str | None:
        """Poll both beacons until ``stop`` (None) or one is lost (the reason)."""
        lost = threading.Event()
        threads = [threading.Thread(target=self._poll, args=(bridge, stop, lost, on_items), daemon=True,
                                    name=f"uvctl-beacon-poll-{bridge.lower()}") for bridge in (QUEUE, MANIFEST)]
        for thread in threads:
            thread.start()
        while not stop.is_set() and not lost.is_set():
            stop.wait(0.25)
        lost.set()  # the other poller stops too
        for thread in threads:
            thread.join(15)
        return None if stop.is_set() and self._lost is None else self._lost

    def _poll(self, bridge: str, stop, lost, on_items) -> None:
        """Poll one beacon: the items a burst of polls returns go over as one batch, then poll again."""
        beacon_id = self.beacon_ids[bridge]
        checked = time.monotonic()
        reply = functools.partial(self.answer, bridge=bridge)
        try:
            while not stop.is_set() and not lost.is_set():
                if time.monotonic() - checked >= HTTP_CHECK_EVERY:
                    checked = time.monotonic()
                    if self.coordinator._request("GET", f"/Beacon/{beacon_id}").status_code == 404:
                        raise BackendUnavailable(f"the coordinator no longer knows beacon {beacon_id}")
                batch: list = []
                while len(batch) < self.max_concurrent - 1:  # one slot spare (mesh §6.1)
                    item = self._poll_once(beacon_id)
                    if item is None:
                        break
                    batch.append((item, time.perf_counter(), reply))
                if batch:
                    on_items(batch)
                else:
                    stop.wait(POLL_IDLE)
        except UvctlError as exc:
            self._lost = str(exc)
            lost.set()

    def _poll_once(self, beacon_id: str):
        """One ``POST /Beacon/Work/Poll``: the item, or None."""
        response = self.coordinator._request("POST", "/Beacon/Work/Poll", {"BeaconID": beacon_id})
        if response.status_code != 200:
            raise BackendUnavailable(f"POST /Beacon/Work/Poll answered HTTP {response.status_code}")
        data = self.coordinator._json(response)
        return data.get("WorkItem") if isinstance(data, dict) else None

    def answer(self, work_hash: str, outputs: dict | None, error: str | None, bridge: str | None = None) -> bool:
        """POST the item's Complete (``outputs``) or Error; False when it was not accepted."""
        if error is None:
            path, body = f"/Beacon/Work/{work_hash}/Complete", {"Outputs": outputs, "Log": []}
        else:
            path, body = f"/Beacon/Work/{work_hash}/Error", {"ErrorMessage": error, "Log": []}
        try:
            return self.coordinator._request("POST", path, body).status_code == 200
        except UvctlError:
            return False

    def receive_pending(self, on_items, timeout: float) -> int:
        """Nothing is pushed to an HTTP beacon: a stopping one simply stops polling."""
        return 0

    def close(self, deregister: bool = True) -> None:
        """``DELETE /Beacon/<id>`` for both beacons; never raises."""
        if not deregister:
            return
        for beacon_id in self.beacon_ids.values():
            try:
                self.coordinator._request("DELETE", f"/Beacon/{beacon_id}")
            except Exception:
                pass
