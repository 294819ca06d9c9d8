"""uvicorn's h11 protocol with a deadline for the request line and headers (slowloris).

uvicorn times out idle keep-alive connections, but not a client that sends a header byte
every few seconds: each byte cancels the keep-alive timer, and nothing else runs. This
protocol arms a deadline when it waits for a request (connection made, previous response
done) and disarms it once h11 has the whole head; a connection still inside its headers at
the deadline is closed. h11's `max_incomplete_event_size` bounds the bytes buffered meanwhile;
the app refuses a head that grew larger in one read (exchange.MAX_HEADER_BYTES, 431).

uvicorn is imported here only when a server starts (start-up speed of the CLI).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from freight.distribution.errors import error_body

TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS handshake record (a ClientHello)


def guarded_h11(header_timeout: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """An H11Protocol class closing connections whose headers take over `header_timeout` s,
    answering requests h11 refuses with a spec error body."""

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if data[:1] == TLS_HANDSHAKE and self._fresh():
                self._refuse_tls()  # before h11: it would log "Invalid HTTP request received."
                return
            super().data_received(data)
            if self._deadline is not None and self.conn.their_state is not h11.IDLE:
                self._disarm()  # the head is complete: the body has its own pace

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def send_400_response(self, msg: str) -> None:
            """A request h11 cannot parse: a spec error body, as for every other refusal."""
            too_long = len(self.conn.trailing_data[0]) > max_header_bytes
            status, code, message = ((431, "SIZE_INVALID", "request head too large")
                                     if too_long else
                                     (400, "UNSUPPORTED", "malformed HTTP request"))
            self._reply(status, code, message)

        def _reply(self, status: int, code: str, message: str) -> None:
            """Answer with a spec error body and close the connection."""
            body = error_body(code, message)
            headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                       (b"content-length", str(len(body)).encode())]
            for event in (h11.Response(status_code=status, headers=headers),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

        def _fresh(self) -> bool:
            """Nothing received on this connection yet."""
            return self.cycle is None and self.conn.their_state is h11.IDLE \
                and not self.conn.trailing_data[0]

        def _refuse_tls(self) -> None:
            """A TLS ClientHello on this plain-HTTP server (clients that probe, as freight and
            docker do on loopback): an HTTP 400 they recognise, without a warning logged."""
            self._reply(400, "UNSUPPORTED", "this registry speaks plain HTTP, not HTTPS")

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11


def protocol_options(header_timeout: float, max_header_bytes: int) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guarded protocol."""
    return {"http": guarded_h11(header_timeout, max_header_bytes),
            "h11_max_incomplete_event_size": max_header_bytes}
