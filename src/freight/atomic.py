"""Files written whole or not at all: into a temporary file beside the target, renamed over
it. Readers never see half a file, and a failed write (a full disk, an interrupt) leaves no
temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, private: bool = False,
                     prefix: str = ".tmp-") -> None:
    """`path` holds `data` afterwards, or is as it was; `private` leaves it readable by
    its owner only (credentials, signed upload URLs)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if private:
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
