"""Where a destination puts each image, under which names, and what it refuses before any
byte is written (src/freight/engine/destinations.py), in process and without a registry
process: the names a push or a local copy gives, the refusals a user sees, and the
cleanup of a failed run. Written against mutation testing of the module."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import httpx
import pytest

from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest
from freight.engine.destinations import (
    LocalDestination,
    RegistryDestination,
    local_kind,
    open_destination,
)
from freight.errors import UsageError
from freight.locations import Kind, LocalLocation, parse_location
from freight.manifest import Descriptor
from freight.reference import Reference
from freight.results import Action
from freight.sinks.docker_tar import DockerTarSink
from freight.sinks.layout import LayoutSink
from freight.sinks.registry import RegistrySink
from freight.sources.model import Blob, ImageNode, SourceImage
from freight.testing import serve_in_thread

pytestmark = pytest.mark.timeout(20)

DIGEST = Digest.of(b"pinned")
EMPTY = Digest.of(b"{}")
RAW = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": [],
                  "config": {"mediaType": mt.OCI_EMPTY, "digest": str(EMPTY), "size": 2}}
                 ).encode()


def _image(*names: str, bare_tags: tuple[str, ...] = (), label: str = "") -> SourceImage:
    config = Blob(mt.OCI_CONFIG, 2, lambda: io.BytesIO(b"{}"), Digest.of(b"{}"))
    return SourceImage(ImageNode(config, ()), names, label or (names[0] if names else "x"),
                       bare_tags)


def _open(text: str, *, force: bool = False, jobs: int = 2,
          chunk_size: int | None = None) -> RegistryDestination | LocalDestination:
    dest = open_destination(parse_location(text), connection=Connection(plain_http=True),
                            chunk_size=chunk_size, jobs=jobs, force=force,
                            stored=Action.WRITTEN)
    assert isinstance(dest, RegistryDestination | LocalDestination)
    return dest


def _names(dest: RegistryDestination | LocalDestination, image: SourceImage) -> list[str]:
    return [str(n) for p in dest.placements(image) for n in p.names]


# -- a registry destination -------------------------------------------------------------


def test_a_bare_host_rehomes_every_name_as_docker_tags_it() -> None:
    dest = _open("localhost:5000")
    image = _image("busybox:1", "docker.io/library/alpine", "library/debian:12",
                   "team/app:2", "quay.io/org/tool:3")
    assert _names(dest, image) == [
        "localhost:5000/busybox:1", "localhost:5000/library/alpine:latest",
        "localhost:5000/library/debian:12", "localhost:5000/team/app:2",
        "localhost:5000/org/tool:3"]
    assert dest.registry == "localhost:5000" and str(dest) == "localhost:5000"
    assert not dest.local


def test_a_bare_host_refuses_an_image_without_a_name() -> None:
    with pytest.raises(UsageError, match=r"^app\.tar has no name in the source: push it "
                                         r"to REGISTRY/REPO:TAG \(with --image"):
        _open("localhost:5000").placements(_image(label="app.tar"))


def test_a_tagged_destination_is_the_one_name() -> None:
    dest = _open("localhost:5000/team/app:v2")
    assert _names(dest, _image("busybox:1", "alpine:2")) == ["localhost:5000/team/app:v2"]


def test_a_repository_destination_takes_each_tag_of_the_image_once() -> None:
    dest = _open("localhost:5000/team/app")
    image = _image("busybox:1", "other/name:1", "alpine:2", "nothing", bare_tags=("v3",))
    assert _names(dest, image) == ["localhost:5000/team/app:1", "localhost:5000/team/app:2",
                                   "localhost:5000/team/app:v3"]


def test_a_repository_destination_tags_an_untagged_image_latest() -> None:
    assert _names(_open("localhost:5000/app"), _image("busybox")) == [
        "localhost:5000/app:latest"]
    assert _names(_open("localhost:5000/app"), _image(label="3f2a1b")) == [
        "localhost:5000/app:latest"]


def test_an_image_pulled_by_digest_keeps_its_digest_and_gets_no_tag() -> None:
    image = _image(label=f"localhost:5000/src@{DIGEST}")
    assert _names(_open("localhost:5000/dst"), image) == [f"localhost:5000/dst@{DIGEST}"]


def test_a_destination_digest_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^a destination takes a tag, not a digest$"):
        _open(f"localhost:5000/app@{DIGEST}")


def test_names_in_one_repository_share_one_sink_and_one_per_repository() -> None:
    dest = _open("localhost:5000", chunk_size=4096)
    image = _image("a:1", "b:1", "a:2", "b:3")
    placements = dest.placements(image)
    assert [(p.sink.repository, [n.tag for n in p.names]) for p in placements] == [
        ("a", ["1", "2"]), ("b", ["1", "3"])]
    again = dest.placements(image)
    assert [p.sink for p in again] == [p.sink for p in placements]  # kept for the run
    sink = placements[0].sink
    assert isinstance(sink, RegistrySink)
    assert sink.repository == "a" and sink.chunk_size == 4096  # --chunk-size reaches it
    assert isinstance(dest, RegistryDestination) and dest.chunk_size == 4096


def test_the_client_gets_the_host_and_twice_the_jobs_in_connections() -> None:
    dest = _open("127.0.0.1:5999/app:1", jobs=3)
    assert isinstance(dest, RegistryDestination)
    assert dest.client.host == "127.0.0.1:5999"
    assert dest.client._max_connections == 6  # the pool a run of 3 jobs needs
    dest.close()


def test_write_root_tags_each_name_and_stores_an_untagged_one_by_digest() -> None:
    with serve_in_thread() as registry:
        dest = _open(f"{registry.host}/team/app")
        assert isinstance(dest, RegistryDestination)
        dest.ping()
        digest = str(Digest.of(RAW))
        placement = dest.placements(_image("x:1", "x:2"))[0]
        placement.sink.upload(EMPTY, 2, lambda: io.BytesIO(b"{}"))
        written = dest.write_root(placement, digest, RAW, mt.OCI_MANIFEST)
        assert [str(w) for w in written] == [f"{registry.host}/team/app:1",
                                             f"{registry.host}/team/app:2"]
        pinned = dest.placements(_image(label=f"{registry.host}/src@{DIGEST}"))[0]
        written = dest.write_root(pinned, digest, RAW, mt.OCI_MANIFEST)
        assert [str(w) for w in written] == [f"{registry.host}/team/app@{digest}"]
        for ref in ("1", "2", digest):
            reply = httpx.get(f"{registry.url}/v2/team/app/manifests/{ref}",
                              headers={"Accept": mt.OCI_MANIFEST}, timeout=10)
            assert reply.status_code == 200 and reply.content == RAW
        dest.close()


# -- a local destination ----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "path", "want"), [
    (Kind.SNIFFED, "out/", Kind.OCI_LAYOUT),
    (Kind.SNIFFED, "app.tar", Kind.DOCKER_ARCHIVE),
    (Kind.OCI_ARCHIVE, "out/", Kind.OCI_ARCHIVE),
    (Kind.OCI_LAYOUT, "app.tar", Kind.OCI_LAYOUT),
])
def test_local_kind(kind: Kind, path: str, want: Kind) -> None:
    assert local_kind(LocalLocation(kind, path)) is want


def test_an_existing_directory_is_a_layout(tmp_path: Path) -> None:
    (tmp_path / "dir.tar").mkdir()
    assert local_kind(LocalLocation(Kind.SNIFFED, str(tmp_path / "dir.tar"))) is Kind.OCI_LAYOUT


def test_a_layout_names_a_plain_word_as_the_tag_of_the_image(tmp_path: Path) -> None:
    dest = _open(f"oci:{tmp_path}/out:v1")
    assert _names(dest, _image("localhost:5000/app:1", "b:2")) == ["localhost:5000/app:v1"]
    assert _names(dest, _image()) == ["docker.io/library/image:v1"]
    assert dest.local and isinstance(dest, LocalDestination)
    assert isinstance(dest.sink, LayoutSink) and dest.sink.stored is Action.WRITTEN


@pytest.mark.parametrize("wanted", ["team/app", "app:2", "app@" + str(DIGEST)])
def test_a_layout_takes_a_reference_that_is_not_a_plain_word(tmp_path: Path,
                                                              wanted: str) -> None:
    dest = _open(f"oci:{tmp_path}/out:{wanted}")
    assert _names(dest, _image("localhost:5000/app:1")) == [str(Reference.parse(wanted))]


def test_a_docker_archive_reads_a_plain_word_as_a_reference(tmp_path: Path) -> None:
    dest = _open(f"docker-archive:{tmp_path}/app.tar:v1")
    assert _names(dest, _image("localhost:5000/app:1")) == ["docker.io/library/v1"]
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, DockerTarSink)
    assert dest.sink.docker and dest.sink.stored is Action.WRITTEN
    dest.abort()


def test_an_oci_archive_is_no_docker_archive(tmp_path: Path) -> None:
    dest = _open(f"oci-archive:{tmp_path}/app.tar:v1")
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, DockerTarSink)
    assert not dest.sink.docker
    assert _names(dest, _image("app:1")) == ["docker.io/library/app:v1"]
    dest.abort()


def test_local_names_without_a_choice_are_the_images_own_once(tmp_path: Path) -> None:
    dest = _open(f"oci:{tmp_path}/out")
    assert _names(dest, _image("app:1", "docker.io/library/app:1", "b:2",
                               bare_tags=("v9",))) == ["docker.io/library/app:1",
                                                       "docker.io/library/b:2"]
    assert _names(dest, _image(bare_tags=("v1", "v2"))) == [
        "docker.io/library/image:v1", "docker.io/library/image:v2"]
    assert _names(dest, _image()) == []


def test_write_root_records_each_name_or_one_untagged_root(tmp_path: Path) -> None:
    dest = _open(f"oci:{tmp_path}/out")
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, LayoutSink)
    digest = str(Digest.of(RAW))
    placement = dest.placements(_image("app:1", "app:2"))[0]
    assert [str(w) for w in dest.write_root(placement, digest, RAW, mt.OCI_MANIFEST)] == [
        "docker.io/library/app:1", "docker.io/library/app:2"]
    untagged = dest.placements(_image())[0]
    assert dest.write_root(untagged, digest, RAW, mt.OCI_MANIFEST) == [f"oci:{tmp_path}/out"]
    root = Descriptor(mt.OCI_MANIFEST, Digest.of(RAW), len(RAW))
    assert [(t.descriptor, str(t.reference)) for t in dest.sink.tagged] == [
        (root, "docker.io/library/app:1"), (root, "docker.io/library/app:2"), (root, "None")]
    assert not (tmp_path / "out" / "index.json").exists()  # written by commit() only
    dest.commit()
    index = json.loads((tmp_path / "out" / "index.json").read_bytes())
    assert len(index["manifests"]) == 3


def test_a_failed_run_removes_the_layout_it_created(tmp_path: Path) -> None:
    dest = _open(f"oci:{tmp_path}/new")
    assert isinstance(dest, LocalDestination) and dest.created
    assert (tmp_path / "new" / "blobs").is_dir()
    dest.abort()
    assert not (tmp_path / "new").exists()


def test_a_failed_run_whose_layout_is_gone_already_aborts_quietly(tmp_path: Path) -> None:
    dest = _open(f"oci:{tmp_path}/new")
    (tmp_path / "new" / "blobs").rmdir()
    (tmp_path / "new").rmdir()
    dest.abort()  # the run's own error is what the user must see, not one from cleanup


def test_an_archive_is_written_at_its_path_on_commit(tmp_path: Path,
                                                      capfdbinary: pytest.CaptureFixture[bytes],
                                                      ) -> None:
    dest = _open(f"{tmp_path}/app.tar")
    digest = str(Digest.of(RAW))
    dest.write_root(dest.placements(_image("app:1"))[0], digest, RAW, mt.OCI_MANIFEST)
    assert os.listdir(tmp_path) != ["app.tar"]  # a temporary name until complete
    dest.commit()
    assert "app.tar" in os.listdir(tmp_path)
    with tarfile.open(tmp_path / "app.tar") as tar:
        assert f"blobs/sha256/{Digest.of(RAW).encoded}" in tar.getnames()
    assert capfdbinary.readouterr().out == b""  # nothing on standard output


def test_a_failed_run_keeps_a_layout_that_was_there(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    dest = _open(f"oci:{tmp_path}/old")
    assert isinstance(dest, LocalDestination) and not dest.created
    dest.abort()
    assert (tmp_path / "old" / "blobs").is_dir()


def test_a_failed_run_leaves_nothing_at_an_archive_path(tmp_path: Path) -> None:
    dest = _open(f"{tmp_path}/app.tar")
    assert isinstance(dest, LocalDestination) and dest.created
    dest.abort()
    assert os.listdir(tmp_path) == []


def test_a_dangling_symlink_as_a_layout_is_no_internal_error(tmp_path: Path) -> None:
    """It was one (FileExistsError from LayoutSink's mkdir, exit 1): found by this file."""
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    try:
        dest = _open(f"oci:{tmp_path}/link")
    except UsageError:
        return  # refused in one line: fine
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, LayoutSink)


@pytest.mark.parametrize(("text", "message"), [
    ("dir:{t}/out", r"^freight reads skopeo dir: directories but does not write them: "
                    r"write oci:{t}/out \(an OCI layout\) or an archive instead$"),
    ("oci:{t}/missing/out", r"^{t}/missing does not exist: create it first \(freight "
                            r"never creates parent directories\)$"),
    ("{t}/missing/app.tar", r"^{t}/missing does not exist: create it first"),
    ("oci:{t}/file", r"^{t}/file exists and is not a directory \(an OCI layout is one\)$"),
    ("oci:{t}/full", r"^{t}/full is a directory that holds no OCI layout; give an empty or "
                     r"new directory, or --force to write into it$"),
    ("docker-archive:{t}/full", r"^{t}/full is a directory: give a file name for the tar$"),
    ("docker-archive:{t}/file", r"^{t}/file exists: give another name, or --force to "
                                r"replace it$"),
])
def test_a_local_destination_refuses(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes").write_bytes(b"x")
    with pytest.raises(UsageError, match=message.replace("{t}", str(tmp_path))):
        _open(text.replace("{t}", str(tmp_path)))
    assert sorted(os.listdir(tmp_path)) == ["file", "full"]  # nothing written
    assert os.listdir(tmp_path / "full") == ["notes"]


def test_force_replaces_a_file_and_writes_into_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes").write_bytes(b"x")
    archive = _open(f"docker-archive:{tmp_path}/file", force=True)
    assert isinstance(archive, LocalDestination) and not archive.created
    archive.abort()
    layout = _open(f"oci:{tmp_path}/full", force=True)
    assert isinstance(layout, LocalDestination) and isinstance(layout.sink, LayoutSink)
    layout.abort()
    assert (tmp_path / "full" / "notes").exists()


def test_a_directory_holding_a_layout_or_nothing_needs_no_force(tmp_path: Path) -> None:
    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / "oci-layout").write_bytes(b"{}")
    (tmp_path / "layout" / "blobs").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("layout", "empty"):
        dest = _open(f"oci:{tmp_path}/{name}")
        assert isinstance(dest, LocalDestination) and isinstance(dest.sink, LayoutSink)


def test_a_relative_archive_name_is_written_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dest = _open("docker-archive:app.tar")
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, DockerTarSink)
    assert dest.created
    dest.abort()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_standard_output_refuses_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", _Terminal())
    with pytest.raises(UsageError, match=r"^refusing to write a tar to a terminal: redirect "
                                         r"it \(> app\.tar\) or pipe it \(\| docker load\)$"):
        _open("-")


@pytest.mark.parametrize(("text", "docker"), [("-", True), ("docker-archive:-", True),
                                               ("oci-archive:-", False)])
def test_standard_output_is_a_tar_sink(monkeypatch: pytest.MonkeyPatch, text: str,
                                       docker: bool) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())
    dest = _open(text)
    assert isinstance(dest, LocalDestination) and isinstance(dest.sink, DockerTarSink)
    assert dest.sink.output is None and dest.sink.docker is docker
    assert not dest.created and dest.sink.stored is Action.WRITTEN
    dest.abort()


def test_the_base_destination_does_nothing_and_names_its_location() -> None:
    dest = _open("localhost:5000/app:1")
    assert str(dest) == "localhost:5000/app:1"
    dest.commit()
    dest.abort()  # nothing to undo on a registry: tags are written only when complete
