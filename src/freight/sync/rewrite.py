"""Destination names: a prefix stripped from the source repository, then one added."""

from __future__ import annotations

from dataclasses import dataclass

from freight.distribution.routes import valid_name
from freight.errors import SourceError


@dataclass(frozen=True)
class Rewrite:
    """`strip: library/` then `prefix: mirror/` maps `library/nginx` to `mirror/nginx`."""

    prefix: str = ""
    strip: str = ""

    def apply(self, repository: str) -> str:
        name = repository.removeprefix(self.strip) if self.strip else repository
        name = f"{self.prefix}{name}"
        if not valid_name(name):
            raise SourceError(f"{repository!r} becomes {name!r}, which is not a valid "
                              "repository name; check the prefix and strip settings")
        return name
