"""tags, catalog, manifest, config, digest, tag and delete on real registries.

Every test runs against the embedded registry and the CNCF distribution registry (2.8,
integration); what a registry does differently (distribution 2.8 ignores `n` on tags
lists and has no tag deletion) is asserted as a difference, not skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from inspect_support import (
    OCI_INDEX,
    OCI_MANIFEST,
    PushedIndex,
    Target,
    get_manifest,
    push_index,
    sha,
    tag_raw,
)

import freight
from freight.cli import main
from freight.errors import EXIT_NOT_FOUND, EXIT_REGISTRY, EXIT_USAGE
from freight.manifest import Index, Manifest, host_platform
from freight.results import ImageResult

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return result


def push_app(archive: Path, target: Target, repo: str, tag: str = "1") -> ImageResult:
    [result] = freight.push(str(archive), f"{target.host}/{repo}:{tag}")
    return result


@pytest.fixture
def image(archive: Path, target: Target, repo: str) -> ImageResult:
    return push_app(archive, target, repo)


@pytest.fixture
def index(target: Target, repo: str) -> PushedIndex:
    return push_index(target, repo)


# -- tags and catalog ----------------------------------------------------------------------

def test_tags_follows_link_pages(target: Target, repo: str, image: ImageResult) -> None:
    names = [f"t{n:02d}" for n in range(25)]
    tag_raw(target, repo, "1", names)
    expected = sorted([*names, "1"])
    if target.paginates_tags:  # the registry really pages: 10 and a Link to the rest
        page = httpx.get(f"{target.url}/v2/{repo}/tags/list?n=10")
        assert len(page.json()["tags"]) == 10 and 'rel="next"' in page.headers["Link"]
    result = freight.tags(f"{target.host}/{repo}", page_size=10)
    assert sorted(result.tags) == expected and result.complete
    if target.paginates_tags:
        assert list(result.tags) == expected  # page after page, in the registry's order
    lines = ok("tags", f"{target.host}/{repo}", "--page-size", "10").output.split()
    assert sorted(lines) == expected


def test_tags_limit_stops_early(target: Target, repo: str, image: ImageResult) -> None:
    tag_raw(target, repo, "1", [f"t{n:02d}" for n in range(25)])
    every = freight.tags(f"{target.host}/{repo}").tags
    result = freight.tags(f"{target.host}/{repo}", limit=15, page_size=10)
    assert result.tags == every[:15] and not result.complete
    shown = cli("tags", f"{target.host}/{repo}", "--limit", "15", "--page-size", "10")
    assert shown.exit_code == 0 and shown.stdout.split() == list(every[:15])
    assert "--limit 15" in shown.stderr
    data = json.loads(ok("tags", f"{target.host}/{repo}", "--json", "--limit", "3").stdout)
    assert data == {"repository": f"{target.host}/{repo}", "tags": list(every[:3]),
                    "complete": False}


def test_catalog_follows_link_pages(archive: Path, target: Target, repo: str) -> None:
    mine = [f"{repo}/r{n:02d}" for n in range(12)]
    for name in mine:
        push_app(archive, target, name)
    page = httpx.get(f"{target.url}/v2/_catalog?n=5")
    assert len(page.json()["repositories"]) == 5 and 'rel="next"' in page.headers["Link"]
    everything = httpx.get(f"{target.url}/v2/_catalog?n=1000").json()["repositories"]
    result = freight.catalog(target.host, page_size=5)
    assert list(result.repositories) == everything and result.complete
    assert set(mine) <= set(result.repositories)
    data = json.loads(ok("catalog", target.host, "--page-size", "5", "--json").stdout)
    assert data["repositories"] == everything and data["registry"] == target.host
    assert ok("catalog", target.host, "--limit", "7").stdout.split() == everything[:7]


# -- manifest, config, digest of an image --------------------------------------------------

def test_manifest_of_an_image(target: Target, repo: str, image: ImageResult) -> None:
    ref = f"{target.host}/{repo}:1"
    stored = get_manifest(target, repo, "1")
    info = freight.get_manifest(ref)
    assert info.raw == stored.content and info.digest == image.digest
    assert info.media_type == DOCKER_MANIFEST and isinstance(info.content, Manifest)
    document = json.loads(stored.content)
    assert [str(d.digest) for d in info.content.layers] == [
        layer["digest"] for layer in document["layers"]]
    raw = CliRunner().invoke(main, ["manifest", ref, "--raw"])
    assert raw.exit_code == 0 and raw.stdout_bytes == stored.content  # exact bytes
    text = ok("manifest", ref).stdout
    assert str(image.digest) in text and DOCKER_MANIFEST in text
    for layer in document["layers"]:
        assert layer["digest"] in text
    data = json.loads(ok("manifest", ref, "--json").stdout)
    assert data["digest"] == str(image.digest) and data["size"] == len(stored.content)
    assert [d["size"] for d in data["layers"]] == [d["size"] for d in document["layers"]]
    assert data["config"]["digest"] == document["config"]["digest"]


def test_config_of_an_image(target: Target, repo: str, image: ImageResult) -> None:
    ref = f"{target.host}/{repo}:1"
    document = json.loads(get_manifest(target, repo, "1").content)
    blob = httpx.get(f"{target.url}/v2/{repo}/blobs/{document['config']['digest']}",
                     follow_redirects=True).content
    info = freight.get_config(ref)
    assert info.raw == blob and str(info.digest) == document["config"]["digest"]
    assert info.manifest == image.digest
    assert CliRunner().invoke(main, ["config", ref, "--raw"]).stdout_bytes == blob
    assert json.loads(ok("config", ref).stdout) == json.loads(blob)
    data = json.loads(ok("config", ref, "--json").stdout)
    assert data["config"] == json.loads(blob) and data["manifest"] == str(image.digest)


def test_digest_of_an_image(target: Target, repo: str, image: ImageResult) -> None:
    assert freight.get_digest(f"{target.host}/{repo}:1").digest == image.digest
    assert ok("digest", f"{target.host}/{repo}:1").stdout.strip() == str(image.digest)
    by_digest = f"{target.host}/{repo}@{image.digest}"
    assert ok("digest", by_digest).stdout.strip() == str(image.digest)


# -- a multi-platform index ----------------------------------------------------------------

def test_manifest_of_an_index(target: Target, index: PushedIndex) -> None:
    info = freight.get_manifest(index.reference)
    assert info.media_type == OCI_INDEX and str(info.digest) == index.index
    assert isinstance(info.content, Index) and info.raw == index.raw
    assert [str(d.platform) for d in info.content.manifests] == ["linux/amd64", "linux/arm64"]
    text = ok("manifest", index.reference).stdout
    assert "linux/amd64" in text and "linux/arm64" in text and index.manifests["arm64"] in text
    child = json.loads(ok("manifest", index.reference, "--platform", "linux/arm64",
                          "--json").stdout)
    assert child["digest"] == index.manifests["arm64"] and child["index"] == index.index
    assert child["media_type"] == OCI_MANIFEST and child["platform"] == "linux/arm64"
    assert len(child["layers"]) == 1


def test_config_of_an_index_per_platform(target: Target, index: PushedIndex) -> None:
    arm = freight.get_config(index.reference, platform="linux/arm64")
    assert arm.raw == index.configs["arm64"] and str(arm.manifest) == index.manifests["arm64"]
    assert json.loads(ok("config", index.reference, "--platform", "linux/amd64").stdout) == \
        json.loads(index.configs["amd64"])
    host_arch = host_platform().architecture
    if host_arch in index.configs:  # like docker: the host's platform by default
        assert freight.get_config(index.reference).raw == index.configs[host_arch]
    missing = cli("config", index.reference, "--platform", "linux/s390x")
    assert missing.exit_code == EXIT_USAGE  # a --platform that matches nothing is a usage error
    assert "linux/amd64, linux/arm64" in missing.stderr


def test_digest_of_an_index_and_its_children(target: Target, index: PushedIndex) -> None:
    assert str(freight.get_digest(index.reference).digest) == index.index
    for arch, digest in index.manifests.items():
        shown = ok("digest", index.reference, "--platform", f"linux/{arch}").stdout.strip()
        assert shown == digest
    data = json.loads(ok("digest", index.reference, "--json").stdout)
    assert data["digest"] == index.index and data["media_type"] == OCI_INDEX


# -- tag -----------------------------------------------------------------------------------

def test_tag_puts_the_same_bytes_under_new_tags(target: Target, repo: str,
                                                image: ImageResult) -> None:
    before = len(target.requests()) if target.log else 0
    shown = ok("tag", f"{target.host}/{repo}:1", "stable", "v1.0").stdout.split()
    assert shown == [f"{target.host}/{repo}:{t}@{image.digest}" for t in ("stable", "v1.0")]
    original = get_manifest(target, repo, "1")
    for new in ("stable", "v1.0"):
        copy = get_manifest(target, repo, new)
        assert copy.content == original.content
        assert copy.headers["Content-Type"] == original.headers["Content-Type"]
    if target.log:  # no blob was read or written: only manifests moved
        assert not [r for r in target.requests()[before:] if "/blobs/" in r["path"]]


def test_tag_an_index_keeps_its_digest(target: Target, repo: str, index: PushedIndex) -> None:
    result = freight.tag(index.reference, ["latest"])
    assert str(result.digest) == index.index and result.media_type == OCI_INDEX
    copy = get_manifest(target, repo, "latest")
    assert sha(copy.content) == index.index and copy.headers["Content-Type"] == OCI_INDEX
    data = json.loads(ok("tag", index.reference, "again", "--json").stdout)
    assert data["digest"] == index.index and data["tags"] == [
        f"{target.host}/{repo}:again@{index.index}"]


# -- delete --------------------------------------------------------------------------------

def test_delete_by_digest_removes_the_manifest(target: Target, repo: str,
                                               image: ImageResult) -> None:
    pinned = f"{target.host}/{repo}@{image.digest}"
    data = json.loads(ok("delete", pinned, "--json").stdout)
    assert data == {"reference": pinned, "deleted": pinned, "kind": "manifest",
                    "digest": str(image.digest)}
    assert get_manifest(target, repo, str(image.digest)).status_code == 404
    assert get_manifest(target, repo, "1").status_code == 404  # its tag went with it
    gone = cli("manifest", pinned)
    assert gone.exit_code == EXIT_NOT_FOUND and "MANIFEST_UNKNOWN" in gone.stderr


def test_delete_tag(archive: Path, target: Target, repo: str, image: ImageResult) -> None:
    tag_raw(target, repo, "1", ["keep"])
    result = cli("delete", f"{target.host}/{repo}:1")
    if target.deletes_tags:
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"deleted tag {target.host}/{repo}:1"
        assert get_manifest(target, repo, "1").status_code == 404
        assert get_manifest(target, repo, "keep").status_code == 200  # only the tag went
    else:  # distribution 2.8: 400 DIGEST_INVALID; say how to delete by digest instead
        assert result.exit_code == EXIT_REGISTRY
        assert f"freight delete {target.host}/{repo}@{image.digest}" in result.stderr
        assert "--resolve" in result.stderr and len(result.stderr.splitlines()) == 1
        assert get_manifest(target, repo, "1").status_code == 200


def test_delete_tag_with_resolve_deletes_its_manifest(target: Target, repo: str,
                                                      image: ImageResult) -> None:
    tag_raw(target, repo, "1", ["other"])
    result = freight.delete(f"{target.host}/{repo}:1", resolve=True)
    assert result.kind == "manifest" and result.digest == image.digest
    assert str(result.deleted) == f"{target.host}/{repo}@{image.digest}"
    for ref in ("1", "other", str(image.digest)):
        assert get_manifest(target, repo, ref).status_code == 404
    assert freight.tags(f"{target.host}/{repo}").tags == ()


def test_delete_an_index_by_tag(target: Target, repo: str, index: PushedIndex) -> None:
    """Untagging leaves the children; deleting by digest (resolved) removes the index."""
    freight.delete(index.reference, resolve=not target.deletes_tags)
    assert get_manifest(target, repo, "multi").status_code == 404
    for digest in index.manifests.values():
        assert get_manifest(target, repo, digest).status_code == 200
