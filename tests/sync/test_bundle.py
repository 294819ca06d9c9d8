"""Bundles across an air gap: registry -> bundle -> registry with identical digests,
signatures that still verify, attached and hand-made referrers, incremental bundles
(since a previous bundle, and since an inventory), and `docker load`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from freight.artifacts import attach
from support import cosign
from support.freightcli import run_isolated as run
from support.kinds import both_kinds
from support.synthreg import (
    OCI_MANIFEST,
    digest_of,
    layer,
    push_blob,
    push_image,
    push_index,
    push_manifest,
    state,
)

pytestmark = pytest.mark.integration
EMPTY = "application/vnd.oci.empty.v1+json"


def _hand_made_referrer(client, repo: str, subject: str, size: int) -> str:
    """A VEX document attached to the image spec by hand (empty config, artifactType)."""
    doc = b'{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}'
    push_blob(client, repo, doc)
    push_blob(client, repo, b"{}")
    raw = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.openvex+json",
        "config": {"mediaType": EMPTY, "digest": digest_of(b"{}"), "size": 2, "data": "e30="},
        "layers": [{"mediaType": "application/vnd.openvex+json", "digest": digest_of(doc),
                    "size": len(doc)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"}},
    ).encode()
    reply = push_manifest(client, repo, digest_of(raw), raw, OCI_MANIFEST)
    if "OCI-Subject" not in reply.headers:
        cosign.add_to_referrers_tag(client, repo, subject, {
            "mediaType": OCI_MANIFEST, "digest": digest_of(raw), "size": len(raw),
            "artifactType": "application/vnd.openvex+json"})
    return digest_of(raw)


def _referrers(client, repo: str, digest: str) -> set[str]:
    reply = client.get(f"/v2/{repo}/referrers/{digest}")
    if reply.status_code != 200:
        reply = client.get(f"/v2/{repo}/manifests/{digest.replace(':', '-')}",
                           headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    return {m["digest"] for m in reply.json()["manifests"]} if reply.status_code == 200 \
        else set()


def _blob_members(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return [m.name.rsplit("/", 1)[-1] for m in tar if m.name.startswith("blobs/")]


def _equal(a, b, repos: list[str]) -> None:
    for repo in repos:
        tags = state(a, repo)
        assert tags and tags == state(b, repo), repo
        for digest in set(tags.values()):
            assert _referrers(a, repo, digest) == _referrers(b, repo, digest)


@both_kinds
def test_bundle_round_trip_and_incremental(make_registry, http, tmp_path: Path) -> None:
    a, b = make_registry(), make_registry()
    src, keys = http(a), cosign.Keys.make()
    v1 = push_index(src, "app", "v1", ["base"])
    v2 = push_image(src, "app", "v2", ["base", "two"])
    push_image(src, "other", "1", ["base", "other"])
    unsigned = v2.digest
    cosign.sign_tag(src, "app", v1.digest, keys)
    cosign.sign_referrer(src, "app", v1.digest, keys)
    sbom, att = tmp_path / "sbom.json", tmp_path / "att.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    att.write_text('{"_type": "https://in-toto.io/Statement/v1"}')
    made = [attach(f"{a}/app:v1", "application/spdx+json", [str(sbom)]).digest,
            attach(f"{a}/app:v1", "application/vnd.in-toto+json", [str(att)]).digest]
    size = int(src.head("/v2/app/manifests/v2", headers={"Accept": OCI_MANIFEST})
               .headers["Content-Length"])
    hand = _hand_made_referrer(src, "app", v2.digest, size)
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps({"sync": [{"source": f"{a}/app"}, {"source": f"{a}/other"}]}))

    first = tmp_path / "b1.tar"
    out = run("sync", str(config), "--to", str(first), "--json")
    assert out.returncode == 0, out.stderr
    members = _blob_members(first)
    assert len(members) == len(set(members))  # shared blobs once
    assert layer("base") and digest_of(layer("base")).split(":")[1] in members
    restored = run("sync", "--from", str(first), b, "--json")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    dst = http(b)
    _equal(src, dst, ["app", "other"])
    assert cosign.verified_signatures(dst, "app", v1.digest, keys.public) == 2
    assert cosign.verified_signatures(dst, "app", unsigned, keys.public) == 0
    for digest in [*map(str, made), hand]:
        assert dst.head(f"/v2/app/manifests/{digest}",
                        headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert hand in _referrers(dst, "app", v2.digest)

    v3 = push_image(src, "app", "v3", ["base", "three"])
    second = tmp_path / "b2.tar"
    out = run("sync", str(config), "--to", str(second), "--since", str(first))
    assert out.returncode == 0, out.stderr
    new = {v3.digest, *v3.blobs} - {digest_of(layer("base"))}
    assert {f"sha256:{m}" for m in _blob_members(second)} == new
    assert run("sync", "--from", str(second), b).returncode == 0
    _equal(src, dst, ["app", "other"])

    inventory = tmp_path / "far-side.json"
    assert run("inventory", b, "-o", str(inventory)).returncode == 0
    v4 = push_image(src, "app", "v4", ["base", "four"])
    third = tmp_path / "b3.tar"
    assert run("sync", str(config), "--to", str(third), "--since", str(inventory)).returncode == 0
    assert {f"sha256:{m}" for m in _blob_members(third)} == \
        {v4.digest, *v4.blobs} - {digest_of(layer("base"))}

    empty = make_registry()
    partial = run("sync", "--from", str(third), empty)
    assert partial.returncode == 4
    assert "restore the earlier bundles first" in partial.stdout
    assert "Traceback" not in partial.stderr


def test_bundle_is_docker_loadable(registry, http, docker, tmp_path: Path) -> None:
    src = http(registry.host)
    push_image(src, "loadable/app", "1", ["base", "load"])
    push_index(src, "loadable/multi", "1", ["base"])
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps({"sync": [{"source": f"{registry.host}/loadable/app"},
                                           {"source": f"{registry.host}/loadable/multi"}]}))
    bundle = tmp_path / "bundle.tar"
    assert run("sync", str(config), "--to", str(bundle)).returncode == 0
    docker.run("load", "-i", str(bundle))
    for name in ("loadable/app:1", "loadable/multi:1"):
        assert docker.image_id(name).startswith("sha256:")
    docker.remove_images("loadable/app:1", "loadable/multi:1")


def test_restore_takes_any_oci_layout_with_names(registry_factory, http,
                                                  tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    pushed = push_index(http(a), "team/app", "1", ["base"])
    layout = tmp_path / "layout"
    pulled = run("copy", f"{a}/team/app:1", f"oci:{layout}", "-q")
    assert pulled.returncode == 0, pulled.stderr
    done = run("sync", "--from", str(layout), b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(http(b), "team/app") == {"1": pushed.digest}


def test_restore_under_a_path_and_refusals_of_what_is_no_registry(
        registry_factory, http, tmp_path: Path) -> None:
    """`REGISTRY/PREFIX` restores every repository under PREFIX (the path was sent as part
    of the host: every image failed with a 404); a URL, a tag or a bad name is one usage
    error before anything moves, and `freight inventory` refuses a repository."""
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    pushed = push_index(http(a), "team/app", "1", ["base"])
    layout = tmp_path / "layout"
    assert run("copy", f"{a}/team/app:1", f"oci:{layout}", "-q").returncode == 0
    done = run("sync", "--from", str(layout), f"{b}/mirror/week-48")
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(http(b), "mirror/week-48/team/app") == {"1": pushed.digest}
    for wrong, said in [(f"http://{b}/mirror", "is a URL"), (f"{b}/Mirror", "lowercase"),
                        (f"{b}/mirror:1", "names an image")]:
        refused = run("sync", "--from", str(layout), wrong)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert said in refused.stderr and "Traceback" not in refused.stderr
    listed = run("inventory", f"{b}/mirror")
    assert listed.returncode == 2 and "is a repository, not a registry" in listed.stderr


@pytest.mark.parametrize("make_registry", ["embedded"], indirect=True)
def test_a_bundle_as_a_sync_source_with_filters(make_registry, registry_factory, http,
                                                tmp_path: Path) -> None:
    a, c = make_registry(), registry_factory(name="c").host
    src, keys = http(a), cosign.Keys.make()
    v1 = push_image(src, "app", "v1", ["base", "one"])
    push_image(src, "app", "v2", ["base", "two"])
    cosign.sign_referrer(src, "app", v1.digest, keys)
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    attached = attach(f"{a}/app:v1", "application/spdx+json", [str(sbom)]).digest
    config = tmp_path / "to-bundle.yaml"
    config.write_text(json.dumps({"sync": [{"source": f"{a}/app"}]}))
    bundle = tmp_path / "b.tar"
    assert run("sync", str(config), "--to", str(bundle)).returncode == 0
    config.write_text(json.dumps({"destination": {"registry": c, "prefix": "far/"},
                                  "sync": [{"layout": str(bundle), "tags": ["v1"]}]}))
    done = run("sync", str(config), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["images"][0]["referrers"] == 2
    dst = http(c)
    assert {t: d for t, d in state(dst, "far/app").items() if t[:7] != "sha256-"} == \
        {"v1": v1.digest}
    assert cosign.verified_signatures(dst, "far/app", v1.digest, keys.public) == 1
    assert str(attached) in _referrers(dst, "far/app", v1.digest)  # the referrers tag here
