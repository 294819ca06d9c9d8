"""`--verbose` / `--debug`: every HTTP request and its status on stderr, secrets redacted.

`--verbose` prints one line per request and one per answer; `--debug` adds the headers.
Secrets never appear: `Authorization`, `Proxy-Authorization`, cookies and token headers
are replaced by their scheme and `<redacted>`, and so are query parameters that carry a
credential (tokens, passwords, pre-signed URL signatures). Upload `_state` is not a secret
and is shown, so a broken upload can be debugged from the log.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

QUIET, VERBOSE, DEBUG = 0, 1, 2
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                            "x-registry-auth", "x-amz-security-token"})
SECRET_PARAMS = frozenset({"access_token", "token", "refresh_token", "password", "secret",
                           "x-amz-signature", "x-amz-security-token", "x-amz-credential",
                           "signature", "sig", "x-goog-signature", "x-goog-credential"})

_level = QUIET
_write_lock = threading.Lock()


def set_level(level: int) -> None:
    global _level
    _level = level


def level() -> int:
    return _level


def note(text: str) -> None:
    """A line for --verbose (a decision the transport made, such as the scheme)."""
    if _level >= VERBOSE:
        _write([f"freight: {text}"])


def redact_url(url: str | httpx.URL) -> str:
    """The URL with credential-bearing query values and user info replaced."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    pairs = [(k, REDACTED if k.lower() in SECRET_PARAMS else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(pairs, safe="<>/:"),
                       parts.fragment))


def redact_header(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep and name.lower().endswith("authorization") \
        else REDACTED


def on_request(request: httpx.Request) -> None:
    """httpx `request` event hook."""
    if _level < VERBOSE:
        return
    lines = [f"freight: > {request.method} {redact_url(request.url)}"]
    if _level >= DEBUG:
        lines += _headers(request.headers.multi_items())
    _write(lines)


def on_response(response: httpx.Response) -> None:
    """httpx `response` event hook (runs before the body is read)."""
    if _level < VERBOSE:
        return
    request = response.request
    lines = [f"freight: < {response.status_code} {response.reason_phrase} "
             f"{request.method} {redact_url(request.url)}"]
    if _level >= DEBUG:
        lines += _headers(response.headers.multi_items())
    _write(lines)


def hooks() -> dict[str, list[object]]:
    """Event hooks for an httpx client; empty when logging is off (no per-request cost)."""
    if _level < VERBOSE:
        return {"request": [], "response": []}
    return {"request": [on_request], "response": [on_response]}


def _headers(items: Iterable[tuple[str, str]]) -> list[str]:
    return [f"freight:     {name}: {redact_header(name, value)}" for name, value in items]


def _write(lines: list[str]) -> None:
    with _write_lock:
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
