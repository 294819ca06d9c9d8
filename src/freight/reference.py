"""Image references, parsed the way docker parses them.

`busybox` is `docker.io/library/busybox:latest`; a first component with a dot, a colon or
the name `localhost` is a registry host; a reference may carry a tag, a digest, or both.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from freight.digest import Digest
from freight.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # the host docker talks to for docker.io
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
MAX_NAME_LENGTH = 255  # docker's limit on host/name


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port): plain HTTP there."""
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise UsageError(f"invalid tag {tag!r}: use letters, digits, '_', '.', '-' (max 128)")
    return tag


def validate_registry(host: str) -> str:
    if not _HOST.fullmatch(host):
        raise UsageError(f"invalid registry host {host!r}")
    return host


@dataclass(frozen=True)
class Reference:
    """A repository on a registry, optionally with a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse a docker-style reference; raise UsageError saying what is wrong."""
        rest, digest = text, None
        if "@" in rest:
            rest, digest_text = rest.split("@", 1)
            digest = Digest.parse(digest_text)
        registry, path = DOCKER_HUB, rest
        first, sep, remainder = rest.partition("/")
        if sep and _looks_like_host(first):
            registry, path = validate_registry(first), remainder
        tag = None
        name, colon, maybe_tag = path.rpartition(":")
        if colon and "/" not in maybe_tag:
            path, tag = name, validate_tag(maybe_tag)
        if registry == DOCKER_HUB and path and "/" not in path:
            path = f"library/{path}"
        if not _REPOSITORY.fullmatch(path):
            raise UsageError(
                f"invalid image reference {text!r}: repository names are lowercase letters, "
                "digits and separators (., _, __, -) in /-separated parts"
            )
        if len(f"{registry}/{path}") > MAX_NAME_LENGTH:
            raise UsageError(f"image name too long (over {MAX_NAME_LENGTH} characters): {text!r}")
        return cls(registry, path, tag, digest)

    @property
    def api_host(self) -> str:
        """The host to send HTTP requests to (docker.io is served by registry-1.docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest if there is one, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=validate_tag(tag) if tag else None, digest=None)

    def with_digest(self, digest: Digest) -> Reference:
        return replace(self, tag=None, digest=digest)

    def in_repository(self, repository: str) -> Reference:
        return replace(self, repository=repository)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_registry_or_reference(text: str) -> str | Reference:
    """A destination is a bare registry (`localhost:5000`, `reg.example`) or a reference.

    Like docker, a single word with a colon (`app:1`) is a repository and tag; a registry
    on its own needs a dot, `localhost`, or brackets (IPv6).
    """
    if "/" not in text and "@" not in text:
        host = text.rsplit(":", 1)[0] if not text.endswith("]") else text
        if "." in host or host == "localhost" or host.startswith("["):
            return validate_registry(text)
    return Reference.parse(text)


def familiar_to_reference(repo_tag: str) -> Reference:
    """A RepoTag from `docker save` (`busybox:latest`, `host:5000/a/b:1`) as a Reference."""
    return Reference.parse(repo_tag)
