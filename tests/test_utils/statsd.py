"""A StatsD listener for end-to-end tests: the metrics real processes send, as they come."""

from __future__ import annotations

import socket
import threading


class StatsdListener(threading.Thread):
    """Receives StatsD datagrams as they come (a socket buffer alone overflows within seconds)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.packets: list[str] = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                self.packets.extend(self.socket.recv(65536).decode().splitlines())
            except socket.timeout:
                pass

    def stop(self):
        self.stopped.set()
        self.join()
        self.socket.close()
