"""Reading and writing the protocol's own headers: Range, Content-Range, Link."""

from __future__ import annotations

import re

# ASCII digits, at most 19 (> 2**63): `\d` takes any Unicode digit, and int() of a very long
# string is slow or refused.
_N = r"[0-9]{1,19}"
_RANGE = re.compile(rf"(?:bytes=)?({_N})-({_N})", re.ASCII)
_CONTENT_RANGE = re.compile(rf"({_N})-({_N})", re.ASCII)
_UINT = re.compile(_N, re.ASCII)
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def parse_range_end(value: str | None) -> int | None:
    """The inclusive end offset in an upload `Range: 0-<end>` reply (`bytes=` tolerated)."""
    if not value:
        return None
    match = _RANGE.fullmatch(value.strip())
    return int(match.group(2)) if match else None


def parse_uint(value: str) -> int | None:
    """A non-negative decimal of at most 19 ASCII digits (Content-Length, `?n=`), else None."""
    found = _UINT.fullmatch(value.strip(" \t"))
    return int(found.group(0)) if found else None


def content_range(start: int, end_inclusive: int) -> str:
    """`Content-Range` for a PATCH chunk: `start-end`, inclusive, no `bytes ` prefix."""
    return f"{start}-{end_inclusive}"


def parse_content_range(value: str) -> tuple[int, int] | None:
    """`start-end` from a PATCH's `Content-Range`, or None if malformed."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if not match:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return (start, end) if start <= end else None


def upload_range(size: int) -> str:
    """The `Range` reply header for an upload holding `size` bytes (distribution's `0-0` quirk)."""
    return f"0-{max(size - 1, 0)}"


def parse_next_link(value: str | None) -> str | None:
    """The target of `Link: <url>; rel="next"`, or None."""
    if not value:
        return None
    match = _LINK.search(value)
    return match.group(1) if match else None
