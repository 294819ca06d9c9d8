"""freight push end to end against the embedded registry (real HTTP on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import freight
from freight import mediatypes as mt
from freight.cli import main
from freight.errors import EXIT_BAD_INPUT, EXIT_NETWORK, EXIT_USAGE
from freight.testing import ImageSpec, random_image, serve_in_thread, write_images
from support.samples import sample_layers

ACCEPT = ", ".join(mt.ACCEPT_MANIFESTS)


def _manifest(host: str, repo: str, ref: str) -> dict:  # type: ignore[type-arg]
    reply = httpx.get(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _blob(host: str, repo: str, digest: str) -> bytes:
    return httpx.get(f"http://{host}/v2/{repo}/blobs/{digest}").content


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    a, b = sample_layers()
    return write_images(tmp_path / "app.tar", [ImageSpec([a, b, a], ["team/app:1"])]).path


@pytest.mark.parametrize(("compression", "stream"), [
    ("gzip", False), ("gzip", True), ("zstd", False), ("zstd", True), ("none", False),
    ("keep", False)])
def test_layer_types_match_bytes(served: str, archive: Path, compression: str,
                                 stream: bool) -> None:
    (result,) = freight.push(str(archive), f"{served}/team/app:1", compression=compression,
                             stream=stream)
    manifest = _manifest(served, "team/app", "1")
    assert result.digest == freight.Digest.of(
        httpx.get(f"http://{served}/v2/team/app/manifests/1", headers={"Accept": ACCEPT}).content)
    expected = {"gzip": mt.GZIP, "zstd": mt.ZSTD, "none": mt.NONE, "keep": mt.NONE}[compression]
    for layer in manifest["layers"]:
        data = _blob(served, "team/app", layer["digest"])
        assert mt.sniff_compression(data) == expected
        assert mt.layer_compression(layer["mediaType"]) == expected
        assert len(data) == layer["size"]
    # the config is pushed byte for byte: the image ID does not change
    config = _blob(served, "team/app", manifest["config"]["digest"])
    assert freight.Digest.of(config) == freight.Digest.parse(manifest["config"]["digest"])
    assert (manifest["mediaType"] == mt.DOCKER_MANIFEST) == (compression == "gzip")
    docker = manifest["mediaType"] == mt.DOCKER_MANIFEST  # a config typed for its manifest
    assert manifest["config"]["mediaType"] == (mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG)


def test_second_push_uploads_nothing(served: str, archive: Path) -> None:
    first = freight.push(str(archive), f"{served}/team/app:1")
    second = freight.push(str(archive), f"{served}/team/app:1")
    uploaded = [b.digest for b in first[0].blobs if b.action == "uploaded"]
    assert sorted(uploaded) == sorted({b.digest for b in first[0].blobs})  # each blob once
    assert {b.action for b in second[0].blobs} == {"skipped"}
    assert first[0].digest == second[0].digest  # gzip is deterministic


def test_empty_cache_drops_streams_of_layers_the_registry_has(
        served: str, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers stream while they compress. With an empty cache (a fresh CI runner) a layer the
    registry already holds is known only once compressed: then its stream is dropped, and
    neither a blob nor an upload session is left behind."""
    (first,) = freight.push(str(archive), f"{served}/team/app:1", stream=True)
    assert "uploaded" in {b.action for b in first.blobs}
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "fresh-cache"))
    (second,) = freight.push(str(archive), f"{served}/team/app:2", stream=True)
    assert {b.action for b in second.blobs} == {"skipped"}
    (uploads,) = tmp_path.glob("registry-*/uploads")  # the one registry's upload sessions
    assert not list(uploads.iterdir())


def test_other_repository_mounts(served: str, archive: Path) -> None:
    freight.push(str(archive), f"{served}/team/app:1")
    (result,) = freight.push(str(archive), f"{served}/other/app:1")
    actions = [b.action for b in result.blobs]
    assert "mounted" in actions and "uploaded" not in actions


def test_chunked_upload(tmp_path: Path) -> None:
    archive = random_image(tmp_path / "random.tar", layers=[20_000, 9_000]).path  # incompressible
    with serve_in_thread(tmp_path / "registry") as registry:
        (result,) = freight.push(str(archive), registry.reference("team/app", "1"),
                                 chunk_size=4096)
        for blob in result.blobs:
            data = _blob(registry.host, "team/app", str(blob.digest))
            assert freight.Digest.of(data) == blob.digest
        patches = [r["bytes_in"] for r in registry.requests() if r["method"] == "PATCH"]
    # every chunk but each blob's last is exactly chunk_size, as the registry received them
    assert patches and max(patches) == 4096
    assert len(patches) >= sum(b.size // 4096 for b in result.blobs if b.action == "uploaded")


def test_multi_image_to_bare_registry(served: str, tmp_path: Path) -> None:
    a, b = sample_layers()
    path = write_images(tmp_path / "m.tar", [ImageSpec([a], ["one:1", "one:2"]),
                                             ImageSpec([a, b], ["team/two:x"])]).path
    results = freight.push(str(path), served)
    assert sorted(str(r.reference) for r in results) == [
        f"{served}/one:1", f"{served}/one:2", f"{served}/team/two:x"]
    with pytest.raises(freight.UsageError, match="--image"):
        freight.push(str(path), f"{served}/x/y:1")
    (picked,) = freight.push(str(path), f"{served}/x/y:1", image="team/two")
    assert str(picked.reference) == f"{served}/x/y:1"


def test_cli_json_and_pinned_lines(served: str, archive: Path) -> None:
    run = CliRunner().invoke(main, ["push", str(archive), f"{served}/team/app", "--json"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout.strip())
    assert data["reference"] == f"{served}/team/app:1"  # the tag comes from the archive
    assert "uploaded" in {b["action"] for b in data["blobs"]}
    run = CliRunner().invoke(main, ["push", str(archive), f"{served}/team/app:2"])
    assert run.stdout.strip() == f"{served}/team/app:2@{data['digest']}"


@pytest.mark.parametrize("compression", ["gzip", "none", "gzip --stream"])
def test_diff_id_mismatch_writes_no_tag(served: str, tmp_path: Path, compression: str) -> None:
    a, b = sample_layers()
    path = write_images(tmp_path / "bad.tar", [ImageSpec([a, b], ["team/app:1"])]).path
    data = path.read_bytes()
    needle = b"hello\n" * 100
    path.write_bytes(data.replace(needle, b"HELLO\n" * 100, 1))
    run = CliRunner().invoke(main, ["push", str(path), f"{served}/team/app:1",
                                    "--compression", *compression.split()])
    assert run.exit_code == EXIT_BAD_INPUT, run.output
    assert "diff_id" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    reply = httpx.get(f"http://{served}/v2/team/app/manifests/1", headers={"Accept": ACCEPT})
    assert reply.status_code == 404
    (uploads,) = tmp_path.glob("registry-*/uploads")  # the one registry's upload sessions
    assert not list(uploads.iterdir())  # the bad layer's stream was dropped, not kept


@pytest.mark.parametrize("wrap", ["plain", "gzip"])
def test_archive_on_standard_input(served: str, archive: Path, wrap: str) -> None:
    """`docker save app | freight push - REF`, through a real pipe."""
    import gzip
    import subprocess
    import sys

    data = archive.read_bytes()
    direct = freight.push(str(archive), f"{served}/team/app:1")[0].digest
    done = subprocess.run([sys.executable, "-m", "freight", "push", "-q", "-",
                           f"{served}/team/app:2"], capture_output=True, timeout=60,
                          input=gzip.compress(data) if wrap == "gzip" else data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == f"{served}/team/app:2@{direct}"


def test_standard_input_that_is_empty_or_cut_is_bad_input(served: str, archive: Path) -> None:
    runner = CliRunner()
    run = runner.invoke(main, ["push", "-", f"{served}/team/app:1"], input=b"")
    assert run.exit_code == EXIT_BAD_INPUT and "standard input: empty" in run.stderr
    run = runner.invoke(main, ["push", "-", f"{served}/team/app:1"],
                        input=archive.read_bytes()[:5000])
    assert run.exit_code == EXIT_BAD_INPUT and "standard input" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_usage_and_network_errors(archive: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = runner.invoke(main, ["push", str(archive), "Bad/Name:1"])
    assert run.exit_code == EXIT_USAGE and "Traceback" not in run.output
    run = runner.invoke(main, ["push", str(archive), "127.0.0.1:9/team/app:1"])
    assert run.exit_code == EXIT_NETWORK
    assert "cannot connect" in run.stderr


def test_cached_layer_of_another_size_is_read_again(served: str, tmp_path: Path) -> None:
    import io
    import tarfile

    a, b = sample_layers()
    good = write_images(tmp_path / "good.tar", [ImageSpec([a, b], ["team/app:1"])]).path
    freight.push(str(good), f"{served}/team/app:1")
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as tin, tarfile.open(bad, "w") as tout:
        for info in tin:
            data = tin.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            data = data[:-1024] if data == a else data  # cut the first layer
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    with pytest.raises(freight.DigestMismatch):
        freight.push(str(bad), f"{served}/team/app:2")
