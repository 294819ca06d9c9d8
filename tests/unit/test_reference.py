from pathlib import Path

import pytest
from click.testing import CliRunner

from freight.cli import main
from freight.digest import Digest
from freight.errors import EXIT_USAGE, UsageError
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


@pytest.mark.parametrize("hex_digits", [63, 65, 128])
def test_a_sha256_digest_has_exactly_64_hex_digits(hex_digits: int) -> None:
    text = "sha256:" + "a" * hex_digits
    with pytest.raises(UsageError, match="malformed sha256 digest"):
        Digest.parse(text)
    with pytest.raises(UsageError):
        Reference.parse(f"localhost:5000/app@{text}")


def test_sha512_digests_have_128_hex_digits() -> None:
    assert Digest.parse("sha512:" + "b" * 128).algorithm == "sha512"
    for wrong in (127, 129):
        with pytest.raises(UsageError):
            Digest.parse("sha512:" + "b" * wrong)


def test_a_long_digest_is_a_usage_error_on_the_command_line(tmp_path: Path) -> None:
    ref = "127.0.0.1:9/app@sha256:" + "a" * 65  # nothing listens on port 9: never reached
    run = CliRunner().invoke(main, ["pull", ref, str(tmp_path / "out.tar")])
    assert run.exit_code == EXIT_USAGE, run.output
    assert "digest" in run.stderr and "Traceback" not in run.output
    assert not (tmp_path / "out.tar").exists()


def test_retagging_a_digest_reference_drops_the_digest() -> None:
    pinned = Reference.parse("localhost:5000/team/app:1@sha256:" + "c" * 64)
    assert str(pinned.with_tag("2")) == "localhost:5000/team/app:2"
    assert pinned.with_tag("2").reference == "2"
    untagged = pinned.with_tag(None)
    assert (untagged.tag, untagged.digest, untagged.reference) == (None, None, "latest")
    with pytest.raises(UsageError):
        pinned.with_tag("bad tag")


def test_pinning_and_moving_a_reference() -> None:
    ref = Reference.parse("localhost:5000/team/app:1")
    digest = Digest.parse("sha256:" + "d" * 64)
    pinned = ref.with_digest(digest)
    assert (pinned.tag, pinned.reference) == (None, str(digest))
    assert str(pinned) == f"localhost:5000/team/app@{digest}"
    moved = ref.in_repository("mirror/app")
    assert str(moved) == "localhost:5000/mirror/app:1"


@pytest.mark.parametrize(("bad", "says"), [
    ("app:bad tag", "invalid tag 'bad tag'"), ("bad_host!:5000/app", "invalid registry host"),
    ("Upper/case", "invalid image reference 'Upper/case': repository names are lowercase"),
    ("app@sha256", "not a digest"),
])
def test_a_bad_reference_says_what_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        Reference.parse(bad)


def test_names_up_to_255_characters() -> None:
    host = "r.example"  # "r.example/" + 245 = 255
    longest = f"{host}/{'a' * 245}"
    assert len(longest) == 255 and Reference.parse(longest).repository == "a" * 245
    with pytest.raises(UsageError, match="too long"):
        Reference.parse(longest + "a")


def test_a_dotted_first_part_is_a_registry() -> None:
    assert Reference.parse("registry.example/app").registry == "registry.example"
    assert Reference.parse("team/app").registry == "docker.io"


def test_bare_registries_and_dotted_repositories_with_digests() -> None:
    assert parse_registry_or_reference("[::1]:5000") == "[::1]:5000"
    assert parse_registry_or_reference("[::1]") == "[::1]"
    pinned = parse_registry_or_reference("my.app@sha256:" + "e" * 64)
    assert isinstance(pinned, Reference) and pinned.repository == "library/my.app"


def test_repo_tags_from_docker_save() -> None:
    from freight.reference import familiar_to_reference

    ref = familiar_to_reference("host:5000/a/b:1")
    assert (ref.registry, ref.repository, ref.tag) == ("host:5000", "a/b", "1")


def test_two_digests_in_a_reference_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Reference.parse("app@sha256:" + "a" * 64 + "@sha256:" + "b" * 64)


def test_the_repository_rule_is_spelled_out() -> None:
    with pytest.raises(UsageError, match=r"digits and separators \(\., _, __, -\) in "
                                         r"/-separated parts$"):
        Reference.parse("Upper/case")


@pytest.mark.parametrize(("host", "loop"), [
    ("app.localhost:5000", True), ("app.localhost", True), ("[::1]", True),
    ("localhost.example:5000", False), ("notlocalhost", False),
])
def test_loopback_names(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop
