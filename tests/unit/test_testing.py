"""freight.testing: random images read back in every format, and the in-process registry."""

from __future__ import annotations

import tarfile
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.sources import open_archive
from freight.sources.model import ImageNode
from freight.testing import (
    FORMATS,
    ImageSpec,
    random_image,
    random_layer,
    serve_in_thread,
    write_images,
)

pytest_plugins = ["freight.testing.pytest_plugin"]


def _name(fmt: str) -> str:
    return "layout" if fmt == "oci" else f"image-{fmt}.tar"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_every_format_reads_back_with_its_digests(tmp_path: Path, fmt: str,
                                                  compression: str) -> None:
    made = random_image(tmp_path / _name(fmt), layers=[3000, 0, 700], format=fmt,  # type: ignore[arg-type]
                        compression=compression)  # type: ignore[arg-type]
    with open_archive(made.path) as source:
        (image,) = source.images
        assert isinstance(image.root, ImageNode)
        assert str(image.root.config.digest) == made.image.config_digest
        types = {layer.media_type for layer in image.root.layers}
        assert types == {made.image.layers[0].media_type}
        assert [str(x.diff_id) for x in image.root.layers if x.diff_id] in (
            [], list(made.image.diff_ids))
    assert [name.removeprefix("docker.io/") for name in image.names] == ["random/image:1"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    one = random_image(tmp_path / "a.tar", layers=3, seed=7)
    two = random_image(tmp_path / "b.tar", layers=3, seed=7)
    three = random_image(tmp_path / "c.tar", layers=3, seed=8)
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.image.diff_ids != three.image.diff_ids


def test_random_layers_do_not_compress() -> None:
    import gzip

    layer = random_layer(100_000, seed=1)
    assert len(gzip.compress(layer)) > 100_000


def test_a_duplicated_layer_is_a_symlink_as_docker_writes(tmp_path: Path) -> None:
    made = random_image(tmp_path / "dup.tar", layers=[500, 900, 0], duplicates={2: 0})
    with tarfile.open(made.path) as tar:
        links = [m for m in tar.getmembers() if m.issym()]
    assert len(links) == 1 and links[0].linkname.startswith("../")
    assert made.image.diff_ids[0] == made.image.diff_ids[2]
    with open_archive(made.path) as source:
        root = source.images[0].root
        assert isinstance(root, ImageNode) and root.layers[0].digest == root.layers[2].digest


def test_several_images_and_untagged(tmp_path: Path) -> None:
    made = random_image(tmp_path / "multi.tar", images=3)
    with open_archive(made.path) as source:
        assert [i.names for i in source.images] == [
            (f"random/image-{n}:1",) for n in (1, 2, 3)]
    bare = random_image(tmp_path / "bare.tar", tags=())
    with open_archive(bare.path) as source:
        assert source.images[0].names == ()


def test_shared_layers_are_written_once(tmp_path: Path) -> None:
    base, top = random_layer(400, seed=1), random_layer(400, seed=2)
    specs = [ImageSpec([base], ["one:1", "one:2"]), ImageSpec([base, top], ["two:1"])]
    made = write_images(tmp_path / "shared.tar", specs)
    with tarfile.open(made.path) as tar:
        layer_tars = [m for m in tar.getmembers() if m.name.endswith("layer.tar")]
    assert len(layer_tars) == 2 and not any(m.issym() for m in layer_tars)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="earlier"):
        random_image(tmp_path / "x.tar", layers=2, duplicates={0: 1})
    with pytest.raises(ValueError, match="one per image"):
        random_image(tmp_path / "x.tar", images=2, tags=["a:1"])
    with pytest.raises(ValueError, match="negative"):
        random_layer(-1)


def test_in_thread_registry_takes_a_push_and_logs_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    made = random_image(tmp_path / "layout", layers=2, compression="gzip", format="oci")
    with serve_in_thread() as registry:
        (pushed,) = freight.push(made.path, registry.reference("team/app", "1"),
                                 compression="keep")
        assert str(pushed.digest) == made.image.manifest_digest  # kept layers: same bytes
        reply = httpx.get(f"{registry.url}/v2/team/app/manifests/1",
                          headers={"Accept": mt.OCI_MANIFEST})
        assert reply.status_code == 200
        assert any(r["method"] == "PUT" and "/manifests/" in r["path"]
                   for r in registry.requests())
        root = registry.root
    assert not root.exists()  # a temporary store is deleted with the registry
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{registry.url}/v2/", timeout=2)


def test_in_thread_registry_serves_as_freight_serve_does(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The same guarded protocol: a client's TLS probe is refused without a log line (plain
    uvicorn logs "Invalid HTTP request received." for each), and headers are bounded."""
    import socket

    with serve_in_thread() as registry, caplog.at_level("INFO", logger="uvicorn.error"):
        host, port = registry.host.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as probe:
            probe.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a TLS ClientHello
            probe.recv(1024)  # answered or closed, never held
        huge = {"X-Pad": "a" * (70 << 10)}
        assert httpx.get(f"{registry.url}/v2/", headers=huge, timeout=5).status_code == 431
        assert httpx.get(f"{registry.url}/v2/", timeout=5).status_code == 200
    assert not [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]


def test_plugin_fixtures(freight_registry, freight_image) -> None:  # type: ignore[no-untyped-def]
    made = freight_image("p.tar", layers=1)
    assert made.path.exists()
    assert httpx.get(f"{freight_registry.url}/v2/").status_code == 200


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_layers_may_each_have_their_own_compression(tmp_path: Path, fmt: str) -> None:
    made = random_image(tmp_path / _name(fmt), layers=[100, 200, 300], format=fmt,  # type: ignore[arg-type]
                        compression=["gzip", "none", "zstd"])
    assert [b.media_type for b in made.image.layers] == [
        mt.OCI_LAYER_GZIP, mt.OCI_LAYER, mt.OCI_LAYER_ZSTD]
    with open_archive(made.path) as source:
        root = source.images[0].root
        assert isinstance(root, ImageNode)
        assert [x.media_type for x in root.layers] == [b.media_type for b in made.image.layers]
    with pytest.raises(ValueError, match="one per layer"):
        random_image(tmp_path / "x.tar", layers=2, compression=["gzip"])


def test_import_freight_loads_no_test_helper() -> None:
    import subprocess
    import sys

    code = ("import sys, freight\n"
            "print(sorted(m for m in sys.modules if 'testing' in m or m == 'uvicorn'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
