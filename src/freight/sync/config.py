"""The `freight sync` mirror list, parsed from YAML into frozen values.

    destination:                 # or just a registry: `destination: registry.lan:5000`
      registry: registry.lan:5000
      strip: library/            # taken off the front of each source repository
      prefix: mirror/            # then put in front
    jobs: 4                      # images in parallel (--jobs overrides)
    retries: 2                   # further tries of an image after a retryable failure
    referrers: true              # signatures, SBOMs, attestations travel too
    sync:
      - source: docker.io/library/nginx     # one repository ...
        tags: [latest]                      # explicit tags
        include: ['^1\\.2[0-9]\\.']         # regular expressions
        exclude: ['-alpine$']
        semver: '>=1.24 <2'
        newest: 3
        digests: [sha256:...]
        platforms: [linux/amd64, linux/arm64]  # those of an index (or `platform:` one;
                                            # default: all)
        destination: web/nginx              # this entry's name at the destination
      - registry: 127.0.0.1:5000            # ... or every repository of a registry
        repositories: ['^team/']            # regexes choosing repositories (default all)
      - layout: images.tar                  # ... or of an OCI layout, archive or bundle

Every mistake is reported with where it is (`sync[2].semver: ...`), before anything moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight import jsontext
from freight.digest import Digest
from freight.errors import FreightError, SourceError
from freight.manifest import Platform
from freight.reference import Reference, validate_registry
from freight.sync.filters import Filters, Range
from freight.sync.rewrite import Rewrite

DEFAULT_JOBS = 4  # like crane; more does not help on 2 cores
DEFAULT_RETRIES = 2  # a flaky registry gets three tries per image
_ENTRY_KEYS = {"source", "registry", "layout", "repositories", "tags", "include", "exclude",
               "semver", "newest", "digests", "platform", "platforms", "destination"}
_TOP_KEYS = {"destination", "jobs", "retries", "referrers", "sync"}


@dataclass(frozen=True)
class Entry:
    """One line of the mirror list: a repository, or a registry's repositories."""

    registry: str
    repository: str | None  # None: every repository the catalog lists
    repositories: tuple[re.Pattern[str], ...]
    filters: Filters
    platforms: tuple[Platform, ...]  # () for all of an index
    destination: str | None  # explicit destination repository
    layout: str | None = None  # an OCI layout (directory or tar) instead of a registry


@dataclass(frozen=True)
class Config:
    entries: tuple[Entry, ...]
    registry: str | None  # where to sync to (None: only with --to BUNDLE)
    rewrite: Rewrite
    jobs: int = DEFAULT_JOBS
    retries: int = DEFAULT_RETRIES
    referrers: bool = True


def load(path: str) -> Config:
    """Read and check a sync config file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse(_json(text) or _yaml(text, path))
    except FreightError as exc:
        raise SourceError(f"{path}: {exc}") from None


def _json(text: str) -> Any:
    """A config written as JSON (which is YAML too), read without loading the YAML parser
    (a tenth of a re-sync's start-up); None when it is not JSON."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return jsontext.parse(text)
    except ValueError:
        return None  # YAML flow style, say: the YAML parser decides


def _yaml(text: str, path: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SourceError(f"{path}: not valid YAML{where}") from None
    except RecursionError:  # the YAML composer recurses once per level of nesting
        raise SourceError(f"{path}: not valid YAML (nested too deeply)") from None


def parse(data: Any) -> Config:
    if not isinstance(data, dict):
        raise SourceError("the config must be a mapping with a `sync:` list")
    _known(data, _TOP_KEYS, "the top level")
    entries = data.get("sync")
    if not isinstance(entries, list) or not entries:
        raise SourceError("`sync:` must be a non-empty list of sources")
    registry, rewrite = _destination(data.get("destination"))
    return Config(tuple(_entry(e, f"sync[{i}]") for i, e in enumerate(entries)), registry,
                  rewrite, _count(data, "jobs", DEFAULT_JOBS, 1),
                  _count(data, "retries", DEFAULT_RETRIES, 0),
                  _flag(data, "referrers", True))


def _destination(value: Any) -> tuple[str | None, Rewrite]:
    if value is None:
        return None, Rewrite()
    if isinstance(value, str):
        return _registry(value, "destination"), Rewrite()
    if not isinstance(value, dict):
        raise SourceError("destination: give a registry, or a mapping with `registry:`")
    _known(value, {"registry", "prefix", "strip"}, "destination")
    registry = value.get("registry")
    return (_registry(registry, "destination.registry") if registry else None,
            Rewrite(_text(value, "prefix", "destination"), _text(value, "strip", "destination")))


def _entry(value: Any, where: str) -> Entry:
    if not isinstance(value, dict):
        raise SourceError(f"{where}: must be a mapping with `source:` or `registry:`")
    _known(value, _ENTRY_KEYS, where)
    if sum(key in value for key in ("source", "registry", "layout")) != 1:
        raise SourceError(f"{where}: give exactly one of `source:` (a repository), "
                          "`registry:` (all its repositories) or `layout:` (an OCI layout "
                          "directory or archive, e.g. a bundle)")
    local = None
    if "source" in value:
        ref = _reference(value["source"], f"{where}.source")
        registry, repository = ref.registry, ref.repository
    elif "layout" in value:
        registry, repository, local = "", None, _text(value, "layout", where)
    else:
        registry, repository = _registry(value["registry"], f"{where}.registry"), None
    if repository is None and value.get("destination"):
        raise SourceError(f"{where}.destination: only for a `source:` repository")
    return Entry(registry, repository, _patterns(value, "repositories", where),
                 _filters(value, where), _platforms(value, where),
                 _text(value, "destination", where) or None, local)


def _platforms(value: dict[str, Any], where: str) -> tuple[Platform, ...]:
    if "platform" in value and "platforms" in value:
        raise SourceError(f"{where}: give `platform:` (one) or `platforms:` (a list), not both")
    key = "platforms" if "platforms" in value else "platform"
    texts = _list(value, key, where) if key == "platforms" else \
        [value["platform"]] if value.get("platform") else []
    try:
        return tuple(dict.fromkeys(Platform.parse(str(text)) for text in texts))
    except FreightError as exc:
        raise SourceError(f"{where}.{key}: {exc}") from None


def _filters(value: dict[str, Any], where: str) -> Filters:
    semver = value.get("semver")
    try:
        semver_range = Range.parse(str(semver)) if semver is not None else None
        digests = tuple(Digest.parse(str(d)) for d in _list(value, "digests", where))
    except FreightError as exc:
        raise SourceError(f"{where}: {exc}") from None
    newest = value.get("newest")
    if newest is not None and (not isinstance(newest, int) or isinstance(newest, bool)
                               or newest < 1):
        raise SourceError(f"{where}.newest: must be a whole number of at least 1")
    return Filters(tuple(str(t) for t in _list(value, "tags", where)),
                   _patterns(value, "include", where), _patterns(value, "exclude", where),
                   semver_range, newest, digests)


def _patterns(value: dict[str, Any], key: str, where: str) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, text in enumerate(_list(value, key, where)):
        try:
            out.append(re.compile(str(text)))
        except re.error as exc:
            raise SourceError(f"{where}.{key}[{i}]: bad regular expression {text!r} "
                              f"({exc})") from None
    return tuple(out)


def _list(value: dict[str, Any], key: str, where: str) -> list[Any]:
    item = value.get(key)
    if item is None:
        return []
    if isinstance(item, str | int | float):
        return [item]
    if not isinstance(item, list):
        raise SourceError(f"{where}.{key}: must be a list")
    return item


def _reference(text: Any, where: str) -> Reference:
    try:
        ref = Reference.parse(str(text))
    except FreightError as exc:
        raise SourceError(f"{where}: {exc}") from None
    if ref.tag or ref.digest:
        raise SourceError(f"{where}: give the repository only; choose tags with `tags:`")
    return ref


def _registry(text: Any, where: str) -> str:
    try:
        return validate_registry(str(text))
    except FreightError as exc:
        raise SourceError(f"{where}: {exc}") from None


def _known(value: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(map(str, value)) - keys)
    if unknown:
        raise SourceError(f"{where}: unknown key {unknown[0]!r} (known: "
                          f"{', '.join(sorted(keys))})")


def _text(value: dict[str, Any], key: str, where: str) -> str:
    item = value.get(key, "")
    if not isinstance(item, str):
        raise SourceError(f"{where}.{key}: must be text")
    return item


def _count(value: dict[str, Any], key: str, default: int, least: int) -> int:
    item = value.get(key, default)
    if not isinstance(item, int) or isinstance(item, bool) or item < least:
        raise SourceError(f"{key}: must be a whole number of at least {least}")
    return item


def _flag(value: dict[str, Any], key: str, default: bool) -> bool:
    item = value.get(key, default)
    if not isinstance(item, bool):
        raise SourceError(f"{key}: must be true or false")
    return item
