"""Byte ranges: the `Range` of a blob GET (RFC 9110 §14) and the lenient upload `Content-Range`."""

from __future__ import annotations

import re

# ASCII digits only (`\d` would take Arabic-Indic and other Unicode digits) and at most
# MAX_DIGITS of them: int() of a longer string is slow, or refused past 4300 digits.
MAX_DIGITS = 19  # 10**19 > 2**63: larger than any offset a registry stores
_N = rf"[0-9]{{1,{MAX_DIGITS}}}"
_BYTES_RANGE = re.compile(rf"bytes=({_N})?-({_N})?", re.ASCII)
# OCI sends `start-end`; RFC 9110 style `bytes start-end/total` is accepted too, since some
# clients send it and refusing it gains nothing.
_UPLOAD_RANGE = re.compile(rf"(?:bytes[ =])?({_N})-({_N})(?:/(?:{_N}|\*))?", re.ASCII)


class Unsatisfiable(ValueError):
    """The range lies outside the content: answer 416 with `Content-Range: bytes */<size>`."""


def parse_byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a single-range `Range` header asks of `size` bytes.

    None means "send everything" (no header, a malformed one, or several ranges, which a
    server may ignore); raises Unsatisfiable when no byte of the range exists.
    """
    if not value:
        return None
    found = _BYTES_RANGE.fullmatch(value.strip())
    if found is None or found.group(1) is None is found.group(2):
        return None
    first, last = found.group(1) or "", found.group(2) or ""
    if first == "":  # suffix range: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise Unsatisfiable(value)
        return max(size - count, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable(value)
    return start, end


def parse_upload_range(value: str) -> tuple[int, int] | None:
    """(start, end) inclusive from an upload chunk's `Content-Range`, or None if malformed."""
    found = _UPLOAD_RANGE.fullmatch(value.strip())
    if found is None:
        return None
    start, end = int(found.group(1)), int(found.group(2))
    return (start, end) if start <= end else None
