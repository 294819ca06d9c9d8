"""Where chunked uploads stand, kept between runs, so a large layer resumes instead of
starting over (api.md §Upload Progress: "use it to key local resume state").

One small JSON file per unfinished upload, under `<cache>/uploads/<registry>/<repository>/
<digest>` (registry and repository each one percent-encoded path component, so `team/app`
and `team_app` never share an entry): the newest upload URL and how many bytes the registry
acknowledged. The next run asks the registry (GET on that URL) how much it really holds and
goes on from there; an entry the registry no longer knows is simply dropped. Written
atomically; a damaged or unwritable entry only costs the resume.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from freight import jsontext
from freight.atomic import write_atomically
from freight.cache import path_component as _safe
from freight.digest import Digest


@dataclass(frozen=True)
class Pending:
    url: str
    offset: int


class UploadJournal:
    """Unfinished uploads of one registry; with `root=None` it remembers nothing."""

    def __init__(self, root: Path | None, registry: str) -> None:
        self.root = root / _safe(registry) if root is not None else None

    @classmethod
    def default(cls, registry: str) -> UploadJournal:
        from freight.cache import default_cache_dir

        root = default_cache_dir()
        return cls(root / "uploads" if root is not None else None, registry)

    def _path(self, repository: str, digest: Digest) -> Path | None:
        if self.root is None:
            return None
        return self.root / _safe(repository) / str(digest).replace(":", "-")

    def get(self, repository: str, digest: Digest) -> Pending | None:
        path = self._path(repository, digest)
        if path is None:
            return None
        try:
            data = jsontext.parse(path.read_text())
            return Pending(str(data["url"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, repository: str, digest: Digest, url: str, offset: int) -> None:
        path = self._path(repository, digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            record = json.dumps({"url": url, "offset": offset}).encode()
            write_atomically(path, record, private=True)  # upload URLs may carry signatures
        except OSError:
            pass

    def forget(self, repository: str, digest: Digest) -> None:
        path = self._path(repository, digest)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
