"""Referrers discovery, `freight attach`, `freight referrers`, and copies that carry them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from freight.artifacts import attach
from freight.referrers import find_referrers, is_referrer_tag
from freight.sync.copying import copy_with_referrers
from support import cosign
from support.faults import Fault, Reply, RequestInfo
from support.freightcli import run_isolated as run
from support.kinds import both_kinds
from support.proxy import RegistryProxy
from support.synthreg import push_image, push_index

pytestmark = pytest.mark.integration


def test_referrer_tags_are_recognised() -> None:
    hexa = "a" * 64
    assert is_referrer_tag(f"sha256-{hexa}")
    assert is_referrer_tag(f"sha256-{hexa}.sig")
    assert not is_referrer_tag(f"sha256-{hexa}.zip")
    assert not is_referrer_tag("sha256-abc")
    assert not is_referrer_tag("v1.2")


@both_kinds
def test_attach_and_list_recursively(make_registry, http, tmp_path: Path) -> None:
    host = make_registry()
    client = http(host)
    image = push_image(client, "app", "v1", ["base", "app"])
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    done = attach(f"{host}/app:v1", "application/spdx+json", [str(sbom)])
    assert str(done.subject) == image.digest
    keys = cosign.Keys.make()
    cosign.sign_tag(client, "app", image.digest, keys)
    cosign.sign_referrer(client, "app", str(done.digest), keys)  # a signature of the SBOM

    listing = find_referrers(f"{host}/app:v1")
    kinds = sorted(r.artifact_type for r in listing.referrers)
    assert kinds == ["application/spdx+json", "cosign.sig"]
    sbom_entry = next(r for r in listing.referrers if r.artifact_type.startswith("application"))
    assert sbom_entry.children is not None
    assert [r.artifact_type for r in sbom_entry.children.referrers] == [cosign.SIG_ARTIFACT]

    only = find_referrers(f"{host}/app:v1", artifact_type="application/spdx+json")
    assert [r.artifact_type for r in only.referrers] == ["application/spdx+json"]

    shown = run("referrers", f"{host}/app:v1", "--json")
    assert shown.returncode == 0, shown.stderr
    tree = json.loads(shown.stdout)
    assert tree["subject"] == image.digest and len(tree["referrers"]) == 2
    text = run("referrers", f"{host}/app:v1")
    assert "application/spdx+json" in text.stdout and "└── " in text.stdout


@both_kinds
def test_attach_cli_and_artifact_round_trip(make_registry, tmp_path: Path, http) -> None:
    host = make_registry()
    push_image(http(host), "app", "v1", ["base"])
    report = tmp_path / "att.json"
    report.write_text('{"predicateType": "https://slsa.dev/provenance/v1"}')
    attached = run("attach", f"{host}/app:v1", "--artifact-type",
                   "application/vnd.in-toto+json", f"{report}:application/vnd.in-toto+json",
                   "--json")
    assert attached.returncode == 0, attached.stderr
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    pushed = run("artifact", "push", f"{host}/plugins:v1", str(module), "--json")
    assert pushed.returncode == 0, pushed.stderr
    out = tmp_path / "out"
    pulled = run("artifact", "pull", f"{host}/plugins:v1", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert (out / "hello.wasm").read_bytes() == module.read_bytes()
    manifest = http(host).get("/v2/plugins/manifests/v1",
                              headers={"Accept": cosign.OCI_MANIFEST}).json()
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert manifest["artifactType"] == "application/vnd.unknown.artifact.v1"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.wasm.content.layer.v1+wasm"


def test_attach_to_a_missing_image_is_one_clear_line(registry, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    done = run("attach", f"{registry.host}/nothing:here", "--artifact-type", "a/b", str(f))
    assert done.returncode == 7
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@both_kinds
def test_copy_carries_signatures_that_still_verify(make_registry, http) -> None:
    a, b = make_registry(), make_registry()
    src = http(a)
    signed = push_index(src, "app", "v1", ["base"])
    unsigned = push_image(src, "app", "v2", ["base", "other"])
    keys = cosign.Keys.make()
    cosign.sign_tag(src, "app", signed.digest, keys)
    cosign.sign_referrer(src, "app", signed.digest, keys)

    copy_with_referrers(f"{a}/app:v1", f"{b}/mirror/app:v1")
    copy_with_referrers(f"{a}/app:v2", f"{b}/mirror/app:v2")
    dst = http(b)
    assert cosign.verified_signatures(dst, "mirror/app", signed.digest, keys.public) == 2
    assert cosign.verified_signatures(dst, "mirror/app", unsigned.digest, keys.public) == 0
    other = cosign.Keys.make()
    assert cosign.verified_signatures(dst, "mirror/app", signed.digest, other.public) == 0


def test_freight_copy_carries_referrers_unless_told_not_to(registry_factory, http,
                                                           tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    signed = push_image(http(a), "app", "v1", ["base"])
    keys = cosign.Keys.make()
    cosign.sign_tag(http(a), "app", signed.digest, keys)
    done = run("copy", f"{a}/app:v1", f"{b}/with/app:v1", "-q")
    assert done.returncode == 0, done.stderr
    assert cosign.verified_signatures(http(b), "with/app", signed.digest, keys.public) == 1
    bare = run("copy", f"{a}/app:v1", f"{b}/without/app:v1", "-q", "--no-referrers")
    assert bare.returncode == 0, bare.stderr
    assert cosign.verified_signatures(http(b), "without/app", signed.digest, keys.public) == 0
    layout = run("copy", f"{a}/app:v1", f"oci:{tmp_path / 'layout'}", "-q")
    assert layout.returncode == 0, layout.stderr
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert len(index["manifests"]) == 2  # the image and its `.sig` tag


def test_helm_chart_and_refused_file_names(registry, http, tmp_path: Path) -> None:
    chart, meta = tmp_path / "demo-0.1.0.tgz", tmp_path / "Chart.json"
    chart.write_bytes(b"\x1f\x8b not really a chart")
    meta.write_text('{"name": "demo", "version": "0.1.0"}')
    helm = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    done = run("artifact", "push", f"{registry.host}/charts/demo:0.1.0", f"{chart}:{helm}",
               "--config", f"{meta}:application/vnd.cncf.helm.config.v1+json")
    assert done.returncode == 0, done.stderr
    client = http(registry.host)
    manifest = client.get("/v2/charts/demo/manifests/0.1.0",
                          headers={"Accept": cosign.OCI_MANIFEST}).json()
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert "artifactType" not in manifest and manifest["layers"][0]["mediaType"] == helm

    evil = tmp_path / "evil"
    evil.write_text("x")
    pushed = run("artifact", "push", f"{registry.host}/charts/evil:1", str(evil), "--json")
    raw = client.get("/v2/charts/evil/manifests/1", headers={"Accept": cosign.OCI_MANIFEST})
    doc = json.loads(raw.content)
    doc["layers"][0]["annotations"]["org.opencontainers.image.title"] = "../escape"
    client.put("/v2/charts/evil/manifests/2", content=json.dumps(doc).encode(),
               headers={"Content-Type": cosign.OCI_MANIFEST})
    assert pushed.returncode == 0
    refused = run("artifact", "pull", f"{registry.host}/charts/evil:2", str(tmp_path / "o"))
    assert refused.returncode == 3 and "not a plain file name" in refused.stderr
    assert not (tmp_path / "escape").exists()


class _Overlap(Fault):
    """Holds each referrer look-up a moment and records how many were in flight at once."""

    def __init__(self) -> None:
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def before(self, request: RequestInfo) -> Reply | None:
        if "/manifests/sha256-" not in request.path and "/referrers/" not in request.path:
            return None
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.2)  # the overlap, not a timing check: requests sent at once meet here
        with self.lock:
            self.now -= 1
        return None


def test_the_look_ups_of_one_image_go_at_once(registry, http) -> None:
    """A registry far away should cost one round trip per image, not one per possible
    referrer tag: the list and cosign's three tags are asked for together."""
    signed = push_image(http(registry.host), "overlap/app", "v1", ["base"])
    cosign.sign_tag(http(registry.host), "overlap/app", signed.digest, cosign.Keys.make())
    proxy = RegistryProxy(registry.host).start()
    overlap = _Overlap()
    proxy.faults.append(overlap)
    try:
        found = find_referrers(f"{proxy.host}/overlap/app@{signed.digest}")
    finally:
        proxy.stop()
    assert [r.via for r in found.referrers] == ["cosign"]
    assert overlap.most >= 3, overlap.most


class _ForbiddenHeads(Fault):
    """Artifactory's way (RTFACT-13797): a HEAD of a manifest is answered 403, no body."""

    def before(self, request: RequestInfo) -> Reply | None:
        if request.method == "HEAD" and request.kind == "manifest":
            return Reply(403)
        return None


def test_manifest_heads_answered_403_are_asked_again(registry_factory, http,
                                                     tmp_path: Path) -> None:
    """A registry that answers every manifest HEAD with 403 is asked with a GET instead:
    signatures are found there and copied to it, and a sync to it works."""
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    signed = push_image(http(a), "app", "v1", ["base"])
    keys = cosign.Keys.make()
    cosign.sign_tag(http(a), "app", signed.digest, keys)
    forbid_a, forbid_b = RegistryProxy(a).start(), RegistryProxy(b).start()
    for proxy in (forbid_a, forbid_b):
        proxy.faults.append(_ForbiddenHeads())
    try:
        done = run("copy", f"{forbid_a.host}/app:v1", f"{forbid_b.host}/copied/app:v1", "-q")
        assert done.returncode == 0, done.stderr
        config = tmp_path / "sync.json"
        config.write_text(json.dumps({"destination": forbid_b.host, "sync": [
            {"source": f"{forbid_a.host}/app", "tags": ["v1"]}]}))
        synced = run("sync", str(config))
        assert synced.returncode == 0, synced.stderr
    finally:
        forbid_a.stop()
        forbid_b.stop()
    for repo in ("copied/app", "app"):
        assert cosign.verified_signatures(http(b), repo, signed.digest, keys.public) == 1, repo
