"""Reading what a push left in a registry, straight from the HTTP API (no freight code)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import httpx

from .registry import Registry

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


@dataclass(frozen=True)
class FetchedManifest:
    digest: str
    media_type: str
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.raw)
        return value


def tags(registry: Registry, repository: str) -> list[str]:
    """Tags of ``repository``; empty when the repository does not exist."""
    with registry.client() as client:
        reply = client.get(f"/v2/{repository}/tags/list")
    if reply.status_code == 404:
        return []
    reply.raise_for_status()
    return list(reply.json().get("tags") or [])


def catalog(registry: Registry) -> list[str]:
    with registry.client() as client:
        reply = client.get("/v2/_catalog", params={"n": 1000})
    reply.raise_for_status()
    return list(reply.json().get("repositories") or [])


def manifest(registry: Registry, repository: str, reference: str) -> FetchedManifest:
    """GET a manifest; checks the body hashes to the digest the registry reports."""
    with registry.client() as client:
        reply = client.get(
            f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
    reply.raise_for_status()
    digest = "sha256:" + hashlib.sha256(reply.content).hexdigest()
    assert reply.headers["Docker-Content-Digest"] == digest
    media_type = reply.headers["Content-Type"].split(";")[0].strip()
    return FetchedManifest(digest, media_type, reply.content)


def blob(registry: Registry, repository: str, digest: str) -> bytes:
    """A whole blob (test blobs are small), checked against its digest."""
    with registry.client() as client:
        reply = client.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
    reply.raise_for_status()
    assert "sha256:" + hashlib.sha256(reply.content).hexdigest() == digest
    return reply.content


def split_reference(reference: str) -> tuple[str, str, str]:
    """``host/repo[:tag][@digest]`` → (host, repository, tag-or-digest)."""
    host, _, rest = reference.partition("/")
    if "@" in rest:
        repository, _, ref = rest.partition("@")
        repository = repository.rsplit(":", 1)[0] if ":" in repository else repository
        return host, repository, ref
    repository, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        return host, rest, "latest"
    return host, repository, tag


def tag_exists(registry: Registry, repository: str, tag: str) -> bool:
    try:
        return tag in tags(registry, repository)
    except httpx.HTTPStatusError:
        return False
