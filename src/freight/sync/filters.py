"""Which tags of a repository to sync: explicit tags, regex include/exclude, a semver
range, the newest N versions, and explicit digests.

Selection: without any filter, every tag. `tags` are always taken (and must exist).
`include`/`exclude` are regular expressions searched in the tag (anchor them with ^ and $);
a tag is kept when it matches some include (or there are none) and no exclude. `semver`
keeps tags that are versions inside the range; `newest` then keeps the N highest versions
(tags that are not versions, and pre-releases, are dropped when `newest` is set: without
a version there is no order that does not need every image's config). Tags that hold referrers
(`sha256-<hex>[.sig|.att|.sbom]`) are never images of their own: they travel with theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from freight.digest import Digest
from freight.errors import SourceError
from freight.referrers import is_referrer_tag

_VERSION = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
_OP = r"(>=|<=|==|!=|>|<|=|\^|~)?"
_COMPARATOR = re.compile(_OP + r"\s*([^\s<>=!^~]+)")
_ALTERNATIVE = re.compile(r"(?:\s*(?:>=|<=|==|!=|>|<|=|\^|~)?\s*[^\s<>=!^~]+)+\s*")


@dataclass(frozen=True, order=True)
class Version:
    """A semantic version; a tag like `v1.2`, `1.2.3-rc.1` parses (missing parts are 0)."""

    major: int
    minor: int
    patch: int
    pre: tuple[tuple[int, int | str], ...] = ()  # () sorts after any pre-release below

    @classmethod
    def parse(cls, text: str) -> Version | None:
        match = _VERSION.fullmatch(text)
        if not match:
            return None
        major, minor, patch, pre = match.groups()
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) \
            if pre else ()
        return cls(int(major), int(minor or 0), int(patch or 0), parts)

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """Sort key: a release sorts after its pre-releases (1.0.0-rc.1 < 1.0.0)."""
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, self.pre)


@dataclass(frozen=True)
class Range:
    """`>=1.2 <2 || ^3.1 || ~4.0.1`: alternatives (`||`) of comparators that all hold.
    Pre-release tags match only when the range itself names a pre-release."""

    text: str
    alternatives: tuple[tuple[tuple[str, Version], ...], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        alternatives = []
        for part in text.split("||"):
            part = part.replace(",", " ")
            if not _ALTERNATIVE.fullmatch(part):
                raise SourceError(f"bad semver range {text!r}: {part.strip()!r} is not "
                                  "comparators like '>=1.2 <2', '^1.4' or '~2.0'")
            items = _COMPARATOR.findall(part)
            alternatives.append(tuple(_comparator(op, v, text) for op, v in items))
        return cls(text, tuple(alternatives))

    def __contains__(self, version: Version) -> bool:
        pre_ok = any(v.pre for alt in self.alternatives for _, v in alt)
        if version.pre and not pre_ok:
            return False
        return any(all(_holds(op, version, bound) for op, bound in alt)
                   for alt in self.alternatives)


def _comparator(op: str, text: str, whole: str) -> tuple[str, Version]:
    version = Version.parse(text)
    if version is None:
        raise SourceError(f"bad semver range {whole!r}: {text!r} is not a version")
    return op or "=", version


def _holds(op: str, version: Version, bound: Version) -> bool:
    a, b = version.key(), bound.key()
    if op == "^":
        upper = (bound.major + 1, 0, 0) if bound.major else (0, bound.minor + 1, 0)
        return a >= b and (version.major, version.minor, version.patch) < upper
    if op == "~":
        return a >= b and (version.major, version.minor) == (bound.major, bound.minor)
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "=": a == b, "==": a == b,
            "!=": a != b}[op]


@dataclass(frozen=True)
class Filters:
    tags: tuple[str, ...] = ()
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    semver: Range | None = None
    newest: int | None = None
    digests: tuple[Digest, ...] = field(default=())

    @property
    def explicit_only(self) -> bool:
        """Only explicit tags or digests: the tag list need not be read at all."""
        selecting = self.include or self.exclude or self.semver or self.newest
        return bool((self.tags or self.digests) and not selecting)


def select(available: list[str], filters: Filters) -> list[str]:
    """The tags to sync, in a stable order; explicit tags missing here are kept (their
    copy then fails and says so)."""
    tags = [t for t in available if not is_referrer_tag(t)]
    if filters.explicit_only:
        return list(dict.fromkeys(filters.tags))
    picked = [t for t in tags if _passes(t, filters)]
    if filters.newest is not None:
        picked = _newest(picked, filters.newest)
    return list(dict.fromkeys([*filters.tags, *sorted(picked)]))


def _passes(tag: str, filters: Filters) -> bool:
    if filters.include and not any(p.search(tag) for p in filters.include):
        return False
    if any(p.search(tag) for p in filters.exclude):
        return False
    if filters.semver is not None:
        version = Version.parse(tag)
        return version is not None and version in filters.semver
    return True


def _newest(tags: list[str], count: int) -> list[str]:
    versions = [(v.key(), t) for t in tags if (v := Version.parse(t)) is not None and not v.pre]
    return [t for _, t in sorted(versions, reverse=True)[:count]]
