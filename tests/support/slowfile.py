"""A readable file that takes `delay` per read and records its reads against its close:
for the server's streamed bodies (exchange.Response, readahead.ReadAhead), which must
never close a file under a read still in flight in another thread."""

from __future__ import annotations

import io
import time


class SlowFile(io.RawIOBase):
    """`data`, read `delay` seconds a call; `events` holds "read", "read done" and
    "close" in the order they happened (list.append is atomic: reads run in threads)."""

    def __init__(self, data: bytes, delay: float) -> None:
        self.data, self.delay, self.position = data, delay, 0
        self.events: list[str] = []
        self.read_while_closed = False

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        self.events.append("read")
        time.sleep(self.delay)
        if self.closed:
            self.read_while_closed = True
        n = len(self.data) - self.position if size is None or size < 0 else size
        chunk = self.data[self.position:self.position + n]
        self.position += len(chunk)
        self.events.append("read done")
        return chunk

    def close(self) -> None:
        if not self.closed:
            self.events.append("close")
        super().close()

    def count(self, event: str) -> int:
        return self.events.count(event)
