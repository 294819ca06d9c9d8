"""Does a registry speak HTTPS or plain HTTP? Asked once per host per process.

docker treats loopback registries as "insecure": it tries HTTPS first and falls back to
plain HTTP. freight does the same, but decides *before* the first request, with one cheap
probe that cannot be confused by the server's HTTP behaviour: open a TCP connection, send
a TLS ClientHello, read the first bytes of the answer. A TLS server answers with a TLS
record (a handshake or an alert: first byte 0x16 or 0x15); a plain-HTTP server answers
with `HTTP/1.1 400 …` (distribution, uvicorn, nginx all do). Anything else (refused, closed,
silence) is "cannot tell": the caller keeps its default and nothing is remembered.

The probe costs one loopback connection (well under a millisecond) and no certificate work:
its SSL context loads no CAs, since it only looks at the shape of the reply.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading

from freight.transport import log

PROBE_TIMEOUT = 2.0  # seconds; a loopback server answers in microseconds, a remote in one RTT
TLS_RECORD_TYPES = frozenset({0x15, 0x16})  # alert, handshake (RFC 8446 §5.1)
DEFAULT_TLS_PORT = 443

_known: dict[str, bool] = {}  # host[:port] -> speaks TLS; for the life of the process
_lock = threading.Lock()


def speaks_tls(host: str, *, timeout: float = PROBE_TIMEOUT) -> bool | None:
    """True if `host` (host[:port]) answers TLS, False if it answers plain HTTP, None if
    the probe could not tell (refused, closed, timed out). Known answers are reused."""
    with _lock:
        if host in _known:
            return _known[host]
    answer = _probe(host, timeout)
    log.note(f"{host} speaks " + {True: "HTTPS", False: "plain HTTP",
                                  None: "nothing freight can tell (probe failed)"}[answer])
    if answer is not None:
        remember(host, tls=answer)
    return answer


def remember(host: str, *, tls: bool) -> None:
    """Record what `host` speaks (also when learnt another way, e.g. a Go server's 400)."""
    with _lock:
        _known[host] = tls


def forget_all() -> None:
    """Drop every remembered answer (for tests that restart servers on one port)."""
    with _lock:
        _known.clear()


def split_host(host: str, default_port: int = DEFAULT_TLS_PORT) -> tuple[str, int]:
    """`127.0.0.1:5000` → (`127.0.0.1`, 5000); `[::1]:5000` → (`::1`, 5000)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, port = host.split(":")
    else:
        name, port = host, ""
    return name, int(port) if port.isdigit() else default_port


def _client_hello() -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):  # expected: the hello is written
        tls.do_handshake()
    return outgoing.read()


def _probe(host: str, timeout: float) -> bool | None:
    name, port = split_host(host)
    try:
        with socket.create_connection((name, port), timeout=timeout) as sock:
            sock.sendall(_client_hello())
            first = sock.recv(1)
    except OSError:
        return None
    if not first:
        return None
    if first[0] in TLS_RECORD_TYPES:
        return True
    return False if first == b"H" else None  # `HTTP/1.x 400 …`
