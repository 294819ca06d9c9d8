"""Opening a location as a source and picking its images (src/freight/engine/sources.py):
which image `--image NAME` picks the way docker matches names, which platform mismatch is
refused, what a registry source reads and the error a missing tag gives. In process: the
embedded registry in a thread, small images on disk. Written against mutation testing of
the module."""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest
from freight.engine.sources import (
    MAX_CONFIG_SIZE,
    OpenedSource,
    blob_digests,
    check_platform,
    matches,
    open_source,
    select,
)
from freight.errors import NotFound, UsageError
from freight.locations import parse_location
from freight.manifest import Descriptor, Index, Platform
from freight.sources.model import Blob, ImageNode, IndexNode, SourceImage
from freight.testing import ImageSpec, Registry, random_image, serve_in_thread, write_images
from freight.transport.client import RegistryClient

pytestmark = pytest.mark.timeout(20)

IMAGE_ID = Digest.of(b"config")
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")


def _blob(data: bytes, media_type: str = mt.OCI_CONFIG, *, size: int | None = None,
          digest: Digest | None = None) -> Blob:
    return Blob(media_type, len(data) if size is None else size, lambda: io.BytesIO(data),
                digest)


def _image(*names: str, bare_tags: tuple[str, ...] = (), label: str = "",
           config: Blob | None = None, platform: Platform | None = None) -> SourceImage:
    node = ImageNode(config or _blob(b"{}", digest=IMAGE_ID), (), platform=platform)
    return SourceImage(node, names, label or (names[0] if names else "3f2a1b"), bare_tags)


# -- which image a name picks -----------------------------------------------------------

HOSTED = _image("localhost:5000/team/app:1")


@pytest.mark.parametrize(("wanted", "match"), [
    ("localhost:5000/team/app:1", True),
    ("localhost:5000/team/app", True),  # no tag: any tag
    ("app:1", True),  # a short name matches the last path parts, as docker does
    ("app", True),
    ("team/app:1", True),
    ("app:2", False),
    ("pp", False),
    ("eam/app", False),
    ("other:5000/team/app:1", False),  # a host given is a host meant
    ("docker.io/team/app:1", False),
    ("localhost:5000/app:1", False),
    ("Not A Name", False),
])
def test_a_name_matches_as_docker_matches(wanted: str, match: bool) -> None:
    assert matches(HOSTED, wanted) is match


def test_a_short_name_matches_a_library_image_and_a_bare_repository() -> None:
    hub = _image("docker.io/library/busybox:1")
    assert matches(hub, "busybox") and matches(hub, "library/busybox:1")
    assert matches(hub, "docker.io/busybox:1")
    assert not matches(hub, "docker.io/team/busybox")
    bare = _image("localhost:5000/busybox:1")
    assert matches(bare, "busybox:1")  # `library/` is implied by the word, not the image
    assert not matches(_image("localhost:5000/mybusybox:1"), "busybox")


@pytest.mark.parametrize(("wanted", "match"), [
    (IMAGE_ID.encoded[:6], True),
    (IMAGE_ID.encoded, True),
    (f"sha256:{IMAGE_ID.encoded[:12]}", True),
    (IMAGE_ID.encoded[:5], False),  # too short to be an ID (docker's rule)
    (IMAGE_ID.encoded[1:8], False),  # a prefix, not any part
    (IMAGE_ID.encoded[:6].upper(), False),
])
def test_an_image_id_prefix_matches(wanted: str, match: bool) -> None:
    assert matches(_image(), wanted) is match


def test_an_image_without_an_id_is_matched_by_name_only() -> None:
    unnamed = SourceImage(IndexNode(Index.build(mt.OCI_INDEX, []), ()), ("app:1",), "app:1")
    assert not matches(unnamed, "abcdef")
    assert matches(unnamed, "app:1")


def test_a_bare_tag_matches() -> None:
    assert matches(_image(bare_tags=("v1",)), "v1")
    assert not matches(_image(bare_tags=("v1",)), "v2")


def test_select_picks_the_first_match_or_says_what_there_is() -> None:
    first, second = _image("app:1", "app:2"), _image("app:1")
    assert select([first, second], None) == [first, second]
    assert select([first, second], "app:1") == [first]
    assert select([first, second], "app:2") == [first]
    with pytest.raises(UsageError, match=r"^no image 'web' in the archive \(it holds: "
                                         r"app:1, app:1\)$"):
        select([first, second], "web")
    with pytest.raises(UsageError, match=r"^no image 'web' in /data/app \(it holds: "):
        select([first, second], "web", "/data/app")


# -- which platform is refused ----------------------------------------------------------


def _config(**fields: object) -> Blob:
    return _blob(json.dumps(fields).encode())


def test_a_single_platform_image_for_another_platform_is_refused() -> None:
    image = _image("app:1", config=_config(os="linux", architecture="arm64", variant="v8"))
    with pytest.raises(UsageError, match=r"^app:1 is for linux/arm64/v8 only, not "
                                         r"linux/amd64; drop --platform or pick "
                                         r"linux/arm64/v8$"):
        check_platform(image, AMD64)
    check_platform(image, ARM64)
    check_platform(image, Platform("linux", "arm64"))
    check_platform(image, None)


def test_the_sources_platform_comes_before_the_config() -> None:
    image = _image("app:1", config=_config(os="linux", architecture="amd64"), platform=ARM64)
    with pytest.raises(UsageError, match="is for linux/arm64/v8 only"):
        check_platform(image, AMD64)


def test_an_index_is_never_refused_here() -> None:
    child = ImageNode(_config(os="linux", architecture="arm64"), (), platform=ARM64)
    index = IndexNode(Index.build(mt.OCI_INDEX, []),
                      ((Descriptor(mt.OCI_MANIFEST, IMAGE_ID, 2, ARM64), child),))
    check_platform(SourceImage(index, ("app:1",), "app:1"), AMD64)


@pytest.mark.parametrize("config", [
    _blob(b"not json"),
    _blob(b"[1, 2]"),
    _blob(b'{"os": "linux"}'),
    _blob(b'{"architecture": "arm64"}'),
    _blob(b'{"os": 1, "architecture": "arm64"}'),
    _blob(b'{"os": "linux", "architecture": ["arm64"]}'),
    _blob(b'{"os": "linux", "architecture": "arm64"}', mt.OCI_EMPTY),
    _blob(b'{"os": "linux", "architecture": "arm64"}', size=MAX_CONFIG_SIZE + 1),
], ids=["not-json", "not-object", "no-arch", "no-os", "os-number", "arch-list",
        "not-a-config", "oversized"])
def test_a_config_that_names_no_platform_refuses_nothing(config: Blob) -> None:
    check_platform(_image("app:1", config=config), AMD64)


def test_a_docker_config_names_its_platform() -> None:
    config = _blob(b'{"os": "linux", "architecture": "arm64"}', mt.DOCKER_CONFIG)
    with pytest.raises(UsageError, match="is for linux/arm64 only"):
        check_platform(_image("app:1", config=config), AMD64)


def test_a_variant_that_is_not_text_is_no_variant() -> None:
    config = _config(os="linux", architecture="arm64", variant=8)
    with pytest.raises(UsageError, match=r"is for linux/arm64 only, not linux/amd64;"):
        check_platform(_image("app:1", config=config), AMD64)
    check_platform(_image("app:1", config=config), ARM64)


def test_a_config_of_the_largest_size_is_read() -> None:
    data = json.dumps({"os": "linux", "architecture": "arm64", "pad": ""}).encode()
    data = data.replace(b'""', b'"' + b" " * (MAX_CONFIG_SIZE - len(data)) + b'"')
    assert len(data) == MAX_CONFIG_SIZE
    with pytest.raises(UsageError, match="is for linux/arm64 only"):
        check_platform(_image("app:1", config=_blob(data)), AMD64)


def test_blob_digests_names_every_blob_of_a_tree_with_a_digest() -> None:
    layer, config = Digest.of(b"layer"), Digest.of(b"cfg")
    one = ImageNode(_blob(b"{}", digest=config),
                    (_blob(b"l", mt.OCI_LAYER, digest=layer), _blob(b"x", mt.OCI_LAYER)))
    two = ImageNode(_blob(b"{}", digest=IMAGE_ID), ())
    desc = Descriptor(mt.OCI_MANIFEST, IMAGE_ID, 2)
    tree = IndexNode(Index.build(mt.OCI_INDEX, []), ((desc, one), (desc, two)))
    assert blob_digests(one) == [config, layer]
    assert blob_digests(tree) == [config, layer, IMAGE_ID]


# -- opening a location -----------------------------------------------------------------


def _open(text: str, *, image: str | None = None, all_tags: bool = False,
          platform: Platform | None = None, explicit: bool = True) -> OpenedSource:
    return open_source(parse_location(text), connection=Connection(plain_http=True),
                       platform=platform, image=image, all_tags=all_tags, jobs=1,
                       explicit_platform=explicit)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    archive = random_image(tmp_path_factory.mktemp("src") / "app.tar", layers=1)
    with serve_in_thread() as live:
        for tag in ("1", "2"):
            freight.push(archive.path, f"{live.host}/team/app:{tag}", plain_http=True)
        yield live


def test_all_tags_reads_each_tag_of_a_repository(registry: Registry) -> None:
    opened = _open(f"{registry.host}/team/app", all_tags=True)
    assert sorted(i.label for i in opened.images) == [f"{registry.host}/team/app:1",
                                                      f"{registry.host}/team/app:2"]
    assert opened.origin == (registry.host, "team/app")
    opened.close()


def test_a_registry_source_is_the_one_image_named(registry: Registry) -> None:
    opened = _open(f"{registry.host}/team/app:2")
    assert [i.label for i in opened.images] == [f"{registry.host}/team/app:2"]
    assert len(opened.closers) == 1
    opened.close()


def test_a_missing_tag_names_the_tags_there_are(registry: Registry) -> None:
    with pytest.raises(NotFound, match=r"team/app has no tag '3'.*; it has: 1, 2$"):
        _open(f"{registry.host}/team/app:3")


def test_a_missing_digest_is_the_registrys_own_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound) as caught:
        _open(f"{registry.host}/team/app@{IMAGE_ID}")
    assert "has no tag" not in str(caught.value)


def test_a_platform_not_in_the_image_is_refused_only_when_asked(registry: Registry) -> None:
    ref = f"{registry.host}/team/app:1"
    with pytest.raises(UsageError, match=r"is for linux/amd64 only, not linux/arm64/v8"):
        _open(ref, platform=ARM64)
    opened = _open(ref, platform=ARM64, explicit=False)  # an implicit platform only narrows
    assert len(opened.images) == 1
    opened.close()


@pytest.mark.parametrize(("text", "all_tags", "message"), [
    ("{host}", False, r"^{host} is a registry, not an image: give REGISTRY/REPO\[:TAG\]$"),
    ("{host}/team/app:1", True, r"^--all-tags copies a whole repository: give REPO, not "
                                r"REPO:TAG$"),
    ("{host}/team/app@" + str(IMAGE_ID), True, r"^--all-tags copies a whole repository"),
])
def test_a_registry_source_refuses(registry: Registry, text: str, all_tags: bool,
                                   message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("{host}", registry.host)):
        _open(text.replace("{host}", registry.host), all_tags=all_tags)


def _archive(tmp_path: Path) -> Path:
    specs = [ImageSpec([b"a" * 10], ("app:1",)), ImageSpec([b"b" * 10], ("web:2",),
                                                          architecture="arm64")]
    return write_images(tmp_path / "two.tar", specs).path


def test_a_local_source_picks_the_image_asked_for(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    opened = _open(str(path), image="web")
    assert [i.names for i in opened.images] == [("web:2",)]
    opened.close()
    opened = _open(f"docker-archive:{path}:app:1")
    assert [i.names for i in opened.images] == [("app:1",)]
    opened.close()
    assert len(_open(str(path)).images) == 2


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_local_source_that_refuses_closes_what_it_opened(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    before = _fds()
    with pytest.raises(UsageError, match=r"^no image 'nothing' in .*two\.tar \(it holds: "):
        _open(str(path), image="nothing")
    with pytest.raises(UsageError, match="is for linux/arm64 only"):
        _open(str(path), image="web", platform=AMD64)
    assert _fds() == before


def test_all_tags_is_for_a_registry_only(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--all-tags copies a whole repository of a "
                                         r"registry, not an archive$"):
        _open(str(_archive(tmp_path)), all_tags=True)


# -- a multi-platform image: a platform narrows it --------------------------------------


def _multi_platform(tmp_path: Path) -> Path:
    """An OCI layout holding one index `multi:1` of a linux/amd64 and a linux/arm64/v8
    image."""
    root = tmp_path / "multi"
    write_images(root, [ImageSpec([b"a" * 10]), ImageSpec([b"b" * 10], architecture="arm64")],
                 format="oci")
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    children = [Descriptor(e["mediaType"], Digest.parse(e["digest"]), e["size"], platform)
                for e, platform in zip(entries, (AMD64, ARM64), strict=True)]
    index = Index.build(mt.OCI_INDEX, children)
    (root / "blobs" / "sha256" / index.digest.encoded).write_bytes(index.raw)
    top = Index.build(mt.OCI_INDEX, [index.descriptor(
        annotations={"io.containerd.image.name": "docker.io/library/multi:1"})])
    (root / "index.json").write_bytes(top.raw)
    return root


def _architectures(opened: OpenedSource) -> list[str | None]:
    found = []
    for image in opened.images:
        node = image.root
        found.append(node.platform.architecture if isinstance(node, ImageNode)
                     and node.platform else None)
    opened.close()
    return found


def test_a_platform_narrows_a_local_index_to_its_image(tmp_path: Path) -> None:
    layout = _multi_platform(tmp_path)
    assert _architectures(_open(f"oci:{layout}", platform=ARM64)) == ["arm64"]
    assert _architectures(_open(f"oci:{layout}", platform=AMD64)) == ["amd64"]
    whole = _open(f"oci:{layout}")
    assert isinstance(whole.images[0].root, IndexNode)
    whole.close()


def test_a_platform_narrows_a_registry_index_to_its_image(registry: Registry,
                                                          tmp_path: Path) -> None:
    freight.push(f"oci:{_multi_platform(tmp_path)}", f"{registry.host}/team/multi:1",
                 plain_http=True)
    ref = f"{registry.host}/team/multi:1"
    assert _architectures(_open(ref, platform=ARM64)) == ["arm64"]
    assert _architectures(_open(ref, platform=AMD64, all_tags=False)) == ["amd64"]
    assert _architectures(_open(f"{registry.host}/team/multi", platform=ARM64,
                                all_tags=True)) == ["arm64"]


def test_a_platform_given_is_checked_unless_said_otherwise(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    with pytest.raises(UsageError, match="is for linux/arm64 only"):
        open_source(parse_location(f"docker-archive:{path}:web"), connection=Connection(),
                    platform=AMD64, image=None, all_tags=False, jobs=1)


def test_closing_a_local_source_lets_go_of_its_files(tmp_path: Path) -> None:
    path = tmp_path / "app.tar.gz"
    write_images(path, [ImageSpec([b"a" * 10], ("app:1",))], format="oci-archive")
    path.write_bytes(gzip.compress((tmp_path / "app.tar.gz").read_bytes()))
    before = set(os.listdir(tempfile.gettempdir()))
    opened = _open(str(path))
    opened.close()
    assert set(os.listdir(tempfile.gettempdir())) == before


class _Sized(Connection):
    """A connection that notes the pool size each client it makes is given."""

    def client(self, registry: str, *, jobs: int = 4) -> RegistryClient:
        made = super().client(registry, jobs=jobs)
        _SIZES.append(made._max_connections)
        return made


_SIZES: list[int] = []


def test_a_registry_source_is_read_with_the_connections_of_its_jobs(registry: Registry) -> None:
    _SIZES.clear()
    open_source(parse_location(f"{registry.host}/team/app:1"), connection=_Sized(),
                platform=None, image=None, all_tags=False, jobs=3).close()
    assert _SIZES == [6]


@pytest.mark.parametrize("platform", [ARM64, None], ids=["platform", "whole-index"])
def test_a_missing_child_manifest_is_not_called_a_missing_tag(
        registry: Registry, tmp_path: Path, platform: Platform | None) -> None:
    """It was one ('has no tag 1; it has: 1'): found by this file."""
    freight.push(f"oci:{_multi_platform(tmp_path)}", f"{registry.host}/team/partial:1",
                 plain_http=True)
    index = httpx.get(f"{registry.url}/v2/team/partial/manifests/1", timeout=10,
                      headers={"Accept": mt.OCI_INDEX}).json()
    arm = next(m["digest"] for m in index["manifests"]
               if m["platform"]["architecture"] == "arm64")
    httpx.delete(f"{registry.url}/v2/team/partial/manifests/{arm}",
                 timeout=10).raise_for_status()
    with pytest.raises(NotFound) as caught:
        _open(f"{registry.host}/team/partial:1", platform=platform)
    assert "has no tag" not in str(caught.value)
