"""Media type constants and the predicates the engine needs."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.image.layout.header.v1+json"

DOCKER_PREFIX = "application/vnd.docker."  # every Docker schema2 media type starts so
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# --manifest-format: "oci" writes OCI manifests and indexes where the source has Docker's
# (skopeo's --format oci); "keep" writes each as the source has it, unless a conversion
# of its layers needs another (zstd layers need OCI)
OCI_FORMAT = "oci"
MANIFEST_FORMATS = ("keep", OCI_FORMAT)
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
# What we send in Accept: every manifest kind we can handle (protocol.md §3.3).
ACCEPT_MANIFESTS = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

# Compression of a layer: "tar" (none), "gzip", "zstd".
NONE, GZIP, ZSTD = "tar", "gzip", "zstd"

_LAYER_COMPRESSION = {
    OCI_LAYER: NONE,
    OCI_LAYER_GZIP: GZIP,
    OCI_LAYER_ZSTD: ZSTD,
    OCI_LAYER_ND: NONE,
    OCI_LAYER_ND_GZIP: GZIP,
    OCI_LAYER_ND_ZSTD: ZSTD,
    DOCKER_LAYER: NONE,
    DOCKER_LAYER_GZIP: GZIP,
    DOCKER_FOREIGN_LAYER_GZIP: GZIP,
}


_EXTERNAL_AS = {  # a non-distributable layer's type in the other manifest family
    (OCI_LAYER_ND_GZIP, True): DOCKER_FOREIGN_LAYER_GZIP,
    (DOCKER_FOREIGN_LAYER_GZIP, False): OCI_LAYER_ND_GZIP,
}


def external_layer_type(media_type: str, *, docker: bool) -> str:
    """A non-distributable layer's type in a Docker (or OCI) manifest: the same bytes,
    named as that family names them (OCI's nondistributable gzip is Docker's foreign)."""
    return _EXTERNAL_AS.get((media_type, docker), media_type)


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFESTS


def is_index(media_type: str) -> bool:
    return media_type in INDEXES


def is_image_config(media_type: str) -> bool:
    """True for a container image's config; anything else makes its manifest an artifact
    (a Helm chart, an SBOM, an `oras push`), whose blobs are not filesystem layers even when
    labelled so (oras labels every file `application/vnd.oci.image.layer.v1.tar`)."""
    return media_type in (OCI_CONFIG, DOCKER_CONFIG)


def is_tar_layer(media_type: str) -> bool:
    """True for the layer types whose bytes are a (possibly compressed) filesystem tar."""
    return media_type in _LAYER_COMPRESSION


def layer_compression(media_type: str) -> str | None:
    """`tar`, `gzip` or `zstd` for a filesystem layer type, None for anything else."""
    return _LAYER_COMPRESSION.get(media_type)


def layer_type(compression: str, *, docker: bool) -> str:
    """The layer media type for `compression` in a Docker schema2 or an OCI manifest."""
    if docker and compression == GZIP:
        return DOCKER_LAYER_GZIP
    if docker and compression == NONE:
        return DOCKER_LAYER
    return {NONE: OCI_LAYER, GZIP: OCI_LAYER_GZIP, ZSTD: OCI_LAYER_ZSTD}[compression]


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff_compression(head: bytes) -> str:
    """What the first bytes of a stream say about its compression."""
    if head.startswith(GZIP_MAGIC):
        return GZIP
    if head.startswith(ZSTD_MAGIC):
        return ZSTD
    return NONE
