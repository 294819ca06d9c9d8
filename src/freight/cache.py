"""What freight remembers between runs, in the user's cache directory.

* `converted/<setting>/<source digest>`: the digest and size a layer had after conversion
  with that setting, and the size of the source it came from, so re-pushing an unchanged
  image HEAD-checks the result and skips it without reading or compressing the layer. (The
  skipped layer is not re-read: the registry holds the bytes the config's diff_id names,
  so the pushed image is right even if the archive's copy has rotted since; a source of
  another size is treated as unknown and read again.)
* `locations/<registry>/<digest>`: repositories of that registry known to hold the blob,
  so a push to another repository can mount it instead of uploading.

Entries are tiny files written atomically (temp file + rename), so concurrent runs are safe
and a damaged entry is simply ignored. FREIGHT_CACHE_DIR moves it; an empty value turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from freight.atomic import write_atomically
from freight.digest import Digest

MAX_LOCATIONS = 16  # repositories remembered per blob; more adds nothing to mount choices


def default_cache_dir() -> Path | None:
    configured = os.environ.get("FREIGHT_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("freight"))


class Cache:
    """A directory of small facts; with `root=None` it remembers nothing."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def converted(self, source: Digest, setting: str,
                  source_size: int) -> tuple[Digest, int] | None:
        """What `source` (of `source_size` bytes) became with `setting`, if known."""
        text = self._read("converted", setting, str(source).replace(":", "-"))
        try:
            digest_text, size_text, source_size_text = (text or "").split()
            if int(source_size_text) != source_size:
                return None
            return Digest.parse(digest_text), int(size_text)
        except Exception:
            return None

    def remember_converted(self, source: Digest, setting: str, digest: Digest, size: int,
                           source_size: int) -> None:
        self._write(f"{digest} {size} {source_size}\n", "converted", setting,
                    str(source).replace(":", "-"))

    def locations(self, registry: str, digest: Digest) -> list[str]:
        text = self._read("locations", _safe(registry), str(digest).replace(":", "-"))
        return [line for line in (text or "").splitlines() if line]

    def remember_location(self, registry: str, digest: Digest, repository: str) -> None:
        known = self.locations(registry, digest)
        if repository in known:
            return
        known = [repository, *known][:MAX_LOCATIONS]
        self._write("\n".join(known) + "\n", "locations", _safe(registry),
                    str(digest).replace(":", "-"))

    def has_pushed_to(self, registry: str) -> bool:
        """True once this cache remembers any blob put into (or found on) `registry`."""
        if self.root is None:
            return False
        try:
            return any(self.root.joinpath("locations", _safe(registry)).iterdir())
        except OSError:
            return False

    def _read(self, *parts: str) -> str | None:
        if self.root is None:
            return None
        try:
            return self.root.joinpath(*parts).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def _write(self, text: str, *parts: str) -> None:
        if self.root is None:
            return
        path = self.root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text.encode())
        except OSError:
            pass  # a cache that cannot be written only costs speed


def path_component(name: str) -> str:
    """A registry or repository name as one path component, reversibly: two names never
    share one (percent-encoding, `/` and `%` included), and it is never `.` or `..`."""
    encoded = quote(name, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


_safe = path_component
