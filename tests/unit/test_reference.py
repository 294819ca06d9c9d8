import pytest

from freight.errors import UsageError
from freight.reference import Reference, is_loopback, parse_registry_or_reference


@pytest.mark.parametrize(("text", "registry", "repository", "tag"), [
    ("busybox", "docker.io", "library/busybox", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36"),
    ("user/app", "docker.io", "user/app", None),
    ("localhost/app:1", "localhost", "app", "1"),
    ("localhost:5000/team/app:v1.2", "localhost:5000", "team/app", "v1.2"),
    ("registry.example:5000/a/b/c", "registry.example:5000", "a/b/c", None),
    ("[::1]:5000/app:x", "[::1]:5000", "app", "x"),
])
def test_parses_like_docker(text: str, registry: str, repository: str, tag: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


def test_digest_reference() -> None:
    ref = Reference.parse("host:5000/app@sha256:" + "a" * 64)
    assert ref.reference == "sha256:" + "a" * 64
    assert str(ref) == "host:5000/app@sha256:" + "a" * 64


@pytest.mark.parametrize("bad", ["Upper/case", "app:bad tag", "app@sha256:short", "", "a//b",
                                 "app:-x"])
def test_rejects_bad_references(bad: str) -> None:
    with pytest.raises(UsageError):
        Reference.parse(bad)


def test_docker_hub_api_host() -> None:
    assert Reference.parse("busybox").api_host == "registry-1.docker.io"


def test_bare_registry_destination() -> None:
    assert parse_registry_or_reference("localhost:5000") == "localhost:5000"
    assert parse_registry_or_reference("registry.example") == "registry.example"
    assert isinstance(parse_registry_or_reference("localhost:5000/app"), Reference)
    assert isinstance(parse_registry_or_reference("app:1"), Reference)


@pytest.mark.parametrize(("host", "loop"), [
    ("localhost:5000", True), ("127.0.0.1", True), ("127.3.2.1:80", True), ("[::1]:5000", True),
    ("example.com:5000", False), ("10.0.0.1:5000", False),
])
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop
