"""The embedded OCI registry: an ASGI app over a `Storage`, served by uvicorn.

`make_app(storage)` gives the ASGI application; `run(root, address)` serves it.
"""

from __future__ import annotations

from freight.server.app import Registry, make_app
from freight.server.gc import collect
from freight.server.runner import run
from freight.server.storage import FilesystemStorage, Storage

__all__ = ["FilesystemStorage", "Registry", "Storage", "collect", "make_app", "run"]
