"""The read commands on archives and layouts: `freight manifest docker-archive:app.tar`,
`freight config oci:dir:v1`, `freight digest app.tar`, `freight ls`, and `--format`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from freight.errors import EXIT_USAGE
from freight.testing import ImageSpec, config_for, layer_tar

from .conftest import Run, Served, one_error_line, seed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, str]:
    """An OCI layout tagged v1: an index over linux/amd64 and linux/arm64; (dir, digest)."""
    root = tmp_path / "layout"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        (blobs / sha(data).split(":")[1]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    children = []
    for arch in ("amd64", "arm64"):
        layer = layer_tar({f"etc/{arch}": arch.encode() * 100})
        config = json.loads(config_for(ImageSpec([layer])))
        config["architecture"] = arch
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       **put(json.dumps(config).encode())},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        **put(layer)}]}).encode()
        children.append({"mediaType": OCI_MANIFEST, **put(manifest),
                         "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": children}).encode()
    entry = {"mediaType": OCI_INDEX, **put(index),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return root, sha(index)


def test_ls_archive(freight: Run, archive: Path) -> None:
    result = freight("ls", str(archive))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "app:1  (also app:2)" in text
    assert "image ID" in text and "linux/amd64: 2 layers" in text
    assert "40.0 KiB" in text and "110.0 KiB" in text
    shown = json.loads(freight("ls", str(archive), "--json").stdout)
    [image] = shown["images"]
    assert image["names"] == ["app:1", "app:2"] and image["built"] is True
    assert [d["size"] for d in image["platforms"][0]["layers"]] == [40960, 112640]


def test_ls_layout_with_format(freight: Run, layout: tuple[Path, str]) -> None:
    root, index = layout
    result = freight("ls", f"oci:{root}", "--format", "{tags[0]}\\t{platform}\\t{{.layers}}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["v1\tlinux/amd64\t1", "v1\tlinux/arm64\t1"]
    digest = freight("digest", f"oci:{root}")
    assert digest.stdout.strip() == index


def test_manifest_config_digest_of_an_archive(freight: Run, archive: Path) -> None:
    shown = freight("manifest", f"docker-archive:{archive}", "--json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [d["size"] for d in data["layers"]] == [40960, 112640]
    assert "no manifest of its own" in shown.stderr
    assert freight("digest", str(archive)).stdout.strip() == data["digest"]
    assert freight("digest", f"docker-archive:{archive}:app:2").stdout.strip() == data["digest"]
    config = freight("config", str(archive), "--format", "{config[architecture]}")
    assert config.exit_code == 0, config.stderr
    assert config.stdout.strip() == "amd64"
    one_error_line(freight("digest", f"docker-archive:{archive}:nope:1"), EXIT_USAGE,
                   "no image 'nope:1'", "app:1")
    one_error_line(freight("manifest", str(archive), "--platform", "linux/arm64"), EXIT_USAGE,
                   "linux/amd64", "not linux/arm64")


def test_platforms_of_a_layout(freight: Run, layout: tuple[Path, str]) -> None:
    root, _ = layout
    arm = freight("config", f"oci:{root}:v1", "--platform", "linux/arm64")
    assert arm.exit_code == 0, arm.stderr
    assert json.loads(arm.stdout)["architecture"] == "arm64"
    one_error_line(freight("manifest", f"oci:{root}", "--platform", "linux/s390x"), EXIT_USAGE,
                   "linux/s390x", "linux/amd64, linux/arm64")


def test_format_for_registry_reads(freight: Run, plain: Served) -> None:
    digest = seed(plain, "team/app", "1")
    seed(plain, "team/app", "2")
    tags = freight("tags", f"{plain.host}/team/app", "--format", "{repository}:{tag}")
    assert tags.stdout.splitlines() == [f"{plain.host}/team/app:1", f"{plain.host}/team/app:2"]
    catalog = freight("catalog", plain.host, "--format", "{{.repository}}")
    assert catalog.stdout.splitlines() == ["team/app"]
    shown = freight("manifest", f"{plain.host}/team/app:1", "--format",
                    "{digest} {config.media_type} {layers[0][size]}")
    assert shown.stdout.strip() == f"{digest} application/vnd.oci.image.config.v1+json 11"
    assert freight("digest", f"{plain.host}/team/app:1", "--format", "{{ .digest }}") \
        .stdout.strip() == digest
    bad = freight("digest", f"{plain.host}/team/app:1", "--format", "{nope}")
    assert bad.exit_code == EXIT_USAGE and "fields: digest" in bad.stderr


def test_ls_refuses_a_reference(freight: Run) -> None:
    one_error_line(freight("ls", "docker://localhost:5000/app:1"), EXIT_USAGE, "freight ls")
