"""A streamed blob body (an S3 object, or any file sendfile cannot take) reads its next
chunk while the current one is sent, and its file is closed only once no read is in flight:
a client that leaves mid-body never gets the file closed under a reading thread."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from freight.server.exchange import STREAM_CHUNK, ClientGone, Response
from support.slowfile import SlowFile


def _run(file: SlowFile, *, leave_after: int | None) -> tuple[list[bytes], BaseException | None]:
    """Send `file` as a body; the client leaves after `leave_after` body messages."""
    bodies: list[bytes] = []
    left = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if leave_after is not None and len(bodies) >= leave_after:
                left.set()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def main() -> BaseException | None:
        if leave_after is None:
            left_forever = asyncio.Event()  # the client stays
            left.wait = left_forever.wait  # type: ignore[method-assign]
        response = Response(200, [], file=file, length=len(file.data))
        try:
            await response.send(send, receive, head=False)
        except ClientGone as exc:
            return exc
        return None

    return bodies, asyncio.run(main())


def test_every_byte_arrives_in_order_and_the_file_closes_after_the_last_read() -> None:
    data = bytes(range(256)) * (3 * STREAM_CHUNK // 256 + 7)
    file = SlowFile(data, delay=0.01)
    bodies, error = _run(file, leave_after=None)
    assert error is None
    assert b"".join(bodies) == data
    assert file.events[-1] == "close" and file.events.count("close") == 1
    assert not file.read_while_closed


@pytest.mark.parametrize("leave_after", [1, 2])
def test_a_client_that_leaves_never_has_the_file_closed_under_a_read(leave_after: int) -> None:
    file = SlowFile(b"x" * (6 * STREAM_CHUNK), delay=0.2)
    _, error = _run(file, leave_after=leave_after)
    assert isinstance(error, ClientGone)
    deadline = time.monotonic() + 10
    while "close" not in file.events and time.monotonic() < deadline:
        time.sleep(0.01)  # the close follows the read still in flight, in its thread
    assert file.events.count("close") == 1
    assert file.events.index("close") > max(i for i, e in enumerate(file.events)
                                            if e == "read done")
    assert not file.read_while_closed
