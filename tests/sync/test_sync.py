"""`freight sync` registry to registry: filters of every kind, pages, two platforms,
referrers, re-sync with zero blob requests, a new tag sends only its blobs, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from freight.sync import run as sync_run
from freight.sync.config import parse
from support import cosign
from support.faults import Fault, Reply, RequestInfo
from support.kinds import both_kinds
from support.proxy import RegistryProxy
from support.synthreg import layer, push_image, push_index, state

pytestmark = pytest.mark.integration
VERSIONS = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0-rc.1", "v2.0.0", "latest", "dev"]


def _source(client, keys: cosign.Keys) -> dict[str, str]:
    """app: seven tags (v2.0.0 two platforms), v1.2.0 signed both ways."""
    digests = {}
    for i, tag in enumerate(VERSIONS):
        layers = ["base", f"app-{i}"]
        pushed = push_index(client, "app", tag, layers) if tag == "v2.0.0" else \
            push_image(client, "app", tag, layers)
        digests[tag] = pushed.digest
    cosign.sign_tag(client, "app", digests["v1.2.0"], keys)
    cosign.sign_referrer(client, "app", digests["v1.2.0"], keys)
    push_image(client, "other", "1", ["base", "other"])
    return digests


def _config(src: str, dst: str, digest: str) -> dict[str, object]:
    return {"destination": {"registry": dst, "prefix": "mirror/"}, "sync": [
        {"source": f"{src}/app", "semver": ">=1.1 <2", "newest": 1},  # v1.2.0
        {"source": f"{src}/app", "include": ["^v"], "exclude": ["^v1", "-rc"]},  # v2.0.0
        {"source": f"{src}/app", "tags": ["latest"]},
        {"source": f"{src}/app", "digests": [digest]},  # dev, by digest
        {"source": f"{src}/other", "destination": "renamed/other"},
    ]}


def _blob_requests(proxy: RegistryProxy) -> int:
    return sum(n for (method, kind), n in proxy.counts().items()
               if kind in ("blob", "upload", "mount"))


@both_kinds
def test_sync_filters_pages_resync_and_new_tag(make_registry, http, monkeypatch,
                                               request) -> None:
    embedded = request.node.callspec.params["make_registry"] == "embedded"
    a, b = make_registry(), make_registry()
    keys = cosign.Keys.make()
    digests = _source(http(a), keys)
    monkeypatch.setattr(sync_run, "TAG_PAGE", 2)  # the embedded registry pages at n=2
    pa, pb = RegistryProxy(a).start(), RegistryProxy(b).start()
    try:
        config = parse(_config(pa.host, pb.host, digests["dev"]))
        report = sync_run.sync(config, jobs=3)
        assert report.failed == 0, report.to_json()
        app_pages = [e for e in pa.exchanges if e.kind == "tags" and "/app/" in e.path]
        # app's 8 tags (7 + the .sig) are listed once for the two entries that filter
        # them: 4 pages where the registry pages; distribution 2.8 ignores n, sends all
        assert len(app_pages) == (4 if embedded else 1)
        dst = http(b)
        got = state(dst, "mirror/app")
        images = {t: d for t, d in got.items() if not t.startswith("sha256-")}
        assert images == {t: digests[t] for t in ("v1.2.0", "v2.0.0", "latest")}
        assert dst.head(f"/v2/mirror/app/manifests/{digests['dev']}",
                        headers={"Accept": cosign.ACCEPT}).status_code == 200
        assert list(state(dst, "renamed/other")) == ["1"]
        arm = dst.get(f"/v2/mirror/app/manifests/{digests['v2.0.0']}",
                      headers={"Accept": cosign.ACCEPT}).json()["manifests"][1]
        assert dst.head(f"/v2/mirror/app/manifests/{arm['digest']}",
                        headers={"Accept": cosign.ACCEPT}).status_code == 200
        assert cosign.verified_signatures(dst, "mirror/app", digests["v1.2.0"], keys.public) == 2
        assert cosign.verified_signatures(dst, "mirror/app", digests["latest"], keys.public) == 0

        pa.reset()
        pb.reset()
        again = sync_run.sync(config, jobs=3)
        assert again.count("unchanged") == len(again.outcomes) == 5
        assert _blob_requests(pa) == _blob_requests(pb) == 0
        assert not [e for e in pb.exchanges if e.method in ("PUT", "POST", "PATCH")]
        assert not [e for e in pb.exchanges if e.kind == "manifest" and e.method == "GET"]
        # per image one HEAD each side; signature tags are looked for only where the tag
        # list has them (v1.2.0's .sig, and its referrers tag on distribution)
        assert pa.counts()[("HEAD", "manifest")] <= 5 + 2
        assert pb.counts()[("HEAD", "manifest")] <= 5 + 3

        pushed = push_image(http(a), "app", "v1.4.0", ["base", "app-new"])
        pb.reset()
        third = sync_run.sync(config, jobs=3)
        assert third.count("copied") == 1, third.to_json()
        uploads = [e for e in pb.exchanges if e.kind == "upload" and e.method == "PUT"]
        assert len(uploads) == 2  # its config and its one new layer; the base is there
        assert state(dst, "mirror/app")["v1.4.0"] == pushed.digest
    finally:
        pa.stop()
        pb.stop()


def test_a_failing_image_is_reported_and_the_others_finish(registry_factory, http,
                                                           tmp_path: Path) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    push_image(http(a), "good", "1", ["base"])
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps({"destination": b, "retries": 1, "sync": [
        {"source": f"{a}/good", "tags": ["1", "missing"]},
        {"source": "127.0.0.1:9/unreachable", "tags": ["1"]},
    ]}))
    done = subprocess.run([sys.executable, "-m", "freight", "sync", str(config), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    report = json.loads(done.stdout)
    by_source = {i["source"]: i for i in report["images"]}
    assert by_source[f"{a}/good:1"]["status"] == "copied"
    assert by_source[f"{a}/good:missing"]["status"] == "failed"
    assert "does not exist" in by_source[f"{a}/good:missing"]["error"]
    unreachable = by_source["127.0.0.1:9/unreachable:1"]
    assert unreachable["status"] == "failed" and unreachable["attempts"] == 2
    assert "2 of 3 images failed" in done.stderr
    assert state(http(b), "good") == {"1": report["images"][0]["digest"]}

    config.write_text(json.dumps({"destination": b, "sync": [{"source": f"{a}/good"}]}))
    table = subprocess.run([sys.executable, "-m", "freight", "sync", str(config)],
                           capture_output=True, text=True, timeout=120)
    assert table.stdout.splitlines()[0].split() == ["STATUS", "SOURCE", "DESTINATION",
                                                    "DIGEST", "BLOBS", "REFERRERS"]
    assert table.returncode == 0 and "1 unchanged" in table.stdout


def test_dry_run_copies_nothing(registry_factory, http) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    push_image(http(a), "app", "1", ["base"])
    report = sync_run.sync(parse({"destination": b, "sync": [{"source": f"{a}/app"}]}),
                           dry_run=True)
    assert [o.status for o in report.outcomes] == ["planned"]
    assert state(http(b), "app") == {}


def test_sync_within_one_registry_mounts_blobs(registry_factory, http) -> None:
    host = registry_factory(name="one").host
    for tag in ("1", "2", "3"):
        push_image(http(host), "app", tag, ["base", f"layer-{tag}"])
    proxy = RegistryProxy(host).start()
    try:
        report = sync_run.sync(parse({"destination": {"registry": proxy.host,
                                                      "prefix": "mirror/"},
                                      "sync": [{"source": f"{proxy.host}/app"}]}), jobs=3)
        assert report.count("copied") == 3, report.to_json()
        mounts = [e for e in proxy.exchanges if e.kind == "mount"]
        assert len(mounts) >= 7  # 3 configs, 3 layers, the base at least once
        # every blob GET (a download for an upload) follows a mount the registry refused
        refused = [e for e in mounts if e.status != 201]
        downloads = [e for e in proxy.exchanges if e.kind == "blob" and e.method == "GET"]
        assert len(downloads) == len(refused) < len(mounts)
    finally:
        proxy.stop()
    assert state(http(host), "mirror/app") == state(http(host), "app")


class _WrongBytes(Fault):
    """Every blob GET is answered with other bytes of the same length."""

    def __init__(self, size: int) -> None:
        self.size = size

    def before(self, request: RequestInfo) -> Reply | None:
        if request.kind == "blob" and request.method == "GET":
            return Reply(200, b"x" * self.size, {"Content-Length": str(self.size)})
        return None


def test_wrong_bytes_from_the_source_registry_commit_nothing(registry_factory, http) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    push_image(http(a), "app", "1", ["only"])
    proxy = RegistryProxy(a).start()
    proxy.faults.append(_WrongBytes(len(layer("only"))))
    try:
        report = sync_run.sync(parse({"destination": b, "retries": 0,
                                      "sync": [{"source": f"{proxy.host}/app"}]}))
    finally:
        proxy.stop()
    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    assert "do not match their digest" in (outcome.error or "")
    assert state(http(b), "app") == {}
