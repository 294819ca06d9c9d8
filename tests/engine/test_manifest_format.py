"""`--manifest-format oci`: OCI manifests (and indexes) where the source has Docker's, as
skopeo's `--format oci` writes them. skopeo and podman find an image in an OCI layout by
its tag only when the manifest there is OCI's; by default freight keeps a Docker manifest
(and its digest) and says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.errors import UsageError
from freight.testing import random_image
from support.env import require_binary
from support.fixtures import module_registry, own_cache

from .test_attestations import Notes

pytestmark = pytest.mark.integration
registry = module_registry("manifest-format-registry")
_own_cache = own_cache()


def _docker_image(registry: str, tmp_path: Path, name: str) -> str:
    """A legacy docker archive pushed (gzipped): a Docker schema2 manifest."""
    random_image(tmp_path / f"{name}.tar", layers=2, seed=len(name))
    (pushed,) = freight.push(tmp_path / f"{name}.tar", f"{registry}/format/{name}:1")
    assert pushed.media_type == mt.DOCKER_MANIFEST
    return f"{registry}/format/{name}:1"


def _entry(layout: Path) -> dict[str, object]:
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    return dict(entry)


def _blob(layout: Path, digest: object) -> dict[str, object]:
    raw = (layout / "blobs" / "sha256" / str(digest).removeprefix("sha256:")).read_bytes()
    return dict(json.loads(raw))


def test_by_default_a_docker_manifest_is_kept_with_a_note(registry: str, tmp_path: Path) -> None:
    ref = _docker_image(registry, tmp_path, "kept")
    notes = Notes()
    (result,) = freight.copy(ref, f"oci:{tmp_path / 'out'}:v1", progress=notes)
    assert _entry(tmp_path / "out")["mediaType"] == mt.DOCKER_MANIFEST
    assert freight.copy(ref, f"{registry}/format/again:1")[0].digest == result.digest
    assert any("--manifest-format oci" in note and "skopeo" in note for note in notes.notes)


def test_oci_turns_a_docker_manifest_into_an_oci_one_skopeo_finds_by_tag(
        registry: str, tmp_path: Path) -> None:
    skopeo = require_binary("skopeo", package="skopeo")
    ref = _docker_image(registry, tmp_path, "converted")
    source = freight.copy(ref, f"oci:{tmp_path / 'kept'}")[0]
    docker = _blob(tmp_path / "kept", source.digest)
    notes = Notes()
    (result,) = freight.copy(ref, f"oci:{tmp_path / 'out'}:v1", manifest_format="oci",
                             progress=notes)
    assert not notes.notes
    entry = _entry(tmp_path / "out")
    assert entry["mediaType"] == mt.OCI_MANIFEST and entry["digest"] == str(result.digest)
    oci = _blob(tmp_path / "out", result.digest)
    assert oci["mediaType"] == mt.OCI_MANIFEST
    assert oci["config"] == {**docker["config"], "mediaType": mt.OCI_CONFIG}  # same bytes
    assert [(d["digest"], d["size"], d["mediaType"]) for d in oci["layers"]] == [
        (d["digest"], d["size"], mt.OCI_LAYER_GZIP) for d in docker["layers"]]
    inspected = subprocess.run([skopeo, "inspect", "--raw", f"oci:{tmp_path / 'out'}:v1"],
                               capture_output=True, text=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout) == oci
    # written to a registry as well, and an OCI image is left as it is
    (pushed,) = freight.copy(f"oci:{tmp_path / 'out'}:v1", f"{registry}/format/oci:1",
                             manifest_format="oci")
    assert pushed.digest == result.digest


def test_oci_turns_a_docker_manifest_list_into_an_oci_index(registry: str,
                                                            tmp_path: Path) -> None:
    ref = _docker_image(registry, tmp_path, "listed")
    child = freight.copy(ref, f"oci:{tmp_path / 'child'}")[0]
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST, "digest": str(child.digest), "size": child.size,
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    http = httpx.put(f"http://{registry}/v2/format/listed/manifests/list", content=raw,
                     headers={"Content-Type": mt.DOCKER_MANIFEST_LIST})
    assert http.status_code == 201, http.text
    list_ref = f"{registry}/format/listed:list"
    (result,) = freight.copy(list_ref, f"oci:{tmp_path / 'out'}:v1", manifest_format="oci")
    assert _entry(tmp_path / "out")["mediaType"] == mt.OCI_INDEX
    index = _blob(tmp_path / "out", result.digest)
    (entry,) = index["manifests"]
    assert isinstance(entry, dict) and entry["mediaType"] == mt.OCI_MANIFEST
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert _blob(tmp_path / "out", entry["digest"])["mediaType"] == mt.OCI_MANIFEST
    kept = freight.copy(list_ref, f"oci:{tmp_path / 'kept'}:v1")[0]
    assert kept.media_type == mt.DOCKER_MANIFEST_LIST


def test_an_unknown_manifest_format_is_a_usage_error(registry: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown manifest format 'v2s1'"):
        freight.copy(f"{registry}/format/none:1", f"oci:{tmp_path / 'out'}",
                     manifest_format="v2s1")
    assert not (tmp_path / "out").exists()
