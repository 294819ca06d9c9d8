"""Cosign-format signatures made and checked with `cryptography`, to cosign's published
format (sigstore/cosign specs/SIGNATURE_SPEC.md):

* the payload is a simple-signing JSON document (`critical.image.docker-manifest-digest`,
  `critical.type` "cosign container image signature"), uploaded as a layer of media type
  `application/vnd.dev.cosign.simplesigning.v1+json`;
* the signature (ECDSA P-256 over SHA-256, DER, base64) is the layer annotation
  `dev.cosignproject.cosign/signature`;
* the manifest is stored under the tag `sha256-<hex>.sig` (tag schema), or, OCI 1.1 style,
  pushed by digest with a `subject` and an `artifactType` (then listed by the referrers API,
  or in the referrers tag `sha256-<hex>` on a registry without it).

Debian's skopeo and podman are built with sigstore disabled, so nothing packaged here
signs or verifies these; this module is the independent check.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .synthreg import OCI_INDEX, OCI_MANIFEST, digest_of, push_blob, push_manifest

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"


@dataclass(frozen=True)
class Keys:
    private: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls) -> Keys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()


def payload(repo: str, digest: str) -> bytes:
    return json.dumps({"critical": {"identity": {"docker-reference": repo},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}).encode()


def _signature_manifest(client: httpx.Client, repo: str, digest: str, keys: Keys,
                        subject: dict[str, object] | None) -> bytes:
    body = payload(repo, digest)
    signature = keys.private.sign(body, ec.ECDSA(hashes.SHA256()))
    push_blob(client, repo, body)
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(body)]}}).encode()
    push_blob(client, repo, config)
    manifest: dict[str, object] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": SIMPLESIGNING, "digest": digest_of(body), "size": len(body),
                    "annotations": {SIGNATURE_ANNOTATION:
                                    base64.b64encode(signature).decode()}}]}
    if subject is not None:
        manifest["artifactType"] = SIG_ARTIFACT
        manifest["subject"] = subject
    return json.dumps(manifest).encode()


def sign_tag(client: httpx.Client, repo: str, digest: str, keys: Keys) -> str:
    """A cosign `.sig` tag signature of the manifest `digest`; returns its digest."""
    raw = _signature_manifest(client, repo, digest, keys, None)
    push_manifest(client, repo, digest.replace(":", "-") + ".sig", raw, OCI_MANIFEST)
    return digest_of(raw)


def sign_referrer(client: httpx.Client, repo: str, digest: str, keys: Keys) -> str:
    """An OCI 1.1 referrer signature; the referrers tag is kept when there is no API."""
    head = client.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT})
    subject = {"mediaType": head.headers["Content-Type"], "digest": digest,
               "size": int(head.headers["Content-Length"])}
    raw = _signature_manifest(client, repo, digest, keys, subject)
    reply = push_manifest(client, repo, digest_of(raw), raw, OCI_MANIFEST)
    if "OCI-Subject" not in reply.headers:
        add_to_referrers_tag(client, repo, digest, {
            "mediaType": OCI_MANIFEST, "digest": digest_of(raw), "size": len(raw),
            "artifactType": SIG_ARTIFACT})
    return digest_of(raw)


def add_to_referrers_tag(client: httpx.Client, repo: str, digest: str,
                          entry: dict[str, object]) -> None:
    tag = digest.replace(":", "-")
    got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_INDEX})
    entries = got.json()["manifests"] if got.status_code == 200 else []
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*entries, entry]}
    push_manifest(client, repo, tag, json.dumps(index).encode(), OCI_INDEX)


def signature_manifests(client: httpx.Client, repo: str, digest: str) -> list[bytes]:
    """Every cosign signature manifest of `digest`: the `.sig` tag and referrers."""
    found = []
    sig = client.get(f"/v2/{repo}/manifests/{digest.replace(':', '-')}.sig",
                     headers={"Accept": ACCEPT})
    if sig.status_code == 200:
        found.append(sig.content)
    listed = client.get(f"/v2/{repo}/referrers/{digest}")
    if listed.status_code != 200:
        listed = client.get(f"/v2/{repo}/manifests/{digest.replace(':', '-')}",
                            headers={"Accept": OCI_INDEX})
    entries = listed.json()["manifests"] if listed.status_code == 200 else []
    for entry in entries:
        if entry.get("artifactType") == SIG_ARTIFACT:
            got = client.get(f"/v2/{repo}/manifests/{entry['digest']}",
                             headers={"Accept": ACCEPT})
            found.append(got.content)
    return found


def verify(client: httpx.Client, repo: str, digest: str, public: ec.EllipticCurvePublicKey,
           raw: bytes) -> bool:
    """Whether the signature manifest `raw` signs `digest` under `public`."""
    layer = json.loads(raw)["layers"][0]
    if layer["mediaType"] != SIMPLESIGNING:
        return False
    body = client.get(f"/v2/{repo}/blobs/{layer['digest']}").content
    if digest_of(body) != layer["digest"]:
        return False
    if json.loads(body)["critical"]["image"]["docker-manifest-digest"] != digest:
        return False
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    try:
        public.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verified_signatures(client: httpx.Client, repo: str, digest: str,
                        public: ec.EllipticCurvePublicKey) -> int:
    """How many signatures of `digest` verify (0 for an unsigned image)."""
    return sum(verify(client, repo, digest, public, raw)
               for raw in signature_manifests(client, repo, digest))
