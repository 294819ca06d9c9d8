"""`freight copy` between every pair of docker archive, OCI layout, OCI archive and registry
keeps the digests; push and pull are the same engine under friendlier names."""

from __future__ import annotations

import itertools
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import freight
from freight.cli import main
from freight.errors import EXIT_USAGE
from support.fixtures import module_registry, own_cache

from .test_engine_properties import LayerSpec, docker_archive, oci_layout, verify

registry = module_registry("pairs-registry")
_own_cache = own_cache()


SPECS = [LayerSpec(1, 50_000, "gzip"), LayerSpec(2, 20_000, "zstd"), LayerSpec(1, 50_000, "gzip")]
KINDS = ("docker-archive", "oci", "oci-archive", "registry")


def _location(kind: str, where: Path, registry: str, name: str) -> str:
    if kind == "registry":
        return f"{registry}/pairs/{name}:v1"
    suffix = "" if kind == "oci" else ".tar"
    return f"{kind}:{where / (name + suffix)}"


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(KINDS, 2)))
def test_copy_between_any_two_kinds_keeps_every_digest(
        registry: str, tmp_path: Path, first: str, second: str) -> None:
    diff_ids = oci_layout(tmp_path / "origin", SPECS, "v1")
    start = freight.copy(f"oci:{tmp_path / 'origin'}", _location(first, tmp_path, registry,
                                                                 f"a-{first}-{second}"))
    (a,) = start
    src = _location(first, tmp_path, registry, f"a-{first}-{second}")
    dst = _location(second, tmp_path, registry, f"b-{first}-{second}")
    (b,) = freight.copy(src, dst)
    assert b.digest == a.digest, f"{first} -> {second} changed the manifest"
    back = _location(first, tmp_path, registry, f"c-{first}-{second}")
    (c,) = freight.copy(dst, back)
    assert c.digest == a.digest
    if second == "registry":
        verify(f"http://{registry}", f"pairs/b-{first}-{second}", "v1", diff_ids)


def test_a_zstd_bundle_pushes_back_with_the_same_digests(registry: str, tmp_path: Path) -> None:
    oci_layout(tmp_path / "zstd", [LayerSpec(5, 80_000, "zstd"), LayerSpec(6, 9_000, "zstd")],
               "v1")
    (pushed,) = freight.push(tmp_path / "zstd", f"{registry}/bundle/app:v1")
    bundle = tmp_path / "bundle.tar"
    (pulled,) = freight.pull([f"{registry}/bundle/app:v1"], str(bundle))
    (again,) = freight.push(bundle, f"{registry}/bundle/again:v1")  # default options
    assert pushed.digest == pulled.digest == again.digest
    assert {b.action for b in again.blobs} <= {freight.Action.UPLOADED, freight.Action.MOUNTED,
                                               freight.Action.SKIPPED}


def test_a_docker_archive_written_by_copy_is_docker_loadable_in_shape(
        registry: str, tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 30_000, "tar"), LayerSpec(2, 10_000, "tar")], "v1")
    out = tmp_path / "copy.tar"
    (result,) = freight.copy(str(source), f"docker-archive:{out}:team/app:v2")
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        names = set(tar.getnames())
    assert manifest[0]["RepoTags"] == ["team/app:v2"]
    assert {manifest[0]["Config"], *manifest[0]["Layers"], "oci-layout", "index.json"} <= names
    assert str(result.reference) == "docker.io/team/app:v2"


def test_an_existing_output_is_replaced_only_with_force(registry: str, tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 1000, "tar")], "v1")
    out = tmp_path / "out.tar"
    out.write_bytes(b"precious")
    run = CliRunner().invoke(main, ["copy", str(source), f"docker-archive:{out}"])
    assert run.exit_code == EXIT_USAGE and "--force" in run.stderr
    assert out.read_bytes() == b"precious"
    run = CliRunner().invoke(main, ["copy", str(source), f"docker-archive:{out}", "--force"])
    assert run.exit_code == 0, run.output
    assert tarfile.is_tarfile(out)


def test_no_parent_directory_is_ever_created(registry: str, tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["pull", f"{registry}/pairs/none:v1",
                                    str(tmp_path / "missing" / "out.tar")])
    assert run.exit_code == EXIT_USAGE, run.output
    assert "does not exist" in run.stderr
    assert not (tmp_path / "missing").exists()


def test_a_platform_that_matches_nothing_is_a_usage_error(registry: str,
                                                         tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 1000, "tar")], "v1")  # linux/amd64
    run = CliRunner().invoke(main, ["push", str(source), f"{registry}/pairs/plat:v1",
                                    "--platform", "linux/arm64"])
    assert run.exit_code == EXIT_USAGE, run.output
    assert "linux/amd64" in run.stderr
    run = CliRunner().invoke(main, ["tags", f"{registry}/pairs/plat"])
    assert "v1" not in run.output


def test_short_names_pick_an_image_as_docker_does(registry: str, tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 1000, "tar")], "zstd")  # tagged prop/app:zstd
    (result,) = freight.push(source, f"{registry}/pairs/short:v1", image="app:zstd")
    assert result.digest


def test_a_failed_copy_into_a_new_layout_leaves_no_directory(registry: str,
                                                             tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 5000, "tar")], "v1")
    data = source.read_bytes()
    source.write_bytes(data.replace(b"\x00" * 600, b"\x01" * 600, 1))  # damage a layer
    run = CliRunner().invoke(main, ["copy", str(source), f"oci:{tmp_path / 'new'}"])
    assert run.exit_code != 0
    assert not (tmp_path / "new").exists()


def test_a_dry_run_says_what_would_be_sent_and_sends_nothing(registry: str,
                                                             tmp_path: Path) -> None:
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 40_000, "tar"), LayerSpec(2, 5_000, "gzip")], "v1")
    run = CliRunner().invoke(main, ["push", str(source), f"{registry}/pairs/dry:v1",
                                    "--dry-run", "--json"])
    assert run.exit_code == 0, run.output
    (plan,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert plan["dry_run"] and {b["action"] for b in plan["blobs"]} == {"planned"}
    assert CliRunner().invoke(main, ["tags", f"{registry}/pairs/dry"]).exit_code != 0
    freight.push(source, f"{registry}/pairs/dry:v1")
    run = CliRunner().invoke(main, ["push", str(source), f"{registry}/pairs/dry:v2",
                                    "--dry-run"])
    assert run.exit_code == 0, run.output
    assert "would write" in run.stdout and "send" not in run.stdout  # all skipped now
    run = CliRunner().invoke(main, ["copy", str(source), f"oci:{tmp_path / 'dry'}",
                                    "--dry-run"])
    assert run.exit_code == 0, run.output
    assert not (tmp_path / "dry").exists()


def test_bytes_a_registry_sends_that_do_not_match_are_a_registry_error(tmp_path: Path) -> None:
    from freight.errors import EXIT_REGISTRY
    from server.conftest import serving

    with serving(tmp_path / "root") as live:
        host = live.url.removeprefix("http://")
        oci_layout(tmp_path / "src", [LayerSpec(3, 30_000, "gzip")], "v1")
        (pushed,) = freight.push(tmp_path / "src", f"{host}/rot/app:v1")
        layer = next(b for b in pushed.blobs if "layer" in b.media_type)
        (stored,) = (tmp_path / "root" / "blobs").rglob(layer.digest.encoded)
        data = bytearray(stored.read_bytes())
        data[100] ^= 0xFF  # the registry's storage rots one byte
        stored.write_bytes(bytes(data))
        out = tmp_path / "pulled.tar"
        run = CliRunner().invoke(main, ["pull", f"{host}/rot/app:v1", str(out)])
    assert run.exit_code == EXIT_REGISTRY, run.output
    assert "do not match" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.glob(".pulled.tar*")) == []


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_a_tag_given_to_a_layout_finds_the_image_again(registry: str, tmp_path: Path,
                                                       kind: str) -> None:
    """`oci:DIR:v9` names the image `v9` in the layout (beside its full name, for docker
    and containerd): freight reads it back by that tag, as skopeo does."""
    diff_ids = oci_layout(tmp_path / "origin", SPECS, "v1")
    out = f"{kind}:{tmp_path / ('layout' if kind == 'oci' else 'layout.tar')}"
    (written,) = freight.copy(f"oci:{tmp_path / 'origin'}", f"{out}:v9")
    (back,) = freight.copy(f"{out}:v9", f"{registry}/pairs/again-{kind}:v1")
    assert back.digest == written.digest
    verify(f"http://{registry}", f"pairs/again-{kind}", "v1", diff_ids)
    with pytest.raises(freight.UsageError, match="no image 'v8'"):
        freight.copy(f"{out}:v8", f"{registry}/pairs/again-{kind}:v2")


@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-archive"])
def test_pull_reads_an_output_that_names_its_kind(registry: str, tmp_path: Path,
                                                  kind: str) -> None:
    """`freight pull REF oci:DIR` is what a skopeo user types: the same as --format oci."""
    diff_ids = oci_layout(tmp_path / "origin", SPECS, "v1")
    freight.copy(f"oci:{tmp_path / 'origin'}", f"{registry}/pairs/pulled-{kind}:v1")
    where = tmp_path / ("out" if kind == "oci" else "out.tar")
    (pulled,) = freight.pull(f"{registry}/pairs/pulled-{kind}:v1", f"{kind}:{where}")
    if kind == "oci":
        assert (where / "index.json").is_file()
    else:
        with tarfile.open(where) as tar:
            names = set(tar.getnames())
        assert ("manifest.json" in names) == (kind == "docker-archive")
    (back,) = freight.copy(f"{kind}:{where}", f"{registry}/pairs/pulled-back-{kind}:v1")
    assert back.digest == pulled.digest
    verify(f"http://{registry}", f"pairs/pulled-back-{kind}", "v1", diff_ids)


def test_pull_refuses_an_output_kind_it_cannot_write_or_that_contradicts_format(
        registry: str, tmp_path: Path) -> None:
    ref = f"{registry}/pairs/none:v1"
    run = CliRunner().invoke(main, ["pull", ref, f"dir:{tmp_path / 'd'}"])
    assert run.exit_code == EXIT_USAGE and "pull writes" in run.stderr
    run = CliRunner().invoke(main, ["pull", ref, f"oci:{tmp_path / 'd'}", "--format",
                                    "oci-archive"])
    assert run.exit_code == EXIT_USAGE and "different kinds" in run.stderr
    assert not (tmp_path / "d").exists()


def test_an_artifact_is_refused_for_a_docker_archive_and_kept_elsewhere(
        registry: str, tmp_path: Path) -> None:
    """A Helm chart (its config is no image config) is an OCI artifact: a docker archive
    cannot hold it (`docker load` reads every config as an image's), so that output is
    refused before anything is written; an OCI archive keeps it byte for byte."""
    import hashlib

    import httpx

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    chart, config = b"\x1f\x8b chart bytes", b'{"name": "chart", "version": "0.1.0"}'
    with httpx.Client(base_url=f"http://{registry}") as http:
        for blob in (chart, config):
            started = http.post("/v2/pairs/chart/blobs/uploads/")
            http.put(started.headers["location"], params={"digest": digest(blob)},
                     content=blob).raise_for_status()
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                       "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                        "digest": digest(chart), "size": len(chart)}]}).encode()
        http.put("/v2/pairs/chart/manifests/0.1.0", content=raw, headers={
            "Content-Type": "application/vnd.oci.image.manifest.v1+json"}).raise_for_status()
    out = tmp_path / "chart.tar"
    run = CliRunner().invoke(main, ["pull", f"{registry}/pairs/chart:0.1.0", str(out)])
    assert run.exit_code == EXIT_USAGE, run.output
    assert "not a container image" in run.stderr and "oci-archive:FILE" in run.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []
    (kept,) = freight.pull(f"{registry}/pairs/chart:0.1.0", f"oci-archive:{out}")
    assert str(kept.digest) == digest(raw)


@pytest.mark.parametrize("compression", [None, "gzip", "zstd", "none"])
def test_an_oras_artifact_keeps_its_bytes_and_digest_whatever_the_compression(
        registry: str, tmp_path: Path, compression: str | None) -> None:
    """`oras push` labels every file `application/vnd.oci.image.layer.v1.tar`, whatever it
    holds. Its manifest is an artifact's (the config is no image config): from a layout
    nothing of it may be taken for a filesystem layer, neither compressed on the way nor
    relabelled after its bytes (a .tgz file), and its title annotations must stay."""
    import gzip

    from freight import mediatypes as mt

    from .test_attestations import Layout

    layout = Layout(tmp_path / "oras")
    files = [b"hello\n", gzip.compress(b"a chart", mtime=0)]
    layers = [({"mediaType": mt.OCI_LAYER, "annotations": {
        "org.opencontainers.image.title": f"file{i}"}}, body) for i, body in enumerate(files)]
    raw = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", **layout.blob(b"{}")},
        "layers": [{**desc, **layout.blob(body)} for desc, body in layers],
        "annotations": {}}).encode()
    entry = {"mediaType": mt.OCI_MANIFEST, **layout.blob(raw),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (layout.root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]}))
    want = entry["digest"]
    name = f"pairs/oras-{compression or 'default'}"
    hops = [f"{registry}/{name}:v1", f"oci-archive:{tmp_path / 'a.tar'}",
            f"oci:{tmp_path / 'again'}:v1", f"{registry}/{name}-2:v1"]
    source = f"oci:{layout.root}:v1"
    for hop in hops:
        (done,) = freight.copy(source, hop, compression=compression)
        assert str(done.digest) == want, f"{source} -> {hop} changed the artifact"
        source = hop
