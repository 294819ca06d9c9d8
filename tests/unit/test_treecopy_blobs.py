"""Which blobs sync copies for a manifest: config and layers once each, foreign layers
(a non-empty `urls`) never, since registries do not store them."""

from __future__ import annotations

import json

from freight import mediatypes as mt
from freight.digest import Digest
from freight.manifest import Manifest
from freight.sync.treecopy import _blobs


def _desc(media_type: str, seed: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.of(seed)), "size": len(seed),
            **extra}


def _manifest(*layers: dict[str, object]) -> Manifest:
    body = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": _desc(mt.OCI_CONFIG, b"{}"), "layers": list(layers)}
    return Manifest.parse(json.dumps(body).encode())


def test_a_foreign_layer_is_left_out_and_an_empty_urls_list_is_not_foreign() -> None:
    foreign = _desc(mt.OCI_LAYER_ND_GZIP, b"base", urls=["https://x/base"])
    listed_nowhere = _desc(mt.OCI_LAYER_GZIP, b"app", urls=[])
    plain = _desc(mt.OCI_LAYER_GZIP, b"lib")
    copied = _blobs(_manifest(foreign, listed_nowhere, plain, plain))
    assert [str(d.digest) for d in copied] == [
        str(Digest.of(b"{}")), str(Digest.of(b"app")), str(Digest.of(b"lib"))]
