"""A forward HTTP proxy on loopback for tests: what a corporate proxy does for freight.

It takes absolute-form requests (`GET http://host:port/path`, how clients send plain HTTP
through a proxy) and `CONNECT host:port` tunnels (HTTPS), and reaches each host through
`routes`, a map from the `host:port` the client asked for to a loopback address. So a test
can name a registry `registry.test:5000` (not loopback, hence proxied), and the proxy finds
it. The bytes are passed through unchanged (the origin server reads absolute-form request
lines itself, as the HTTP spec requires of servers); `seen` records each connection's
first request line.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

HEAD_LIMIT = 64 << 10


class ForwardProxy:
    def __init__(self, routes: dict[str, tuple[str, int]]) -> None:
        self.routes = routes
        self.seen: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ForwardProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.seen.append(line)
        method, target, _ = line.split(" ", 2)
        tunnel = method == "CONNECT"
        where = target if tunnel else target.split("://", 1)[1].split("/", 1)[0]
        route = self.routes.get(where)
        if route is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(route, timeout=30) as upstream:
            if tunnel:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    upstream.sendall(rest)
            else:
                upstream.sendall(head)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(30)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy until either side closes; then end the other direction too."""
    with contextlib.suppress(OSError):
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
