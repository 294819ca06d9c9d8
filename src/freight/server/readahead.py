"""A blocking blob file read one chunk ahead in the storage pool, behind the same
`read()`/`close()` an event-loop body offers (storage/base.Pieces): one send loop
(exchange.Response) serves both, and the store's next read overlaps the client's send."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import BinaryIO

from freight.server.threads import start


class ReadAhead:
    """`length` bytes of `file` from `offset`, in chunks of at most `chunk`.

    The first read starts at once; each `read` hands back a chunk only after the next one
    has been started, so it is in flight while the caller sends. b"" after the last chunk,
    or where the file ends early (the caller ends the body short, never pads)."""

    def __init__(self, file: BinaryIO, offset: int, length: int, chunk: int) -> None:
        self._file, self._left, self._chunk = file, length, chunk
        self._reading: Future[bytes] | None = None
        file.seek(offset)
        self._start()

    def _start(self) -> None:
        self._reading = start(self._file.read, min(self._left, self._chunk)) \
            if self._left > 0 else None

    async def read(self) -> bytes:
        if self._reading is None:
            return b""
        chunk = await asyncio.wrap_future(self._reading)  # cancelled: still in flight
        self._reading = None
        self._left -= len(chunk)
        if chunk:
            self._start()
        return chunk

    def close(self) -> None:
        """Close the file now, or once the read in flight has ended: never under it (a
        read of a closed descriptor could read whatever that number means next)."""
        reading, self._reading, file = self._reading, None, self._file
        if reading is None:
            file.close()
        else:  # the callback runs in that read's thread, or here if it is over already
            reading.add_done_callback(lambda _: file.close())
