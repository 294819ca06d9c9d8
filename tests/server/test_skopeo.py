"""Real clients against the embedded registry: skopeo pushes, copies and pulls."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from freight.server.auth import BasicAuth

from .conftest import OCI_INDEX, OCI_MANIFEST, Live, digest_of, serving

pytestmark = pytest.mark.integration


def require_skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true but skopeo is not installed", pytrace=False)
        pytest.skip("skopeo is not installed")
    return path


def skopeo(*args: str) -> str:
    done = subprocess.run([require_skopeo(), "--insecure-policy", *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def layer_tar(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(content), 1_577_836_800
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=0)


def write_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = digest_of(data)
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def image(layout: Path, arch: str, content: bytes) -> dict[str, object]:
    """Write a one-layer image's blobs into `layout`; return its manifest descriptor."""
    layer = layer_tar("hello.txt", content)
    diff_id = digest_of(gzip.decompress(layer))
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "config": {"Cmd": ["/hello"]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **write_blob(layout, config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **write_blob(layout, layer)}]}).encode()
    return {"mediaType": OCI_MANIFEST, **write_blob(layout, manifest),
            "platform": {"os": "linux", "architecture": arch}}


def oci_layout(path: Path, *, multi: bool = False) -> Path:
    path.mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entries = [image(path, "amd64", os.urandom(300_000))]
    if multi:
        entries.append(image(path, "arm64", os.urandom(1000)))
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": entries}).encode()
        entries = [{"mediaType": OCI_INDEX, **write_blob(path, index)}]
    entries[0]["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return path


@pytest.fixture
def registry(live: Live) -> Live:
    """The live registry on each storage backend."""
    require_skopeo()
    return live


def host(live: Live) -> str:
    return live.url.removeprefix("http://")


def test_skopeo_push_inspect_pull_roundtrip(registry: Live, tmp_path: Path) -> None:
    layout = oci_layout(tmp_path / "src")
    ref = f"docker://{host(registry)}/team/app:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", ref)
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", ref))
    assert inspected["Architecture"] == "amd64"
    assert registry.client.get("/v2/team/app/tags/list").json()["tags"] == ["v1"]
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'back'}:v1")
    pushed = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    pulled = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]
    assert pulled["digest"] == pushed


def test_skopeo_multi_arch_and_cross_repo_copy(registry: Live, tmp_path: Path) -> None:
    layout = oci_layout(tmp_path / "src", multi=True)
    first = f"docker://{host(registry)}/one/app:v1"
    second = f"docker://{host(registry)}/two/app:latest"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:v1", first)
    skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", first, second)
    one = registry.client.get("/v2/one/app/manifests/v1")
    two = registry.client.get("/v2/two/app/manifests/latest")
    assert one.headers["content-type"] == OCI_INDEX
    assert one.content == two.content
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", second))
    assert len(raw["manifests"]) == 2


def test_skopeo_with_basic_auth(tmp_path: Path) -> None:
    import bcrypt

    require_skopeo()
    users = {"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))}
    layout = oci_layout(tmp_path / "src")
    with serving(tmp_path / "root", auth=BasicAuth(users)) as live:
        ref = f"docker://{host(live)}/private/app:v1"
        denied = subprocess.run([require_skopeo(), "--insecure-policy", "copy",
                                 "--dest-tls-verify=false", f"oci:{layout}:v1", ref],
                                capture_output=True, text=True, timeout=300)
        assert denied.returncode != 0
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:secret",
               f"oci:{layout}:v1", ref)
        skopeo("inspect", "--tls-verify=false", "--creds", "alice:secret", ref)
