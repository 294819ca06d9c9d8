"""Acceptance tests for ``freight push`` against real components.

Archives come from a real docker engine (``docker save``, legacy format in docker 20.10),
containerd (``ctr images export``), and gzip/zstd wrapping; they are pushed to the CNCF
distribution registry, then read back by consumers that share no code with freight:
the registry HTTP API (media type vs magic bytes, DiffIDs), a clean docker engine
(pull, image ID, run), and skopeo for zstd layers, which docker 20.10 cannot pull.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from freight.errors import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_NETWORK, EXIT_REGISTRY
from support.badarchives import BAD_KINDS
from support.consumers import pull_and_run, skopeo_copy_to_layout, verify_layout_image
from support.docker import DockerEngine
from support.faults import BodyLimit
from support.freightcli import FreightRun, UserDirs, freight_argv, run_freight
from support.images import TestImage, TestImages
from support.procs import free_port
from support.proxy import RegistryProxy
from support.registry import Registry
from support.registry_api import catalog, manifest, split_reference, tags
from support.verify import verify_image

pytestmark = pytest.mark.integration

COMPRESSIONS = ("auto", "gzip", "zstd", "none", "keep")
# archive fixture → (test image it holds, what its layers are, i.e. what "keep" pushes)
SOURCES = {
    "legacy_archive": ("app", "tar"),
    "symlink_archive": ("dup", "tar"),
    "gzip_archive": ("app", "tar"),
    "zstd_archive": ("app", "tar"),
    "docker25_archive": ("app", "tar"),
    "oci_archive_from_ctr": ("app", "tar"),
    "ctr_gzip_archive": ("app", "gzip"),
}
EXPECTED_LAYERS = {"gzip": "gzip", "zstd": "zstd", "none": "tar"}
AUTO = {"tar": "gzip", "gzip": "gzip", "zstd": "zstd"}  # auto gzips only plain tars
BLOB_ACTIONS = {"uploaded", "skipped", "mounted"}


@pytest.fixture
def dirs(tmp_path: Path) -> UserDirs:
    """Empty DOCKER_CONFIG and freight cache: no credentials or memories from this machine
    or from other tests (the cache would let a push skip reading layers)."""
    return UserDirs.under(tmp_path / "user")


def push(*args: str, dirs: UserDirs, stdin: str | None = None) -> FreightRun:
    return run_freight("push", *args, stdin=stdin, dirs=dirs)


def assert_succeeded(run: FreightRun) -> None:
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.stderr, run.describe()


def assert_ok(run: FreightRun) -> list[tuple[str, str]]:
    """Exit 0, no traceback; returns the (reference, digest) of each ``REF@DIGEST`` line."""
    assert_succeeded(run)
    pairs = [tuple(line.rsplit("@", 1)) for line in run.lines]
    for pair in pairs:
        assert len(pair) == 2 and pair[1].startswith("sha256:"), run.describe()
    return [(reference, digest) for reference, digest in pairs]


def assert_failed(run: FreightRun, exit_code: int) -> None:
    """The given exit code, exactly one line on stderr, no traceback, nothing on stdout."""
    assert run.returncode == exit_code, run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    assert len(run.stderr.strip().splitlines()) == 1, run.describe()
    assert run.stdout.strip() == "", run.describe()


def image_of(images: TestImages, name: str) -> TestImage:
    image: TestImage = getattr(images, name)
    return image


# --- round trips: every archive kind x every compression ---------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("source", SOURCES)
def test_push_round_trip(
    request: pytest.FixtureRequest,
    source: str,
    compression: str,
    images: TestImages,
    registry: Registry,
    docker_puller: DockerEngine,
    dirs: UserDirs,
    tmp_path: Path,
) -> None:
    archive: Path = request.getfixturevalue(source)
    image_name, held = SOURCES[source]
    image = image_of(images, image_name)
    repository = f"accept/{source.replace('_', '-')}-{compression}"
    destination = f"{registry.host}/{repository}:1"

    run = push(str(archive), destination, "--compression", compression, dirs=dirs)

    [(reference, digest)] = assert_ok(run)
    assert reference == destination
    assert dirs.leftovers() == [], "the push left temporary files"
    layers = AUTO[held] if compression == "auto" else EXPECTED_LAYERS.get(compression, held)
    pushed = verify_image(registry, repository, "1", image_id=image.image_id, compression=layers)
    assert pushed.digest == digest
    if compression == "zstd":  # docker 20.10 cannot pull zstd layers: use skopeo
        by_digest = f"{registry.host}/{repository}@{digest}"  # skopeo refuses tag+digest
        layout = skopeo_copy_to_layout(by_digest, tmp_path / "layout")
        verify_layout_image(layout, image, "zstd")
    else:
        pull_and_run(docker_puller, f"{registry.host}/{repository}@{digest}", image)


def test_push_with_no_compression_option_gzips(
    legacy_archive: Path, images: TestImages, registry: Registry, dirs: UserDirs
) -> None:
    """gzip is the default: uncompressed layer.tar files go out as gzip, labelled gzip."""
    destination = f"{registry.host}/accept/default-compression:1"
    [(_, digest)] = assert_ok(push(str(legacy_archive), destination, dirs=dirs))
    pushed = verify_image(
        registry, "accept/default-compression", "1", image_id=images.app.image_id,
        compression="gzip",
    )  # fmt: skip
    assert pushed.digest == digest


def test_docker_25_0_0_shuffled_layers_are_pushed_in_rootfs_order(
    docker25_shuffled_archive: Path,
    images: TestImages,
    registry: Registry,
    docker_puller: DockerEngine,
    dirs: UserDirs,
) -> None:
    """Docker 25.0.0 wrote the OCI manifest's layers in random order (protocol.md §5.2); the
    config's diff_ids say the real order, and the pushed image must follow it."""
    destination = f"{registry.host}/accept/docker25-shuffled:1"
    run = push(str(docker25_shuffled_archive), destination, "--compression", "keep", dirs=dirs)
    [(_, digest)] = assert_ok(run)
    verify_image(registry, "accept/docker25-shuffled", "1", image_id=images.app.image_id,
                 compression="tar")  # fmt: skip
    pull_and_run(docker_puller, f"{registry.host}/accept/docker25-shuffled@{digest}", images.app)


# --- several images in one archive -------------------------------------------------------


def test_multi_image_archive_to_bare_registry_pushes_every_repotag(
    multi_archive: Path,
    images: TestImages,
    fresh_registry: Registry,
    docker_puller: DockerEngine,
    dirs: UserDirs,
) -> None:
    run = push(str(multi_archive), fresh_registry.host, dirs=dirs)

    printed = dict(assert_ok(run))
    by_tag = {
        images.app.reference: images.app,
        images.one.reference: images.one,
        "freight-test/one:latest": images.one,  # a second RepoTag of the same image
        images.two.reference: images.two,
    }
    assert set(printed) <= {f"{fresh_registry.host}/{tag}" for tag in by_tag}, run.describe()
    printed_ids = set()
    for tag, image in by_tag.items():
        _, repository, name = split_reference(f"{fresh_registry.host}/{tag}")
        assert name in tags(fresh_registry, repository), f"{tag} was not pushed"
        pushed = verify_image(fresh_registry, repository, name, image_id=image.image_id,
                              compression="gzip")  # fmt: skip
        reference = f"{fresh_registry.host}/{tag}"
        if reference in printed:
            assert printed[reference] == pushed.digest
            printed_ids.add(image.image_id)
        pull_and_run(docker_puller, reference, image)
    assert printed_ids == {images.app.image_id, images.one.image_id, images.two.image_id}


def test_multi_image_archive_shares_the_base_layer_upload(
    multi_archive: Path,
    fresh_registry: Registry,
    proxy_for: Callable[[Registry], RegistryProxy],
    dirs: UserDirs,
) -> None:
    """Each distinct blob is uploaded at most once per repository, the shared base included."""
    proxy = proxy_for(fresh_registry)
    assert_ok(push(str(multi_archive), proxy.host, "--compression", "none",
                   dirs=dirs))  # fmt: skip
    distinct = set()
    for repository in catalog(fresh_registry):
        for tag in tags(fresh_registry, repository):
            body = manifest(fresh_registry, repository, tag).json
            distinct |= {(repository, d["digest"]) for d in [body["config"], *body["layers"]]}
    starts = proxy.counts()[("POST", "upload")]
    assert 0 < starts <= len(distinct)


def test_image_option_selects_one_image_of_many(
    multi_archive: Path, images: TestImages, fresh_registry: Registry, dirs: UserDirs
) -> None:
    destination = f"{fresh_registry.host}/selected/two:7"
    run = push(str(multi_archive), destination, "--image", images.two.reference,
               dirs=dirs)  # fmt: skip
    [(reference, _)] = assert_ok(run)
    assert reference == destination
    assert catalog(fresh_registry) == ["selected/two"]
    verify_image(fresh_registry, "selected/two", "7", image_id=images.two.image_id,
                 compression="gzip")  # fmt: skip


def test_untagged_image_goes_to_the_destination_tag(
    untagged_archive: Path,
    images: TestImages,
    registry: Registry,
    docker_puller: DockerEngine,
    dirs: UserDirs,
) -> None:
    destination = f"{registry.host}/accept/untagged:1"
    [(reference, _)] = assert_ok(push(str(untagged_archive), destination, dirs=dirs))
    assert reference == destination
    pull_and_run(docker_puller, destination, images.three)


def test_docker_save_piped_into_push(
    docker: DockerEngine,
    images: TestImages,
    registry: Registry,
    docker_puller: DockerEngine,
    dirs: UserDirs,
) -> None:
    """``docker save IMAGE | freight push - REF``: a real pipe, no file in between."""
    destination = f"{registry.host}/accept/piped:1"
    saver = subprocess.Popen([docker.cli, "save", images.app.reference], env=docker.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pusher = subprocess.run([*freight_argv(), "push", "-q", "-", destination],
                            stdin=saver.stdout, capture_output=True, text=True,
                            env={**os.environ, **dirs.env()}, timeout=600)
    assert saver.stdout is not None
    saver.stdout.close()
    assert saver.wait(60) == 0, saver.stderr.read() if saver.stderr else ""
    assert pusher.returncode == 0, pusher.stderr
    assert pusher.stdout.strip().startswith(f"{destination}@sha256:")
    pull_and_run(docker_puller, destination, images.app)


# --- idempotence: the second push uploads nothing ----------------------------------------


@pytest.mark.parametrize(("source", "compression"), [
    ("legacy_archive", "gzip"),
    ("legacy_archive", "zstd"),
    ("legacy_archive", "none"),
    ("symlink_archive", "gzip"),
    ("ctr_gzip_archive", "keep"),
])  # fmt: skip
@pytest.mark.parametrize("cache", ["kept", "cleared"])
def test_second_push_uploads_no_blob(
    request: pytest.FixtureRequest,
    source: str,
    compression: str,
    cache: str,
    fresh_registry: Registry,
    proxy_for: Callable[[Registry], RegistryProxy],
    dirs: UserDirs,
    tmp_path: Path,
) -> None:
    """Re-pushing skips every blob, from the same machine (cache kept) or another one
    (cache cleared: freight must convert again and find the same digests)."""
    archive: Path = request.getfixturevalue(source)
    proxy = proxy_for(fresh_registry)
    destination = f"{proxy.host}/again/{source.replace('_', '-')}:1"
    args = (str(archive), destination, "--compression", compression, "--json")

    first = push(*args, dirs=dirs)
    assert_succeeded(first)
    assert proxy.blob_writes(), "the first push must upload through the proxy"
    first_actions = {b["action"] for r in first.json_lines for b in r["blobs"]}
    assert "uploaded" in first_actions and first_actions <= BLOB_ACTIONS
    proxy.reset()

    second_dirs = dirs if cache == "kept" else UserDirs.under(tmp_path / "another-machine")
    second = push(*args, dirs=second_dirs)
    assert_succeeded(second)
    assert proxy.blob_writes() == [], f"second push wrote blobs: {proxy.blob_writes()}"
    assert {b["action"] for r in second.json_lines for b in r["blobs"]} == {"skipped"}
    assert second.json_lines[0]["digest"] == first.json_lines[0]["digest"]


def test_streamed_second_push_with_no_cache_commits_nothing_and_leaves_nothing(
    legacy_archive: Path,
    fresh_registry: Registry,
    proxy_for: Callable[[Registry], RegistryProxy],
    dirs: UserDirs,
    tmp_path: Path,
) -> None:
    """With --stream (the default for remote registries) and an empty cache, a layer goes
    up while it is compressed, before its digest is known. When the registry turns out to
    hold it, the stream is dropped: no blob is closed, each session is cancelled (through
    the URL distribution's last reply gave: an older `_state` is refused), and no upload
    data stays in the registry's storage."""
    proxy = proxy_for(fresh_registry)
    destination = f"{proxy.host}/streamed/app:1"
    assert_succeeded(push(str(legacy_archive), destination, "--stream", dirs=dirs))
    proxy.reset()

    second = push(str(legacy_archive), destination, "--stream", "--json",
                  dirs=UserDirs.under(tmp_path / "another-machine"))
    assert_succeeded(second)
    assert {b["action"] for b in second.json_lines[0]["blobs"]} == {"skipped"}
    writes = proxy.blob_writes()
    assert not [e for e in writes if e.method == "PUT"], "a dropped stream was closed"
    patches = [e for e in writes if e.method == "PATCH"]
    cancels = [e for e in writes if e.method == "DELETE"]
    assert patches and len(cancels) == len(patches) and {e.status for e in cancels} == {204}
    uploads = fresh_registry.storage / "docker/registry/v2/repositories/streamed/app/_uploads"
    assert not [f for f in uploads.rglob("data") if f.stat().st_size], "upload data left"


# --- output, library ---------------------------------------------------------------------


def test_json_output_describes_what_was_pushed(
    legacy_archive: Path, registry: Registry, dirs: UserDirs
) -> None:
    destination = f"{registry.host}/accept/json:1"
    run = push(str(legacy_archive), destination, "--json", "--quiet", dirs=dirs)
    assert_succeeded(run)
    [result] = run.json_lines
    assert {"reference", "digest", "size", "media_type", "blobs"} <= set(result)
    pushed = manifest(registry, "accept/json", "1")
    assert result["reference"] == destination
    assert (result["digest"], result["size"]) == (pushed.digest, len(pushed.raw))
    assert result["media_type"] == pushed.media_type
    blobs = {(b["media_type"], b["digest"], b["size"]) for b in result["blobs"]}
    for layer in pushed.json["layers"]:
        assert (layer["mediaType"], layer["digest"], layer["size"]) in blobs
    assert {b["action"] for b in result["blobs"]} <= BLOB_ACTIONS


@pytest.mark.parametrize("as_path", [True, False], ids=["Path", "str"])
def test_library_push_returns_results(
    as_path: bool,
    legacy_archive: Path,
    images: TestImages,
    registry: Registry,
    dirs: UserDirs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import freight

    for name, value in dirs.env().items():
        monkeypatch.setenv(name, value)
    repository = f"library-api/{'path' if as_path else 'str'}"
    destination = f"{registry.host}/{repository}:1"
    source = legacy_archive if as_path else str(legacy_archive)
    [result] = freight.push(source, destination, compression="gzip", jobs=2)
    assert str(result.reference) == destination
    pushed = verify_image(registry, repository, "1", image_id=images.app.image_id,
                          compression="gzip")  # fmt: skip
    assert str(result.digest) == pushed.digest
    pushed_layers = {layer["digest"] for layer in pushed.json["layers"]}
    assert pushed_layers <= {str(blob.digest) for blob in result.blobs}
    assert {blob.action for blob in result.blobs} <= BLOB_ACTIONS


# --- transport: chunked uploads, auth, unreachable registries ----------------------------


def test_chunked_upload_passes_a_body_size_limit(
    legacy_archive: Path,
    images: TestImages,
    fresh_registry: Registry,
    proxy_for: Callable[[Registry], RegistryProxy],
    dirs: UserDirs,
) -> None:
    """Behind a proxy that rejects bodies over 256 KiB (HTTP 413), ``--chunk-size`` works."""
    proxy = proxy_for(fresh_registry)
    limit = BodyLimit(256 * 1024)
    proxy.faults.append(limit)
    destination = f"{proxy.host}/chunked/app:1"
    run = push(str(legacy_archive), destination, "--compression", "none",
               "--chunk-size", str(64 * 1024), dirs=dirs)  # fmt: skip
    assert_ok(run)
    assert limit.rejected == 0
    assert proxy.counts()[("PATCH", "upload")] > 1
    verify_image(fresh_registry, "chunked/app", "1", image_id=images.app.image_id,
                 compression="tar")  # fmt: skip


def test_push_with_credentials_to_htpasswd_registry(
    legacy_archive: Path,
    registry_factory: Callable[..., Registry],
    dirs: UserDirs,
) -> None:
    secured = registry_factory(users={"alice": "s3cret"}, name="htpasswd-push")
    destination = f"{secured.host}/private/app:1"
    base = (str(legacy_archive), destination)

    assert_failed(push(*base, dirs=dirs), EXIT_AUTH)
    wrong = push(*base, "--username", "alice", "--password-stdin", stdin="wrong\n",
                 dirs=dirs)  # fmt: skip
    assert_failed(wrong, EXIT_AUTH)
    assert tags(secured, "private/app") == []

    right = push(*base, "--username", "alice", "--password-stdin", stdin="s3cret\n",
                 dirs=dirs)  # fmt: skip
    [(_, digest)] = assert_ok(right)
    assert manifest(secured, "private/app", "1").digest == digest


def test_a_read_only_registry_says_it_takes_no_pushes(
    legacy_archive: Path,
    registry: Registry,
    registry_factory: Callable[..., Registry],
    dirs: UserDirs,
) -> None:
    """distribution in maintenance mode (read-only, as for garbage collection) answers a
    push with a bare 405 "Method not allowed": the error says what that means, push and
    copy alike, and nothing is tagged or left in TMPDIR."""
    frozen = registry_factory(name="read-only", read_only=True)
    run = push(str(legacy_archive), f"{frozen.host}/frozen/app:1", dirs=dirs)
    assert_failed(run, EXIT_REGISTRY)
    assert "HTTP 405" in run.stderr and "read-only mode" in run.stderr, run.describe()
    source = f"{registry.host}/frozen/source:1"
    assert_ok(push(str(legacy_archive), source, dirs=dirs))
    copied = run_freight("copy", source, f"{frozen.host}/frozen/app:1", dirs=dirs)
    assert_failed(copied, EXIT_REGISTRY)
    assert "read-only mode" in copied.stderr
    assert tags(frozen, "frozen/app") == []
    assert dirs.leftovers() == []


def test_unreachable_registry_is_a_network_error(legacy_archive: Path, dirs: UserDirs) -> None:
    destination = f"127.0.0.1:{free_port()}/nobody/home:1"  # nothing listens there
    assert_failed(push(str(legacy_archive), destination, dirs=dirs), EXIT_NETWORK)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_archive_is_rejected_without_a_tag(
    kind: str, bad_archive: Callable[[str], Path], registry: Registry, dirs: UserDirs
) -> None:
    repository = f"bad/{kind}"
    run = push(str(bad_archive(kind)), f"{registry.host}/{repository}:1", dirs=dirs)
    assert_failed(run, EXIT_BAD_INPUT)
    assert tags(registry, repository) == []
    assert dirs.leftovers() == [], "a failed push left temporary files"


def test_missing_source_file_is_bad_input(
    tmp_path: Path, registry: Registry, dirs: UserDirs
) -> None:
    run = push(str(tmp_path / "no-such.tar"), f"{registry.host}/bad/missing:1",
               dirs=dirs)  # fmt: skip
    assert_failed(run, EXIT_BAD_INPUT)
