"""`freight.transfer` from the outside (src/freight/engine/run.py): the options refused before
anything is read, the platform an index is narrowed to, the compression and streaming
chosen when the caller does not say, names two images would share, the summary a user
reads, and the cleanup of a failed run. Small images on disk and the embedded registry
in a thread. Written against mutation testing of the module."""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from freight import mediatypes as mt
from freight.cache import Cache, default_cache_dir
from freight.connect import Connection
from freight.digest import Digest
from freight.engine import TransferOptions, transfer
from freight.engine.destinations import Destination
from freight.engine.run import MovedImage, streams_by_default
from freight.engine.workers import Cancelled, CancelToken
from freight.errors import UsageError
from freight.locations import parse_location
from freight.manifest import Descriptor, Index, Platform
from freight.progress import Silent, Summary
from freight.results import Action, ImageResult
from freight.testing import ImageSpec, Registry, random_image, serve_in_thread, write_images
from support.forward_proxy import ForwardProxy

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(autouse=True)
def _own_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with serve_in_thread() as live:
        yield live


class Ended(Silent):
    def __init__(self) -> None:
        self.summaries: list[Summary] = []
        self.notes: list[str] = []

    def end(self, summary: Summary) -> None:
        self.summaries.append(summary)

    def note(self, text: str) -> None:
        self.notes.append(text)


def _archive(tmp_path: Path, name: str = "app.tar", **kwargs: object) -> str:
    return str(random_image(tmp_path / name, layers=2, **kwargs).path)  # type: ignore[arg-type]


# -- refused before anything is read ----------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (TransferOptions(compression="brotli"),
     r"^unknown compression 'brotli': use one of auto, gzip, zstd, none, keep$"),
    (TransferOptions(jobs=0), r"^jobs must be at least 1$"),
    (TransferOptions(chunk_size=0), r"^chunk size must be a positive number of bytes$"),
    (TransferOptions(platform="linux/amd64", all_platforms=True),
     r"^--platform and --all-platforms exclude each other$"),
])
def test_bad_options_are_refused_and_nothing_is_written(tmp_path: Path,
                                                        options: TransferOptions,
                                                        message: str) -> None:
    source = _archive(tmp_path)
    with pytest.raises(UsageError, match=message):
        transfer(source, str(tmp_path / "out.tar"), options=options)
    assert sorted(os.listdir(tmp_path)) == ["app.tar", "tmp"]


def test_one_job_and_a_chunk_of_one_byte_are_allowed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    transfer(_archive(tmp_path), f"oci:{out}", options=TransferOptions(jobs=1, chunk_size=1))
    assert (out / "index.json").is_file()


def test_nothing_to_move_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^nothing to move: give at least one source$"):
        transfer([], str(tmp_path / "out.tar"))


def test_a_layout_cannot_go_to_standard_output(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^an OCI layout is a directory, which standard "
                                         r"output cannot be: write a tar there "
                                         r"\(docker-archive:- or oci-archive:-\)$"):
        transfer(_archive(tmp_path), "oci:-")


def test_docker_load_takes_one_platform(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^docker load takes one platform: write an OCI "
                                         r"layout \(oci:DIR\) or OCI archive "
                                         r"\(oci-archive:FILE\) with --all-platforms$"):
        transfer(_archive(tmp_path), str(tmp_path / "out.tar"),
                 options=TransferOptions(all_platforms=True))


def test_a_tagged_destination_takes_one_image(tmp_path: Path, registry: Registry) -> None:
    source = str(random_image(tmp_path / "two.tar", layers=1, images=2).path)
    with pytest.raises(UsageError, match=r"^the source holds 2 images; pick one with "
                                         r"--image, or give a repository without a tag"):
        transfer(source, f"{registry.host}/team/two:1")


def test_the_image_asked_for_is_the_one_moved(tmp_path: Path) -> None:
    source = str(random_image(tmp_path / "two.tar", layers=1, images=2).path)
    (only,) = transfer(source, str(tmp_path / "second.tar"),
                       options=TransferOptions(image="random/image-2:1"))
    assert str(only.reference) == "docker.io/random/image-2:1"


def test_two_images_that_would_share_a_name_are_refused(tmp_path: Path,
                                                        registry: Registry) -> None:
    source = str(write_images(tmp_path / "clash.tar", [
        ImageSpec([b"a" * 10], ("a/app:1",)), ImageSpec([b"b" * 10], ("b/app:1",))]).path)
    with pytest.raises(UsageError, match=r"^a/app:1 and b/app:1 would "
                                         rf"both be written as {registry.host}/team/app:1, "
                                         r"the second replacing the first: give a bare "
                                         r"registry \(each image keeps its own name\), or "
                                         r"pick one with --image$"):
        transfer(source, f"{registry.host}/team/app")


def test_one_image_under_two_names_is_no_clash(tmp_path: Path) -> None:
    one = _archive(tmp_path, "one.tar", tags=["app:1"])
    again = _archive(tmp_path, "again.tar", tags=["app:1"])
    results = transfer([one, again], f"oci:{tmp_path}/out")
    assert [str(r.reference) for r in results] == ["docker.io/library/app:1"] * 2


# -- what runs: compression, streaming, platforms ---------------------------------------


def _layer_types(registry: Registry, repository: str, tag: str) -> list[str]:
    reply = httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}", timeout=10,
                      headers={"Accept": ",".join(mt.ACCEPT_MANIFESTS)})
    return [layer["mediaType"] for layer in reply.json()["layers"]]


def test_local_files_to_a_registry_are_compressed_by_default(tmp_path: Path,
                                                             registry: Registry) -> None:
    transfer(_archive(tmp_path), f"{registry.host}/run/auto:1")
    assert set(_layer_types(registry, "run/auto", "1")) == {mt.DOCKER_LAYER_GZIP}


def test_a_registry_copy_and_a_local_copy_keep_the_bytes(tmp_path: Path,
                                                         registry: Registry) -> None:
    transfer(_archive(tmp_path), f"{registry.host}/run/plain:1",
             options=TransferOptions(compression="none"))
    transfer(f"{registry.host}/run/plain:1", f"{registry.host}/run/copied:1")
    assert set(_layer_types(registry, "run/copied", "1")) == {mt.OCI_LAYER}
    out = tmp_path / "out"
    transfer(_archive(tmp_path), f"oci:{out}")
    index = json.loads((out / "index.json").read_bytes())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_bytes())
    assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.OCI_LAYER}


def test_a_copy_within_a_registry_mounts_the_blobs(tmp_path: Path, registry: Registry,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    transfer(_archive(tmp_path, seed=5), f"{registry.host}/run/base:1")
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "fresh"))  # the source says so
    progress = Ended()
    (result,) = transfer(f"{registry.host}/run/base:1", f"{registry.host}/run/mounted:1",
                         progress=progress)
    assert {b.action for b in result.blobs} == {Action.MOUNTED}
    (summary,) = progress.summaries
    assert (summary.images, summary.uploaded, summary.mounted, summary.skipped) == (1, 0, 3, 0)


def test_streams_by_default_only_to_a_registry_pushed_to_before(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "streams")
    assert not streams_by_default("registry.example", cache)
    cache.remember_location("registry.example", random_digest(), "team/app")
    assert streams_by_default("registry.example", cache)
    cache.remember_location("127.0.0.1:5000", random_digest(), "team/app")
    assert not streams_by_default("127.0.0.1:5000", cache)  # loopback: nothing to hide


def random_digest() -> Digest:
    return Digest.of(os.urandom(8))


def _multi_platform(tmp_path: Path) -> str:
    """An OCI layout with one index `multi:1` of a linux/amd64 and a linux/arm64 image."""
    root = tmp_path / "multi"
    write_images(root, [ImageSpec([b"a" * 10]), ImageSpec([b"b" * 10], architecture="arm64")],
                 format="oci")
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    children = [Descriptor(e["mediaType"], Digest.parse(e["digest"]), e["size"], p)
                for e, p in zip(entries, (Platform("linux", "amd64"),
                                          Platform("linux", "arm64")), strict=True)]
    index = Index.build(mt.OCI_INDEX, children)
    (root / "blobs" / "sha256" / index.digest.encoded).write_bytes(index.raw)
    top = Index.build(mt.OCI_INDEX, [index.descriptor(
        annotations={"io.containerd.image.name": "docker.io/library/multi:1"})])
    (root / "index.json").write_bytes(top.raw)
    return f"oci:{root}"


def _root_type(results: list[ImageResult]) -> str:
    (result,) = results
    return result.media_type


def test_a_docker_archive_narrows_an_index_to_the_host(tmp_path: Path) -> None:
    source = _multi_platform(tmp_path)
    out = tmp_path / "out.tar"
    assert _root_type(transfer(source, str(out))) == mt.OCI_MANIFEST
    with tarfile.open(out) as tar:
        entries = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(entries) == 1


def test_a_layout_keeps_the_whole_index_unless_told(tmp_path: Path) -> None:
    source = _multi_platform(tmp_path)
    assert _root_type(transfer(source, f"oci:{tmp_path}/whole")) == mt.OCI_INDEX
    assert _root_type(transfer(source, f"oci:{tmp_path}/host", options=TransferOptions(
        host_platform=True))) == mt.OCI_MANIFEST
    assert _root_type(transfer(source, f"oci:{tmp_path}/all", options=TransferOptions(
        host_platform=True, all_platforms=True))) == mt.OCI_INDEX
    with pytest.raises(UsageError, match=r"multi-platform index: docker load takes one"):
        transfer(source, str(tmp_path / "docker.tar"), options=TransferOptions(
            host_platform=False))


def test_a_platform_asked_for_is_the_one_moved(tmp_path: Path) -> None:
    source = _multi_platform(tmp_path)
    results = transfer(source, f"oci:{tmp_path}/arm", options=TransferOptions(
        platform="linux/arm64"))
    assert _root_type(results) == mt.OCI_MANIFEST
    with pytest.raises(UsageError, match="is for linux/amd64 only"):
        transfer(_archive(tmp_path), f"oci:{tmp_path}/x", options=TransferOptions(
            platform="linux/arm64"))


# -- results, the summary, notes and the after hook -------------------------------------


def test_the_summary_counts_each_blob_once_per_repository(tmp_path: Path,
                                                          registry: Registry) -> None:
    source = _archive(tmp_path, seed=9, tags=["app:1"])
    progress = Ended()
    results = transfer(source, f"{registry.host}/run/sum", progress=progress,
                       options=TransferOptions(compression="none"), verb="push")
    assert [str(r.reference) for r in results] == [f"{registry.host}/run/sum:1"]
    (summary,) = progress.summaries
    sizes = sum(b.size for b in results[0].blobs)
    assert (summary.verb, summary.images, summary.uploaded, summary.bytes_sent,
            summary.dry_run) == ("push", 1, 3, sizes, False)
    again = Ended()
    transfer(source, f"{registry.host}/run/sum", progress=again,
             options=TransferOptions(compression="none"))
    (summary,) = again.summaries
    assert (summary.uploaded, summary.skipped, summary.bytes_sent) == (0, 3, 0)


def test_an_image_pulled_by_digest_is_stored_by_digest(tmp_path: Path,
                                                        registry: Registry) -> None:
    (pushed,) = transfer(_archive(tmp_path, seed=11), f"{registry.host}/run/pin:1")
    (copied,) = transfer(f"{registry.host}/run/pin@{pushed.digest}",
                         f"{registry.host}/run/pinned")
    assert str(copied.reference) == f"{registry.host}/run/pinned@{pushed.digest}"
    reply = httpx.get(f"{registry.url}/v2/run/pinned/manifests/{pushed.digest}", timeout=10,
                      headers={"Accept": ",".join(mt.ACCEPT_MANIFESTS)})
    assert reply.status_code == 200
    assert (copied.digest, copied.size, copied.media_type) == (
        pushed.digest, len(reply.content), reply.headers["Content-Type"])


def test_two_tags_in_one_repository_count_each_blob_once(tmp_path: Path,
                                                         registry: Registry) -> None:
    one = _archive(tmp_path, "one.tar", seed=12, tags=["app:1"])
    two = _archive(tmp_path, "two.tar", seed=12, tags=["app:2"])  # the same image
    progress = Ended()
    results = transfer([one, two], f"{registry.host}/run/twice", progress=progress)
    assert [r.reference.tag for r in results if not isinstance(r.reference, str)] == [
        "1", "2"]
    (summary,) = progress.summaries
    assert (summary.images, summary.uploaded + summary.skipped) == (1, 3)
    assert isinstance(summary.seconds, float) and summary.seconds >= 0


def test_a_dry_run_plans_names_and_writes_nothing(tmp_path: Path) -> None:
    progress = Ended()
    results = transfer(_archive(tmp_path), f"oci:{tmp_path}/planned", progress=progress,
                       options=TransferOptions(dry_run=True))
    assert [str(r.reference) for r in results] == ["docker.io/random/image:1"]
    assert {b.action for b in results[0].blobs} == {Action.PLANNED}
    assert progress.summaries[0].dry_run and progress.summaries[0].uploaded == 3
    assert not (tmp_path / "planned").exists()


def test_a_dry_run_says_the_digest_the_real_run_writes(tmp_path: Path) -> None:
    source = _archive(tmp_path, seed=13)
    progress = Ended()
    (planned,) = transfer(source, f"oci:{tmp_path}/out", progress=progress,
                          options=TransferOptions(dry_run=True))
    (written,) = transfer(source, f"oci:{tmp_path}/out")
    assert (planned.digest, planned.size, planned.media_type) == (
        written.digest, written.size, written.media_type)
    assert progress.summaries[0].verb == "copy"  # the default verb


def test_local_blobs_are_written_and_registry_blobs_downloaded(tmp_path: Path,
                                                              registry: Registry) -> None:
    source = _archive(tmp_path, seed=14)
    (local,) = transfer(source, f"oci:{tmp_path}/local")
    assert {b.action for b in local.blobs} == {Action.WRITTEN}
    transfer(source, f"{registry.host}/run/down:1")
    (pulled,) = transfer(f"{registry.host}/run/down:1", f"oci:{tmp_path}/pulled")
    assert {b.action for b in pulled.blobs} == {Action.DOWNLOADED}


def test_the_chunk_size_reaches_the_registry(tmp_path: Path, registry: Registry) -> None:
    before = len(registry.requests())
    transfer(_archive(tmp_path, seed=15), f"{registry.host}/run/chunked:1",
             options=TransferOptions(chunk_size=4096, compression="none"))
    methods = [r["method"] for r in registry.requests()[before:]]
    assert "PATCH" in methods


def test_the_host_platform_narrows_but_refuses_nothing(tmp_path: Path) -> None:
    arm = write_images(tmp_path / "arm.tar", [ImageSpec([b"a" * 10], ("arm:1",),
                                                        architecture="arm64")]).path
    (result,) = transfer(str(arm), str(tmp_path / "out.tar"))  # docker load: host narrows
    assert str(result.reference) == "docker.io/library/arm:1"


def test_a_dry_run_of_an_unnamed_image_is_named_by_the_destination(tmp_path: Path) -> None:
    source = _archive(tmp_path, tags=[])
    results = transfer(source, f"oci:{tmp_path}/planned", options=TransferOptions(
        dry_run=True))
    assert [str(r.reference) for r in results] == [f"oci:{tmp_path}/planned"]


def test_the_after_hook_sees_every_image_before_the_commit(tmp_path: Path) -> None:
    seen: list[tuple[bool, list[MovedImage]]] = []
    into: list[str] = []
    out = tmp_path / "out"

    def after(destination: Destination, moved: list[MovedImage]) -> None:
        seen.append(((out / "index.json").exists(), moved))
        into.append(str(destination.location))  # the destination still open, to add to

    source = _archive(tmp_path)
    transfer(source, f"oci:{out}", after=after)
    ((committed, moved),) = seen
    assert not committed and into == [str(parse_location(f"oci:{out}"))]
    (image,) = moved
    assert str(image.source) == source and [str(r.reference) for r in image.results] == [
        "docker.io/random/image:1"]
    transfer(source, f"oci:{tmp_path}/dry", after=after, options=TransferOptions(
        dry_run=True))
    assert len(seen) == 1  # not on a dry run


def test_a_failing_after_hook_leaves_nothing(tmp_path: Path) -> None:
    def after(destination: object, moved: list[MovedImage]) -> None:
        raise UsageError("no")

    with pytest.raises(UsageError, match=r"^no$"):
        transfer(_archive(tmp_path), f"oci:{tmp_path}/out", after=after)
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path / "tmp") == []  # the spool is gone too


def test_notes_of_the_source_reach_the_progress(tmp_path: Path) -> None:
    out = tmp_path / "src"
    write_images(out, [ImageSpec([b"a" * 10], ("app:1",))], format="oci")
    index = json.loads((out / "index.json").read_bytes())
    digest = index["manifests"][0]["digest"].split(":")[1]
    path = out / "blobs" / "sha256" / digest
    manifest = json.loads(path.read_bytes())
    manifest["layers"][0]["mediaType"] = mt.OCI_LAYER_GZIP  # a plain tar labelled gzip
    raw = json.dumps(manifest).encode()
    new = Digest.of(raw)
    (out / "blobs" / "sha256" / new.encoded).write_bytes(raw)
    index["manifests"][0].update(digest=str(new), size=len(raw))
    (out / "index.json").write_text(json.dumps(index))
    progress = Ended()
    transfer(f"oci:{out}", f"oci:{tmp_path}/dst", progress=progress)
    assert any("is labelled gzip but its bytes are tar" in n for n in progress.notes)


def test_a_location_given_parsed_is_taken_as_is(tmp_path: Path) -> None:
    results = transfer(parse_location(_archive(tmp_path)),
                       parse_location(f"oci:{tmp_path}/out"))
    assert len(results) == 1


def test_the_summary_counts_a_foreign_layer_left_at_its_url(tmp_path: Path) -> None:
    from .test_core_mutants import _with_foreign
    from .test_oci_layout_mutants import Layout

    layout = Layout(tmp_path / "layout")
    _with_foreign(layout)
    ended = Ended()
    transfer(f"oci:{layout.root}", f"oci:{tmp_path / 'out'}:v1", progress=ended)
    (summary,) = ended.summaries
    assert (summary.external, summary.uploaded) == (1, 2)  # the config and the other layer


def test_a_registry_source_after_a_local_one_still_mounts(tmp_path: Path, registry: Registry,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources are looked at one by one for blobs to mount: a local archive first (nothing
    to mount) does not end the look before the registry's own repository."""
    transfer(_archive(tmp_path, seed=6), f"{registry.host}/run/first:1")
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "fresh"))  # the source says so
    local = str(random_image(tmp_path / "local.tar", layers=1, seed=7, tags=["local/app:2"]).path)
    results = transfer([local, f"{registry.host}/run/first:1"], f"{registry.host}/run/both")
    mounted = {str(r.reference): {b.action for b in r.blobs} for r in results}
    assert mounted[f"{registry.host}/run/both:1"] == {Action.MOUNTED}


def test_a_cancelled_transfer_stops_and_writes_nothing(tmp_path: Path) -> None:
    """The caller's token reaches the engine: cancelled (Ctrl-C, a stopped job), the run
    ends as interrupted instead of moving the image."""
    token = CancelToken()
    token.cancel()
    out = tmp_path / "out.tar"
    with pytest.raises(Cancelled):
        transfer(_archive(tmp_path), str(out), cancel=token)
    assert not out.exists()
    assert not os.listdir(tmp_path / "tmp")  # the spool is gone too


def test_a_push_to_a_registry_elsewhere_asks_the_cache_whether_to_stream(
        tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not on loopback (here `registry.test:5000`, reached through a proxy), whether to
    stream is the cache's to say: this one never pushed there, and remembers it did."""
    host, port = registry.host.rsplit(":", 1)
    proxy = ForwardProxy({"registry.test:5000": (host, int(port))}).start()
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    try:
        (result,) = transfer(_archive(tmp_path, seed=8), "registry.test:5000/run/remote:1",
                             connection=Connection(plain_http=True))
    finally:
        proxy.stop()
    assert {b.action for b in result.blobs} == {Action.UPLOADED}
    assert proxy.seen and Cache(default_cache_dir()).has_pushed_to("registry.test:5000")


def test_the_summary_says_how_long_the_run_took(tmp_path: Path) -> None:
    """The duration (and the rate shown from it) lies within the call: no clock
    arithmetic gone wrong. A bound, not a speed: nothing here depends on how fast."""
    source = _archive(tmp_path)
    ended = Ended()
    before = time.monotonic()
    transfer(source, str(tmp_path / "out.tar"), progress=ended)
    took = time.monotonic() - before
    (summary,) = ended.summaries
    assert 0 <= summary.seconds <= took
