"""A TCP relay on loopback in front of a real service (the S3 store), with faults: replies
cut after a number of bytes, replies that stall, and every open connection dropped at once
(as a store does when it closes idle keep-alive connections)."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

PIECE = 64 << 10


@dataclass
class TCPProxy:
    """Start with `TCPProxy(("127.0.0.1", port)).start()`; `url` is its address. After
    `cut_after` bytes of a connection's replies it is closed; after `stall_after` bytes
    its replies stop (the connection stays open); `drop_all` closes every connection."""

    upstream: tuple[str, int]
    cut_after: int | None = None
    stall_after: int | None = None
    connections: int = 0
    _listener: socket.socket = field(init=False)
    _open: list[socket.socket] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> TCPProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def drop_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            _close(sock)

    def stop(self) -> None:
        self._stopped.set()
        _close(self._listener)
        self.drop_all()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self.connections += 1
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, faults: TCPProxy | None) -> None:
        moved = 0
        try:
            while data := source.recv(PIECE):
                if faults is not None:
                    for limit, stall in ((faults.cut_after, False), (faults.stall_after, True)):
                        if limit is not None and moved + len(data) > limit:
                            target.sendall(data[:limit - moved])
                            if stall:
                                while not self._stopped.wait(0.1):
                                    pass
                            return
                target.sendall(data)
                moved += len(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

