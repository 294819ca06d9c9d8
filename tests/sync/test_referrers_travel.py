"""Referrers carried by pull, push and copy through OCI layouts and OCI archives: a
cosign-format signature, an OCI 1.1 signature, an attached SBOM and a signature of that
SBOM survive registry -> archive -> registry and still verify; a docker archive says it
cannot hold them; `--no-referrers` leaves them behind."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from freight.artifacts import attach
from support import cosign
from support.freightcli import run_isolated as run
from support.kinds import both_kinds
from support.synthreg import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Pushed,
    digest_of,
    layer,
    push_blob,
    push_image,
    push_index,
    push_manifest,
    tags,
)

pytestmark = pytest.mark.integration
SBOM = "application/spdx+json"


def _gzipped(client, repo: str, tag: str, names: list[str]) -> Pushed:
    """An image with gzip layers, as registries hold them (a push keeps their digest)."""
    plain = [layer(n) for n in names]
    packed = [gzip.compress(b, mtime=0) for b in plain]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest_of(b) for b in plain]}}).encode()
    for blob in (config, *packed):
        push_blob(client, repo, blob)
    raw = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(b), "size": len(b)} for b in packed]}).encode()
    push_manifest(client, repo, tag, raw, OCI_MANIFEST)
    return Pushed(digest_of(raw), OCI_MANIFEST, len(raw), ())


def _signed(client, host: str, tmp_path: Path, keys: cosign.Keys):
    """app:v1 with a `.sig` signature, an OCI 1.1 signature, an SBOM and the SBOM's
    signature; app:v2 unsigned. Returns (v1, v2, sbom digest)."""
    image = _gzipped(client, "app", "v1", ["base", "app"])
    unsigned = _gzipped(client, "app", "v2", ["base", "other"])
    cosign.sign_tag(client, "app", image.digest, keys)
    cosign.sign_referrer(client, "app", image.digest, keys)
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3", "name": "app"}')
    attached = attach(f"{host}/app:v1", SBOM, [str(sbom)])
    cosign.sign_referrer(client, "app", str(attached.digest), keys)
    return image, unsigned, str(attached.digest)


def _index_entries(archive: Path) -> list[dict[str, object]]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        return json.loads(member.read())["manifests"]


@both_kinds
def test_pull_to_oci_archive_then_push_keeps_signatures(make_registry, http,
                                                        tmp_path: Path) -> None:
    a, b = make_registry(), make_registry()
    keys = cosign.Keys.make()
    image, unsigned, sbom = _signed(http(a), a, tmp_path, keys)
    archive = tmp_path / "app.tar"
    pulled = run("pull", f"{a}/app:v1", f"{a}/app:v2", str(archive), "--format",
                 "oci-archive", "-q")
    assert pulled.returncode == 0, pulled.stderr
    entries = _index_entries(archive)
    named = [e for e in entries if "org.opencontainers.image.ref.name" in e["annotations"]]
    assert {e["annotations"]["org.opencontainers.image.ref.name"] for e in named} >= {
        "v1", "v2", image.digest.replace(":", "-") + ".sig"}
    assert any(e["digest"] == sbom for e in entries), entries  # untagged

    pushed = run("push", str(archive), f"{b}/mirror/app", "-q")
    assert pushed.returncode == 0, pushed.stderr
    dst = http(b)
    assert cosign.verified_signatures(dst, "mirror/app", image.digest, keys.public) == 2
    assert cosign.verified_signatures(dst, "mirror/app", unsigned.digest, keys.public) == 0
    assert cosign.verified_signatures(dst, "mirror/app", sbom, keys.public) == 1
    assert cosign.verified_signatures(dst, "mirror/app", image.digest,
                                      cosign.Keys.make().public) == 0
    # the referrers went as referrers, not as images of their own
    assert not [t for t in tags(dst, "mirror/app") if t not in ("v1", "v2")
                and not t.startswith("sha256-")]


@both_kinds
def test_copy_to_a_layout_and_back_keeps_digests(make_registry, http, tmp_path: Path) -> None:
    a, b = make_registry(), make_registry()
    keys = cosign.Keys.make()
    image, _, sbom = _signed(http(a), a, tmp_path, keys)
    layout = tmp_path / "layout"
    done = run("copy", f"{a}/app:v1", f"oci:{layout}", "-q")
    assert done.returncode == 0, done.stderr
    back = run("copy", f"oci:{layout}", f"{b}/app:v1", "-q")
    assert back.returncode == 0, back.stderr
    dst = http(b)
    assert cosign.verified_signatures(dst, "app", image.digest, keys.public) == 2
    got = dst.get(f"/v2/app/manifests/{sbom}", headers={"Accept": cosign.ACCEPT})
    assert got.status_code == 200 and json.loads(got.content)["artifactType"] == SBOM


def test_docker_archive_notes_it_cannot_hold_referrers(registry, http,
                                                       tmp_path: Path) -> None:
    client = http(registry.host)
    image = push_image(client, "app", "v1", ["base"])
    cosign.sign_tag(client, "app", image.digest, cosign.Keys.make())
    out = tmp_path / "app.tar"
    pulled = run("pull", f"{registry.host}/app:v1", str(out), "-q")
    assert pulled.returncode == 0, pulled.stderr
    assert "docker archive cannot hold them" in pulled.stderr
    assert "Traceback" not in pulled.stderr
    quiet = run("pull", f"{registry.host}/app:v1", str(tmp_path / "b.tar"), "-q",
                "--no-referrers")
    assert quiet.returncode == 0 and "referrer" not in quiet.stderr


def test_no_referrers_leaves_them_behind(registry_factory, http, tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    keys = cosign.Keys.make()
    image = _gzipped(http(a), "app", "v1", ["base"])
    cosign.sign_tag(http(a), "app", image.digest, keys)
    bare = tmp_path / "bare"
    done = run("pull", f"{a}/app:v1", str(bare), "--format", "oci", "-q", "--no-referrers")
    assert done.returncode == 0, done.stderr
    assert len(json.loads((bare / "index.json").read_text())["manifests"]) == 1
    full = tmp_path / "full"
    assert run("pull", f"{a}/app:v1", str(full), "--format", "oci", "-q").returncode == 0
    pushed = run("push", str(full), f"{b}/app:v1", "-q", "--no-referrers")
    assert pushed.returncode == 0, pushed.stderr
    assert cosign.verified_signatures(http(b), "app", image.digest, keys.public) == 0
    assert run("push", str(full), f"{b}/app:v1", "-q").returncode == 0
    assert cosign.verified_signatures(http(b), "app", image.digest, keys.public) == 1


def test_a_push_that_changes_the_digest_says_the_referrers_stay(registry_factory, http,
                                                                tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    image = push_image(http(a), "app", "v1", ["base"])
    cosign.sign_tag(http(a), "app", image.digest, cosign.Keys.make())
    layout = tmp_path / "layout"
    assert run("pull", f"{a}/app:v1", str(layout), "--format", "oci", "-q").returncode == 0
    pushed = run("push", str(layout), f"{b}/app:v1", "-q", "--compression", "zstd")
    assert pushed.returncode == 0, pushed.stderr
    assert "left behind" in pushed.stderr and "--compression keep" in pushed.stderr
    assert [t for t in tags(http(b), "app") if t.startswith("sha256-")] == []


def test_push_of_a_sync_bundle_takes_its_referrers(registry_factory, http,
                                                   tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    keys = cosign.Keys.make()
    image, _, sbom = _signed(http(a), a, tmp_path, keys)
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps({"sync": [{"source": f"{a}/app"}]}))
    bundle = tmp_path / "bundle.tar"
    assert run("sync", str(config), "--to", str(bundle)).returncode == 0
    pushed = run("push", str(bundle), b, "-q")  # the bundle's referrer entries are no images
    assert pushed.returncode == 0, pushed.stderr
    assert cosign.verified_signatures(http(b), "app", image.digest, keys.public) == 2
    assert cosign.verified_signatures(http(b), "app", sbom, keys.public) == 1


def _platforms(client, repo: str, tag: str) -> list[str]:
    got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": cosign.ACCEPT})
    return [m["digest"] for m in got.json()["manifests"]]


@both_kinds
def test_every_platform_keeps_its_own_signatures(make_registry, http,
                                                 tmp_path: Path) -> None:
    """`cosign sign --recursive` signs a multi-platform image's index and each platform's
    manifest: copy, pull into an OCI archive and push back, and sync carry every one."""
    a, b, c, d = make_registry(), make_registry(), make_registry(), make_registry()
    src = http(a)
    index = push_index(src, "app", "v1", ["base"])
    amd64, arm64 = _platforms(src, "app", "v1")
    keys = cosign.Keys.make()
    cosign.sign_tag(src, "app", index.digest, keys)
    cosign.sign_tag(src, "app", amd64, keys)
    cosign.sign_referrer(src, "app", arm64, keys)  # OCI 1.1, or the tag schema
    signed = (index.digest, amd64, arm64)

    copied = run("copy", f"{a}/app:v1", f"{b}/app:v1", "-q")
    assert copied.returncode == 0, copied.stderr
    archive = tmp_path / "app.tar"
    pulled = run("pull", f"{a}/app:v1", str(archive), "--format", "oci-archive",
                 "--all-platforms", "-q")
    assert pulled.returncode == 0, pulled.stderr
    # the layers are plain tars, which a push would gzip (new digests, no referrers)
    pushed = run("push", str(archive), f"{c}/app:v1", "--compression", "keep", "-q")
    assert pushed.returncode == 0, pushed.stderr
    config = tmp_path / "sync.json"
    config.write_text(json.dumps({"destination": d,
                                  "sync": [{"source": f"{a}/app", "tags": ["v1"]}]}))
    synced = run("sync", str(config))
    assert synced.returncode == 0, synced.stderr
    found = {(where, n): cosign.verified_signatures(http(host), "app", digest, keys.public)
             for where, host in (("copy", b), ("pull+push", c), ("sync", d))
             for n, digest in enumerate(signed)}
    assert set(found.values()) == {1}, sorted(found.items())


def test_a_rebuilt_index_keeps_the_signatures_of_the_platforms_it_kept(
        registry_factory, http, tmp_path: Path) -> None:
    """amd64 has gzip layers (kept as they are), arm64 plain tars (gzipped by a default
    push): the index is rebuilt, arm64 gets a new digest, amd64 keeps its own. amd64's
    signature still names a manifest the destination holds, so it travels; the index's and
    arm64's are left behind, and a note counts them."""
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    src = http(a)
    amd64 = _gzipped(src, "app", "amd64", ["base", "amd64"])
    arm64 = push_image(src, "app", None, ["base", "arm64"], arch="arm64")
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c.digest, "size": c.size,
         "platform": {"os": "linux", "architecture": arch}}
        for c, arch in ((amd64, "amd64"), (arm64, "arm64"))]}).encode()
    push_manifest(src, "app", "v1", raw, OCI_INDEX)
    keys = cosign.Keys.make()
    for digest in (digest_of(raw), amd64.digest, arm64.digest):
        cosign.sign_tag(src, "app", digest, keys)
    archive = tmp_path / "app.tar"
    pulled = run("pull", f"{a}/app:v1", str(archive), "--format", "oci-archive",
                 "--all-platforms", "-q")
    assert pulled.returncode == 0, pulled.stderr
    pushed = run("push", str(archive), f"{b}/app:v1", "-q")
    assert pushed.returncode == 0, pushed.stderr
    assert "2 of its 3 referrer(s)" in pushed.stderr and "left behind" in pushed.stderr
    dst = http(b)
    assert cosign.verified_signatures(dst, "app", amd64.digest, keys.public) == 1
    assert cosign.verified_signatures(dst, "app", arm64.digest, keys.public) == 0
    assert cosign.verified_signatures(dst, "app", digest_of(raw), keys.public) == 0
