"""Strict checks of a pushed manifest's JSON before anything reads it (issue 13, item 6).

The client-side parsers in freight.manifest are lenient on purpose (they read what real
registries serve); a registry must not be: every typed field of the OCI image and index
specs is checked here, so a wrong type, an absurd size or JSON nested beyond the parser's
recursion limit is MANIFEST_INVALID (400), never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from freight.server.exchange import HTTPError

# int64, what the OCI spec's Go types and every registry and client can hold; a negative or
# larger size can only be an error or an attack.
MAX_DESCRIPTOR_SIZE = (1 << 63) - 1
MAX_DETAIL = 300  # characters of a field name or value quoted back in an error

_STRING_FIELDS = ("mediaType", "artifactType")
_PLATFORM_STRINGS = ("os", "architecture", "variant", "os.version")
_PLATFORM_LISTS = ("os.features", "features")


def parse(data: bytes) -> dict[str, Any]:
    """The document as a JSON object, or MANIFEST_INVALID (deep nesting included)."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise _invalid(f"manifest is not valid JSON ({exc})") from None
    except RecursionError:
        raise _invalid("manifest JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    return document


def check(document: dict[str, Any], *, index: bool) -> None:
    """Every field the specs type, with the right type; MANIFEST_INVALID otherwise."""
    _strings(document, _STRING_FIELDS, "manifest")
    _annotations(document, "manifest")
    if index:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise _invalid("an index needs a `manifests` list")
        for number, child in enumerate(children):
            where = f"manifests[{number}]"
            descriptor(child, where)
            if "platform" in child:
                _platform(child["platform"], where)
    else:
        descriptor(document.get("config"), "config")
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise _invalid("an image manifest needs a `layers` list")
        for number, layer in enumerate(layers):
            descriptor(layer, f"layers[{number}]")
    if document.get("subject") is not None:
        descriptor(document["subject"], "subject")


def descriptor(value: Any, where: str) -> None:
    """A content descriptor: digest string, bounded integer size, typed optional fields."""
    if not isinstance(value, dict):
        raise _invalid(f"{where}: a descriptor must be a JSON object")
    if not isinstance(value.get("digest"), str):
        raise _invalid(f"{where}: `digest` must be a string")
    size = value.get("size")
    if type(size) is not int:  # bool is an int to Python, never to JSON
        raise _invalid(f"{where}: `size` must be an integer")
    if not 0 <= size <= MAX_DESCRIPTOR_SIZE:
        raise _invalid(f"{where}: size {str(size)[:40]} is out of range")
    _strings(value, (*_STRING_FIELDS, "data"), where)
    _annotations(value, where)
    if "urls" in value:
        _string_list(value["urls"], f"{where}.urls")


def _platform(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(f"{where}: `platform` must be a JSON object")
    _strings(value, _PLATFORM_STRINGS, f"{where}.platform")
    for name in _PLATFORM_LISTS:
        if name in value:
            _string_list(value[name], f"{where}.platform.{name}")


def _strings(value: dict[str, Any], names: tuple[str, ...], where: str) -> None:
    for name in names:
        if name in value and not isinstance(value[name], str):
            raise _invalid(f"{where}: `{name}` must be a string")


def _annotations(value: dict[str, Any], where: str) -> None:
    annotations = value.get("annotations")
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        raise _invalid(f"{where}: `annotations` must be a JSON object")
    for key, item in annotations.items():
        if not isinstance(item, str):
            raise _invalid(f"{where}: annotation {key[:MAX_DETAIL]!r} must be a string")


def _string_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{where} must be a list of strings")


def _invalid(message: str) -> HTTPError:
    return HTTPError("MANIFEST_INVALID", message[:MAX_DETAIL * 2])
