"""Registry error codes (protocol.md §3.7) and the `{"errors": [...]}` body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from freight import jsontext

# code -> (HTTP status, message), as the OCI spec and distribution register them.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (404, "blob upload invalid"),  # 404 as distribution registers it
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNKNOWN": (500, "unknown error"),
    "UNAVAILABLE": (503, "service unavailable"),
}


@dataclass(frozen=True)
class ErrorEntry:
    code: str
    message: str
    detail: Any = None


def status_of(code: str) -> int:
    return CODES.get(code, (500, ""))[0]


def error_body(code: str, message: str | None = None, detail: Any = None) -> bytes:
    """The JSON body for one error with `code`."""
    entry: dict[str, Any] = {"code": code, "message": message or CODES.get(code, (0, code))[1]}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


def parse_error_body(body: bytes) -> list[ErrorEntry]:
    """The errors in a registry's reply; an empty list if the body is not the spec's shape."""
    try:
        data = jsontext.parse(body)
    except ValueError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
        return []
    entries = []
    for item in data["errors"]:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            entries.append(ErrorEntry(item["code"], str(item.get("message") or ""),
                                      item.get("detail")))
    return entries
