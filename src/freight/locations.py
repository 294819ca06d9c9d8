"""Where images are: the location syntax skopeo and regctl users know, parsed once.

    docker-archive:PATH[:REF]   a `docker save` tar (any format docker writes; gzip/zstd too)
    oci-archive:PATH[:REF]      a tar of an OCI image layout
    oci:DIR[:REF]               an OCI image layout directory
    dir:DIR                     skopeo's dir: transport (sources only)
    docker://REF                a registry reference (`docker://host:5000/repo:tag`)
    REF                         a bare reference is a registry too (`host:5000/repo:tag`)
    PATH                        an existing file or directory is sniffed (archive or layout);
                                so is a name that looks like one (`app.tar`, `./out`, `/x`)
    -                           an archive on standard input (sources only)

`REF` after a local path picks one image: a name (`app:1`, matched the way docker matches
short names), a tag (`v1`), or an image ID prefix. A bare registry host (`localhost:5000`)
as a destination means "every image under its own name".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from freight.errors import UsageError
from freight.reference import Reference, parse_registry_or_reference

STDIN = "-"
STDOUT = "-"  # as a destination: the tar goes to standard output


def writes_stdout(text: str) -> bool:
    """Whether the destination `text` sends its tar to standard output (`-`,
    `docker-archive:-`, `oci-archive:-`): then nothing else may go there."""
    return text in (STDOUT, f"docker-archive:{STDOUT}", f"oci-archive:{STDOUT}")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tzst", ".oci")
_PATH_STARTS = ("/", "./", "../", "~")


class Kind(Enum):
    """What a local location holds (or is to hold)."""

    DOCKER_ARCHIVE = "docker-archive"  # a tar docker loads (also an OCI layout when we write)
    OCI_ARCHIVE = "oci-archive"  # a tar of an OCI layout, no docker files
    OCI_LAYOUT = "oci"  # a directory
    SKOPEO_DIR = "dir"  # skopeo's dir: transport (read only)
    SNIFFED = "path"  # an existing path: whatever it turns out to be when opened


@dataclass(frozen=True)
class LocalLocation:
    """A file or directory on this machine; `image` selects one image in it."""

    kind: Kind
    path: str
    image: str | None = None

    def __str__(self) -> str:
        if self.kind is Kind.SNIFFED:
            return self.path
        suffix = f":{self.image}" if self.image else ""
        return f"{self.kind.value}:{self.path}{suffix}"


@dataclass(frozen=True)
class RegistryLocation:
    """A repository (with tag or digest) on a registry, or a bare registry host."""

    reference: Reference | None
    host: str

    @property
    def is_bare(self) -> bool:
        """A bare host: push every image under its own names."""
        return self.reference is None

    def __str__(self) -> str:
        return str(self.reference) if self.reference is not None else self.host


Location = LocalLocation | RegistryLocation
_PREFIXES = {k.value: k for k in (Kind.DOCKER_ARCHIVE, Kind.OCI_ARCHIVE, Kind.OCI_LAYOUT,
                                  Kind.SKOPEO_DIR)}


def parse_location(text: str, *, local: bool | None = None) -> Location:
    """Parse `text` (see the module docstring); UsageError with the fix when it is wrong.

    `local=True` reads a plain word as a path (an output file), `False` as a reference;
    None decides by what exists and how the word looks.
    """
    if not text:
        raise UsageError("empty location: give a path, a reference, or TRANSPORT:PATH")
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _PREFIXES:
        return _local(_PREFIXES[prefix], rest, text)
    if sep and prefix == "docker" and rest.startswith("//"):
        return _registry(rest[2:])
    if sep and prefix in ("http", "https") and rest.startswith("//"):
        raise UsageError(f"{text!r} is a URL: write the reference without the scheme, "
                         f"e.g. {rest[2:]!r} (use --plain-http for a registry without TLS)")
    if text == STDIN:
        return LocalLocation(Kind.SNIFFED, STDIN)
    if local is True or (local is None and looks_local(text)):
        return LocalLocation(Kind.SNIFFED, text)
    return _registry(text)


def looks_local(text: str) -> bool:
    """True for an existing path, or one written like a path or an archive's file name."""
    if os.path.lexists(text) or text.startswith(_PATH_STARTS):
        return True
    lowered = text.lower()
    return lowered.endswith(_TAR_SUFFIXES) and "/" not in text.split(".", 1)[0] \
        and not _has_registry_host(text)


def _has_registry_host(text: str) -> bool:
    first, sep, _ = text.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def _local(kind: Kind, rest: str, text: str) -> LocalLocation:
    path, _, image = rest.partition(":")
    if not path:
        raise UsageError(f"{text!r} names no path: write {kind.value}:PATH[:IMAGE]")
    return LocalLocation(kind, os.path.expanduser(path), image or None)


def _registry(text: str) -> RegistryLocation:
    target = parse_registry_or_reference(text)
    if isinstance(target, str):
        return RegistryLocation(None, target)
    return RegistryLocation(target, target.registry)


__all__ = ["Kind", "LocalLocation", "Location", "RegistryLocation", "looks_local",
           "parse_location"]
