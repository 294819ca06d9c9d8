"""BuildKit attestation manifests in an index (`unknown/unknown` entries naming a sibling
by `vnd.docker.reference.digest`): kept whenever the image they describe is kept, left out
(with a note) when that image is rewritten on the way, so no index ever names an
attestation of a manifest it does not hold."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx

import freight
from freight import mediatypes as mt
from freight.digest import Digest
from freight.engine.attestations import attested
from freight.manifest import Descriptor
from freight.progress import Silent
from support.fixtures import module_registry, own_cache


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI layout written blob by blob, as `docker buildx build --output type=oci` does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, data: bytes) -> dict[str, object]:
        digest = _digest(data)
        (self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def image(self, arch: str, *, gzipped: bool) -> dict[str, object]:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo(f"{arch}.txt")
            info.size = len(arch)
            tar.addfile(info, io.BytesIO(arch.encode()))
        plain = out.getvalue()
        body = gzip.compress(plain, mtime=0) if gzipped else plain
        config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [_digest(plain)]}})
        kind = mt.OCI_LAYER_GZIP if gzipped else mt.OCI_LAYER
        return self.manifest(config.encode(), [({"mediaType": kind}, body)])

    def attestation(self, of: dict[str, object]) -> dict[str, object]:
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1",
                                "subject": [{"digest": {"sha256": str(of["digest"])[7:]}}],
                                "predicateType": "https://slsa.dev/provenance/v0.2"}).encode()
        config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [_digest(statement)]}})
        layer = {"mediaType": "application/vnd.in-toto+json",
                 "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}
        entry = self.manifest(config.encode(), [(layer, statement)])
        entry["platform"] = {"architecture": "unknown", "os": "unknown"}
        entry["annotations"] = {"vnd.docker.reference.type": "attestation-manifest",
                                "vnd.docker.reference.digest": of["digest"]}
        return entry

    def manifest(self, config: bytes,
                 layers: list[tuple[dict[str, object], bytes]]) -> dict[str, object]:
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, **self.blob(config)},
            "layers": [{**desc, **self.blob(body)} for desc, body in layers]}).encode()
        return {"mediaType": mt.OCI_MANIFEST, **self.blob(raw)}

    def index(self, entries: list[dict[str, object]]) -> str:
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                          "manifests": entries}).encode()
        root = {"mediaType": mt.OCI_INDEX, **self.blob(raw),
                "annotations": {"org.opencontainers.image.ref.name": "v1"}}
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [root]}))
        return _digest(raw)


def _platform(entry: dict[str, object], arch: str) -> dict[str, object]:
    return {**entry, "platform": {"architecture": arch, "os": "linux"}}


class Notes(Silent):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


registry = module_registry("attest-registry")
_own_cache = own_cache()


def _index(registry: str, repository: str) -> list[dict[str, object]]:
    answer = httpx.get(f"http://{registry}/v2/{repository}/manifests/v1",
                       headers={"Accept": mt.OCI_INDEX})
    assert answer.status_code == 200, answer.text
    manifests: list[dict[str, object]] = answer.json()["manifests"]
    for entry in manifests:  # every child is there
        child = httpx.head(f"http://{registry}/v2/{repository}/manifests/{entry['digest']}",
                           headers={"Accept": str(entry["mediaType"])})
        assert child.status_code == 200
    return manifests


def _built(tmp_path: Path) -> tuple[Path, dict[str, dict[str, object]], str]:
    """amd64 with a gzip layer (kept by a default push), arm64 with a plain tar (gzipped by
    it), each followed by its attestation, as buildx orders them."""
    layout = Layout(tmp_path / "layout")
    amd64 = _platform(layout.image("amd64", gzipped=True), "amd64")
    arm64 = _platform(layout.image("arm64", gzipped=False), "arm64")
    entries = {"amd64": amd64, "arm64": arm64, "amd64-att": layout.attestation(amd64),
               "arm64-att": layout.attestation(arm64)}
    digest = layout.index([entries[k] for k in ("amd64", "amd64-att", "arm64", "arm64-att")])
    return layout.root, entries, digest


def test_an_index_kept_as_it_is_keeps_every_attestation(registry: str, tmp_path: Path) -> None:
    root, entries, digest = _built(tmp_path)
    (pushed,) = freight.push(root, f"{registry}/att/keep:v1", compression="keep")
    assert str(pushed.digest) == digest
    assert {e["digest"] for e in _index(registry, "att/keep")} == {
        e["digest"] for e in entries.values()}


def test_a_rewritten_image_loses_its_attestation_and_no_other(registry: str,
                                                             tmp_path: Path) -> None:
    root, entries, digest = _built(tmp_path)
    progress = Notes()
    (pushed,) = freight.push(root, f"{registry}/att/auto:v1", progress=progress)  # auto
    assert str(pushed.digest) != digest
    listed = _index(registry, "att/auto")
    digests = [e["digest"] for e in listed]
    assert digests[:2] == [entries["amd64"]["digest"], entries["amd64-att"]["digest"]]
    assert len(digests) == 3 and entries["arm64-att"]["digest"] not in digests
    assert digests[2] != entries["arm64"]["digest"]  # gzipped: a new manifest
    (note,) = [n for n in progress.notes if "attestation" in n]
    assert str(entries["arm64"]["digest"])[7:19] in note and "--compression keep" in note


def test_every_image_rewritten_leaves_no_attestation(registry: str, tmp_path: Path) -> None:
    root, _, _ = _built(tmp_path)
    freight.push(root, f"{registry}/att/zstd:v1", compression="zstd")
    listed = _index(registry, "att/zstd")
    assert [e["platform"]["architecture"] for e in listed] == ["amd64", "arm64"]  # type: ignore[index]


def _blob_digests(layout: Path, entry: dict[str, object]) -> set[str]:
    raw = (layout / "blobs" / "sha256" / str(entry["digest"])[7:]).read_bytes()
    manifest = json.loads(raw)
    return {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}


def test_a_dry_run_lists_what_the_run_sends(registry: str, tmp_path: Path) -> None:
    """The dry run leaves out, and notes, the attestation that the real run leaves out: its
    blobs are not listed as to be sent."""
    root, entries, _ = _built(tmp_path)
    progress = Notes()
    (planned,) = freight.push(root, f"{registry}/att/dry:v1", dry_run=True, progress=progress)
    listed = {str(b.digest) for b in planned.blobs}
    assert _blob_digests(root, entries["amd64-att"]) <= listed  # kept: its image is kept
    assert not _blob_digests(root, entries["arm64-att"]) & listed
    (note,) = [n for n in progress.notes if "attestation" in n]
    assert str(entries["arm64-att"]["digest"])[7:19] in note and "would be left out" in note
    kept = Notes()
    (all_kept,) = freight.push(root, f"{registry}/att/dry:v1", dry_run=True, progress=kept,
                               compression="keep")
    assert _blob_digests(root, entries["arm64-att"]) <= {str(b.digest) for b in all_kept.blobs}
    assert not [n for n in kept.notes if "attestation" in n]


def test_attested_reads_only_a_well_formed_attestation_entry() -> None:
    digest = Digest.parse("sha256:" + "a" * 64)
    entry = Descriptor(mt.OCI_MANIFEST, digest, 10, annotations={
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": str(digest)})
    assert attested(entry) == digest
    assert attested(Descriptor(mt.OCI_MANIFEST, digest, 10)) is None
    odd = Descriptor(mt.OCI_MANIFEST, digest, 10, annotations={
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": "sha256:nothex"})
    assert attested(odd) is None
    other = Descriptor(mt.OCI_MANIFEST, digest, 10, annotations={
        "vnd.docker.reference.type": "something-else",
        "vnd.docker.reference.digest": str(digest)})
    assert attested(other) is None
