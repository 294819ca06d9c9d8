"""Descriptors, manifests, indexes and image configs: frozen values that keep their raw bytes.

A manifest's digest is the sha256 of its exact bytes, so these types never re-serialize what
they parsed; `to_bytes` helpers build new documents deterministically.
"""

from __future__ import annotations

import json
import platform as host
from dataclasses import dataclass, field
from typing import Any

from freight import jsontext
from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/amd64`, `linux/arm64/v8`."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SourceError(f"invalid platform {text!r}: use OS/ARCH[/VARIANT]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: JSONDict) -> Platform:
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), data.get("variant"))

    def matches(self, other: Platform) -> bool:
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or other.variant is None or self.variant == other.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    extra: JSONDict = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise SourceError(f"{where}: a descriptor must be a JSON object")
        try:
            digest = Digest.parse(str(data["digest"]))
            size = int(data["size"])
            media_type = str(data.get("mediaType", ""))
        except (KeyError, ValueError, TypeError) as exc:
            raise SourceError(f"{where}: malformed descriptor ({exc})") from None
        except Exception as exc:  # UsageError from Digest.parse
            raise SourceError(f"{where}: {exc}") from None
        if size < 0:
            raise SourceError(f"{where}: negative size in descriptor")
        urls = data.get("urls")
        if urls is not None and not (isinstance(urls, list)
                                     and all(isinstance(u, str) for u in urls)):
            raise SourceError(f"{where}: a descriptor's urls must be a list of strings")
        platform = data.get("platform")
        known = {"mediaType", "digest", "size", "platform", "annotations"}
        return cls(
            media_type,
            digest,
            size,
            Platform.from_json(platform) if isinstance(platform, dict) else None,
            dict(data.get("annotations") or {}),
            {k: v for k, v in data.items() if k not in known},
        )

    @property
    def urls(self) -> tuple[str, ...]:
        """Where a non-distributable layer's bytes are fetched from; empty for the rest."""
        found = self.extra.get("urls")
        return tuple(found) if isinstance(found, list) else ()

    def to_json(self) -> JSONDict:
        out: JSONDict = {
            "mediaType": self.media_type, "digest": str(self.digest), "size": self.size
        }
        out.update(self.extra)
        if self.platform is not None:
            plat: JSONDict = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            out["platform"] = plat
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def load_json(raw: bytes, what: str) -> JSONDict:
    try:
        data = jsontext.parse(raw)
    except ValueError as exc:
        raise SourceError(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what} must be a JSON object")
    return data


def dump_json(data: JSONDict) -> bytes:
    """Deterministic bytes for a document we build (same input, same digest)."""
    return json.dumps(data, indent=3, separators=(",", ": ")).encode() + b"\n"


@dataclass(frozen=True)
class Manifest:
    """An image manifest (OCI or Docker schema2)."""

    raw: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None = None

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None, what: str = "manifest") -> Manifest:
        data = load_json(raw, what)
        kind = str(data.get("mediaType") or media_type or mt.OCI_MANIFEST)
        if "config" not in data or not isinstance(data.get("layers"), list):
            raise SourceError(f"{what} is not an image manifest (no config or layers)")
        config = Descriptor.from_json(data["config"], f"{what} config")
        layers = tuple(
            Descriptor.from_json(d, f"{what} layer {i}") for i, d in enumerate(data["layers"])
        )
        subject = data.get("subject")
        return cls(raw, kind, config, layers,
                   Descriptor.from_json(subject, f"{what} subject") if subject else None)

    @classmethod
    def build(
        cls, media_type: str, config: Descriptor, layers: list[Descriptor],
        annotations: dict[str, str] | None = None,
    ) -> Manifest:
        data: JSONDict = {"schemaVersion": 2, "mediaType": media_type,
                          "config": config.to_json(), "layers": [d.to_json() for d in layers]}
        if annotations:
            data["annotations"] = annotations
        return cls(dump_json(data), media_type, config, tuple(layers))

    def descriptor(self, **kwargs: Any) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw), **kwargs)


@dataclass(frozen=True)
class Index:
    """An image index (OCI) or manifest list (Docker)."""

    raw: bytes
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None, what: str = "index") -> Index:
        data = load_json(raw, what)
        kind = str(data.get("mediaType") or media_type or mt.OCI_INDEX)
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise SourceError(f"{what} is not an image index (no manifests list)")
        children = tuple(
            Descriptor.from_json(d, f"{what} entry {i}") for i, d in enumerate(entries)
        )
        return cls(raw, kind, children, dict(data.get("annotations") or {}))

    @classmethod
    def build(cls, media_type: str, manifests: list[Descriptor],
              annotations: dict[str, str] | None = None) -> Index:
        data: JSONDict = {"schemaVersion": 2, "mediaType": media_type,
                          "manifests": [d.to_json() for d in manifests]}
        if annotations:
            data["annotations"] = annotations
        return cls(dump_json(data), media_type, tuple(manifests), dict(annotations or {}))

    def descriptor(self, **kwargs: Any) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw), **kwargs)


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config freight reads; `raw` is pushed byte for byte."""

    raw: bytes
    diff_ids: tuple[Digest, ...]
    platform: Platform

    @property
    def digest(self) -> Digest:
        """The image ID."""
        return Digest.of(self.raw)

    @classmethod
    def parse(cls, raw: bytes, what: str = "image config") -> ImageConfig:
        data = load_json(raw, what)
        rootfs = data.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise SourceError(f"{what} has no rootfs.diff_ids")
        try:
            diff_ids = tuple(Digest.parse(str(d)) for d in rootfs["diff_ids"])
        except Exception as exc:
            raise SourceError(f"{what}: bad diff_id ({exc})") from None
        return cls(raw, diff_ids, Platform.from_json(data))


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> Platform:
    """The platform docker would pick on this machine."""
    machine = host.machine().lower()
    return Platform("linux", _ARCH.get(machine, machine))

