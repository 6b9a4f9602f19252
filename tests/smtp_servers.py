"""SMTP servers on loopback for the mail tests: a real one (aiosmtpd) that keeps what it
receives, and a hung one that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def aiosmtpd_server(delay: float = 0.0):
    """(port, received envelopes); `delay` seconds spent on each DATA (a slow server)."""
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.received = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
            if delay:
                await asyncio.sleep(delay)
            self.received.append(envelope)
            return "250 OK"

    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.received
    finally:
        controller.stop()


class HungSMTPServer:
    """Accepts connections on loopback and never says a word (no 220 greeting); closes each
    one after `hold` seconds. `connections` counts who came."""

    def __init__(self, hold: float = 5.0):
        self.hold = hold
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        held: list[tuple[socket.socket, float]] = []
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                for conn, since in [h for h in held if now - h[1] > self.hold]:
                    conn.close()
                    held.remove((conn, since))
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                held.append((conn, time.monotonic()))
        finally:
            for conn, _ in held:
                conn.close()
            self._sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
