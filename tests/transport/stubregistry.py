"""A small scripted registry on 127.0.0.1 for the upload edge cases real registries will
not produce on demand: relative or foreign-host `Location`s, `Range: 0-0`, a 416 on one
chunk, DIGEST_INVALID at close, lost sessions.

It keeps upload sessions in memory and behaves like distribution where that matters: the
upload URL carries a `_state` that must be the newest one (older ones give 404
BLOB_UPLOAD_INVALID), `Range` is `0-<size-1>` but `0-0` for 0 or 1 byte, a 416 carries no
Location. `script` hooks may answer any request in its place (`CUT` hangs up without an
answer; a `CUT_AFTER` header sends part of the body, then hangs up), `rewrite` hooks may
change any answer it gives. A second instance may share the sessions and serve as "another
host" for `Location`s.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_length: int


Answer = tuple[int, dict[str, str], bytes]
Script = Callable[[Seen], Answer | None]
Rewrite = Callable[[Seen, Answer], Answer]
CUT: Answer = (0, {}, b"")  # a script answer: close the connection, answer nothing
CUT_AFTER = "X-Stub-Cut-After"  # an answer header: send this many body bytes, then hang up


@dataclass
class Session:
    data: bytearray = field(default_factory=bytearray)
    state: int = 0


@dataclass
class Shared:
    sessions: dict[str, Session] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def error(status: int, code: str) -> Answer:
    body = json.dumps({"errors": [{"code": code, "message": "stub"}]}).encode()
    return status, {"Content-Type": "application/json"}, body


class StubRegistry:
    """``location``: "absolute", "relative", or "other" (upload URLs on ``other``'s host)."""

    def __init__(self, *, location: str = "absolute", users: dict[str, str] | None = None,
                 shared: Shared | None = None) -> None:
        self.location, self.users = location, users or {}
        self.shared = shared or Shared()
        self.script: list[Script] = []
        self.rewrite: list[Rewrite] = []
        self.check_state = True  # False: any upload URL of a session is its newest one
        self.seen: list[Seen] = []
        self.other: StubRegistry | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self, method: str, kind: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and kind in s.path]

    def upload_url(self, repository: str, sid: str, state: int) -> str:
        path = f"/v2/{repository}/blobs/uploads/{sid}?_state={state}"
        if self.location == "relative":
            return path
        host = self.other.host if self.location == "other" and self.other else self.host
        return f"http://{host}{path}"

    # --- protocol --------------------------------------------------------------------

    def handle(self, seen: Seen, body: bytes) -> Answer:
        for hook in list(self.script):
            answer = hook(seen)
            if answer is not None:
                return answer
        answer = self._answer(seen, body)
        for rewrite in list(self.rewrite):
            answer = rewrite(seen, answer)
        return answer

    def _answer(self, seen: Seen, body: bytes) -> Answer:
        if self.users and not self._authorized(seen):
            return 401, {"WWW-Authenticate": 'Basic realm="stub"'}, b""
        parts = urlsplit(seen.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/v2/":
            return 200, {}, b"{}"
        match = re.fullmatch(r"/v2/(.+)/blobs/uploads/([^/]*)", parts.path)
        if match:
            return self._upload(seen.method, match.group(1), match.group(2), query, seen, body)
        match = re.fullmatch(r"/v2/(.+)/blobs/([^/]+)", parts.path)
        if match and seen.method == "HEAD":
            found = match.group(2) in self.shared.blobs
            return (200, {}, b"") if found else error(404, "BLOB_UNKNOWN")
        return error(404, "NAME_UNKNOWN")

    def _authorized(self, seen: Seen) -> bool:
        import base64

        header = seen.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == password

    def _upload(self, method: str, repo: str, sid: str, query: dict[str, str], seen: Seen,
                body: bytes) -> Answer:
        with self.shared.lock:
            if method == "POST" and not sid:
                sid = str(uuid.uuid4())
                self.shared.sessions[sid] = Session()
                return 202, {"Location": self.upload_url(repo, sid, 0), "Range": "0-0"}, b""
            session = self.shared.sessions.get(sid)
            if session is None:
                return error(404, "BLOB_UPLOAD_UNKNOWN")
            if method == "DELETE":
                del self.shared.sessions[sid]
                return 204, {}, b""
            if method != "GET" and self.check_state and \
                    query.get("_state") != str(session.state):
                return error(404, "BLOB_UPLOAD_INVALID")  # a stale Location
            if method == "PATCH":
                return self._patch(repo, sid, session, seen, body)
            if method == "PUT":
                return self._close(sid, session, query, body)
            return 204, self._progress(repo, sid, session), b""

    def _patch(self, repo: str, sid: str, session: Session, seen: Seen,
               body: bytes) -> Answer:
        given = seen.headers.get("content-range")
        if given is not None:
            start, _, end = given.partition("-")
            if int(start) != len(session.data) or int(end) - int(start) + 1 != len(body):
                return error(416, "RANGE_INVALID")
        session.data += body
        session.state += 1
        return 202, self._progress(repo, sid, session), b""

    def _progress(self, repo: str, sid: str, session: Session) -> dict[str, str]:
        end = max(len(session.data) - 1, 0)  # distribution's 0-0 for 0 and 1 byte
        return {"Location": self.upload_url(repo, sid, session.state), "Range": f"0-{end}"}

    def _close(self, sid: str, session: Session, query: dict[str, str], body: bytes) -> Answer:
        data = bytes(session.data + body)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        del self.shared.sessions[sid]
        if query.get("digest") != digest:
            return error(400, "DIGEST_INVALID")
        self.shared.blobs[digest] = data
        return 201, {"Location": f"/v2/x/blobs/{digest}", "Docker-Content-Digest": digest}, b""


def _handler(stub: StubRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _any(self) -> None:
            try:
                self._exchange()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up mid-way: fine

        def _exchange(self) -> None:
            body = self._body()
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        len(body))
            stub.seen.append(seen)
            status, headers, payload = stub.handle(seen, body)
            if status == CUT[0]:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            cut = headers.get(CUT_AFTER)
            self.send_response(status)
            for name, value in headers.items():
                if name != CUT_AFTER:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload if cut is None else payload[:int(cut)])
            if cut is not None:  # the body's Content-Length promised more: a broken download
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            data = bytearray()  # a streamed body: chunk sizes in hex, a 0 one ends it
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return Handler
