"""Hostile input (issue 13, item 6): every malformed header, query or body is a 4xx with a
spec error code, never a 500. The parsers are property-tested, not only given examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freight.distribution import headers, ranges, routes
from freight.server import documents
from freight.server.auth import _decode
from freight.server.exchange import HTTPError, Request
from freight.server.manifests import check_media_type

from .conftest import OCI_INDEX, OCI_MANIFEST, Live, digest_of, image_manifest, serving

ARABIC_INDIC = "".join(chr(0x660 + i) for i in range(10))  # what str.isdigit() also takes
# Text a hostile client sends: Unicode digits (Arabic-Indic, superscripts, fullwidth), very
# long numbers, signs, spaces, separators.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789-/ =*,bytes" + ARABIC_INDIC + "\u00b2\u00b3\uff10\uff11",
            max_size=60),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 40).map(str),
    st.builds(lambda n: "9" * n, st.integers(min_value=1, max_value=6000)),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


# -- the parsers, property-tested ------------------------------------------------------------

@given(HOSTILE_TEXT)
def test_parse_uint_only_takes_short_ascii_numbers(text: str) -> None:
    value = headers.parse_uint(text)
    if value is not None:
        assert text.strip(" \t").isascii() and 0 <= value < 10 ** 19


@given(HOSTILE_TEXT, st.integers(min_value=0, max_value=1 << 62))
def test_parse_byte_range_never_fails_unexpectedly(text: str, size: int) -> None:
    try:
        found = ranges.parse_byte_range(text, size)
    except ranges.Unsatisfiable:
        return
    if found is not None:
        start, end = found
        assert 0 <= start <= end < size


@given(HOSTILE_TEXT)
def test_upload_range_parsers_never_fail(text: str) -> None:
    for parse in (ranges.parse_upload_range, headers.parse_content_range):
        found = parse(text)
        if found is not None:
            assert 0 <= found[0] <= found[1] < 10 ** 19
    end = headers.parse_range_end(text)
    assert end is None or 0 <= end < 10 ** 19


@given(st.one_of(HOSTILE_TEXT, st.builds("{}:{}".format, st.sampled_from(
    ["sha256", "sha512", "md5", "SHA256", "sha256+b64"]), st.text("0123456789abcdefABCDEF=_-",
                                                                  max_size=130))))
def test_digest_parser_only_raises_usage_errors(text: str) -> None:
    from freight.digest import Digest
    from freight.errors import UsageError

    try:
        digest = Digest.parse(text)
    except UsageError:
        return
    assert str(digest) == text and digest.algorithm in ("sha256", "sha512")


@given(st.text(max_size=300))
def test_route_matching_never_fails(path: str) -> None:
    route = routes.match("/v2/" + path)
    if route is not None:
        routes.valid_name(route.name)
        routes.valid_tag(route.ref)


@given(st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=60).map(
    lambda raw: "Basic " + __import__("base64").b64encode(raw).decode())))
def test_authorization_header_parser_never_fails(value: str | None) -> None:
    found = _decode(value)
    assert found is None or isinstance(found[0], str)


def request(headers_: dict[str, str], query: bytes = b"") -> Request:
    scope = {"method": "GET", "path": "/v2/", "query_string": query,
             "headers": [(k.encode(), v.encode("latin-1", "replace")) for k, v in
                         headers_.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    return Request(scope, receive)


@given(HOSTILE_TEXT)
def test_content_length_is_a_number_or_size_invalid(text: str) -> None:
    try:
        length = request({"content-length": text}).content_length()
    except HTTPError as exc:
        assert exc.code == "SIZE_INVALID" and exc.status == 400
    else:
        assert length is not None and length >= 0


CONTENT_TYPES = st.one_of(
    st.none(), st.sampled_from([OCI_MANIFEST, OCI_INDEX, f"{OCI_MANIFEST}; charset=utf-8",
                                "application/json", ""]), st.text(max_size=60))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["schemaVersion", "mediaType", "config", "layers",
                                        "manifests", "subject", "annotations",
                                        "artifactType"]), JSON_VALUES),
       CONTENT_TYPES)
def test_manifest_body_checks_raise_only_http_errors(document: dict[str, Any],
                                                     content_type: str | None) -> None:
    try:
        check_media_type(content_type, json.dumps(document).encode())
    except HTTPError as exc:
        assert exc.code == "MANIFEST_INVALID"


@given(st.binary(max_size=200), CONTENT_TYPES)
def test_manifest_bytes_raise_only_http_errors(data: bytes, content_type: str | None) -> None:
    try:
        check_media_type(content_type, data)
    except HTTPError as exc:
        assert exc.code == "MANIFEST_INVALID"


@given(st.dictionaries(st.sampled_from(["mediaType", "digest", "size", "urls", "annotations",
                                        "data", "artifactType", "platform"]), JSON_VALUES))
def test_descriptor_check_raises_only_http_errors(value: dict[str, Any]) -> None:
    try:
        documents.descriptor(value, "layers[0]")
    except HTTPError as exc:
        assert exc.code == "MANIFEST_INVALID"
    else:
        assert type(value["size"]) is int and 0 <= value["size"] < 1 << 63


# -- the live server ---------------------------------------------------------------------------

def errors_of(reply: Any) -> str:
    return str(reply.json()["errors"][0]["code"])


def layer_manifest(live: Live, **layer: Any) -> bytes:
    config = live.push_blob("h", b"{}")
    data = b"layer"
    document = json.loads(image_manifest(config, 2, [(live.push_blob("h", data), len(data))]))
    document["layers"][0].update(layer)
    return json.dumps(document).encode()


@pytest.mark.parametrize("field", [
    {"annotations": "not an object"}, {"annotations": ["a"]}, {"annotations": {"k": 1}},
    {"mediaType": 5}, {"artifactType": []}, {"subject": "sha256:x"}, {"layers": {}},
    {"config": None}, {"schemaVersion": True}, {"schemaVersion": "2"},
])
def test_wrongly_typed_manifest_fields_are_manifest_invalid(live: Live,
                                                            field: dict[str, Any]) -> None:
    document = json.loads(layer_manifest(live))
    document.update(field)
    reply = live.push_manifest("h", "v1", json.dumps(document).encode())
    assert reply.status_code == 400, reply.text
    assert errors_of(reply) == "MANIFEST_INVALID"


@pytest.mark.parametrize("layer", [
    {"size": -1}, {"size": 1 << 63}, {"size": 10 ** 40}, {"size": "5"}, {"size": 5.0},
    {"size": True}, {"annotations": {"a": None}}, {"urls": "http://x"}, {"digest": 7},
])
def test_descriptor_sizes_and_types_are_bounded(live: Live, layer: dict[str, Any]) -> None:
    reply = live.push_manifest("h", "v1", layer_manifest(live, **layer))
    assert reply.status_code == 400, reply.text
    assert errors_of(reply) == "MANIFEST_INVALID"


def test_index_platform_must_be_an_object(live: Live) -> None:
    _, body = live.push_image("h", "child")
    child = digest_of(body)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(body), "platform": "linux"}]}
    reply = live.push_manifest("h", "idx", json.dumps(index).encode(), OCI_INDEX)
    assert reply.status_code == 400 and errors_of(reply) == "MANIFEST_INVALID"


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_manifest_invalid(live: Live, depth: int) -> None:
    body = b'{"schemaVersion": 2, "x": ' + b"[" * depth + b"]" * depth + b"}"
    reply = live.push_manifest("h", "v1", body)
    assert reply.status_code == 400, reply.text
    assert errors_of(reply) == "MANIFEST_INVALID"


NUMBERS = ["\u0663", "\uff11\uff10", "\u00b2", "9" * 5000, "-1", "+5", "1e3", " 5x", "0x10",
           "5" * 20]


@pytest.mark.parametrize("n", NUMBERS)
def test_bad_page_sizes_are_pagination_number_invalid(live: Live, n: str) -> None:
    live.push_image("h", "v1")
    for path in ("/v2/h/tags/list", "/v2/_catalog"):
        reply = live.client.get(path, params={"n": n})
        assert reply.status_code == 400, reply.text
        assert errors_of(reply) == "PAGINATION_NUMBER_INVALID"


@pytest.mark.parametrize("value", ["\u0660-\u0663", "0-" + "9" * 5000, "0-" + "9" * 20,
                                   "bytes=x", "-"])
def test_bad_content_range_is_range_invalid(live: Live, value: str) -> None:
    location = live.client.post("/v2/h/blobs/uploads/").headers["location"]
    reply = live.client.patch(location, content=b"abc",
                              headers={"Content-Range": value.encode()})  # type: ignore[dict-item]
    assert reply.status_code == 416, reply.text
    assert errors_of(reply) == "RANGE_INVALID"


@pytest.mark.parametrize("value", ["bytes=\u0660-\u0663", "bytes=0-" + "9" * 5000,
                                   "bytes=-" + "9" * 30, "bytes=" + "1" * 4400 + "-"])
def test_bad_range_is_ignored_never_a_500(live: Live, value: str) -> None:
    digest = live.push_blob("h", b"content")
    reply = live.client.get(f"/v2/h/blobs/{digest}",
                            headers={"Range": value.encode()})  # type: ignore[dict-item]
    assert reply.status_code == 200
    assert reply.content == b"content"

@pytest.mark.direct  # wire level or per process: not through HAProxy

def test_bad_content_length_is_a_4xx(live: Live) -> None:
    import socket

    host, port = live.url.removeprefix("http://").split(":")
    for value in ("\u0663".encode(), b"9" * 5000, b"-1"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v2/h/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nConnection: close"
                         b"\r\nContent-Length: " + value + b"\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert int(head.split()[1]) == 400, data[:200]
        assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.direct  # wire level or per process: not through HAProxy
@pytest.mark.parametrize("body", [b"zz\r\nabc\r\n0\r\n\r\n", "\u0663".encode() + b"\r\nabc\r\n",
                                  b"9" * 30 + b"\r\n", b"-1\r\n"])
def test_bad_chunked_bodies_get_a_spec_error(live: Live, body: bytes) -> None:
    import socket

    location = live.client.post("/v2/h/blobs/uploads/").headers["location"]
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                     "\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, answer = data.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == 400, data[:200]
    assert json.loads(answer)["errors"][0]["code"] == "UNSUPPORTED"
    assert live.client.get("/v2/").status_code == 200


def test_hostile_headers_and_queries_never_give_a_500(tmp_path: Path) -> None:
    with serving(tmp_path / "root") as live:
        digest = live.push_blob("h", b"content")
        live.push_image("h", "v1")
        location = live.client.post("/v2/h/blobs/uploads/").headers["location"]

        @settings(max_examples=200, deadline=None)
        @given(HOSTILE_TEXT, st.sampled_from(["range", "n", "last", "content-range", "digest",
                                              "mount", "artifactType", "if-none-match",
                                              "content-type"]))
        def check(value: str, where: str) -> None:
            # what HTTP can carry in a header: no control characters, no outer blanks
            raw = bytes(b for b in value.encode("utf-8")[:2000] if b >= 0x20 and b != 0x7F)
            raw = raw.strip()
            if where == "range":
                reply = live.client.get(f"/v2/h/blobs/{digest}", headers={"Range": raw})  # type: ignore[dict-item]
            elif where == "content-range":
                reply = live.client.patch(location, content=b"",
                                          headers={"Content-Range": raw})  # type: ignore[dict-item]
            elif where == "digest":
                reply = live.client.put(location, params={"digest": value[:2000]})
            elif where == "artifactType":
                reply = live.client.get(f"/v2/h/referrers/{digest}", params={where: value})
            elif where == "if-none-match":
                reply = live.client.get("/v2/h/manifests/v1", headers={where: raw})  # type: ignore[dict-item]
            elif where == "content-type":
                reply = live.client.put("/v2/h/manifests/v2", content=b'{"schemaVersion": 2}',
                                        headers={where: raw})  # type: ignore[dict-item]
            elif where == "mount":
                reply = live.client.post("/v2/h/blobs/uploads/",
                                         params={"mount": value[:2000], "from": "h"})
            else:
                reply = live.client.get("/v2/h/tags/list", params={where: value[:2000]})
            assert reply.status_code < 500, reply.text
            if reply.status_code >= 400:
                assert reply.json()["errors"][0]["code"]

        check()


def test_request_parsing_survives_odd_scopes() -> None:
    parsed = request({"x": "\xff" * 10}, query=b"n=%ff%fe&&=&last")
    assert parsed.arg("n") is not None


def test_https_probe_is_answered_without_a_warning_and_bad_requests_still_warn(
        live_fs: Live, caplog: pytest.LogCaptureFixture) -> None:
    """freight (and docker) send a TLS ClientHello to a loopback registry to learn whether it
    speaks HTTPS: a plain-HTTP serve answers it as before, but logs no "Invalid HTTP request
    received." for it (one per client run filled the log); real garbage still warns."""
    import socket

    from freight.transport import scheme

    host = live_fs.url.removeprefix("http://")
    scheme.forget_all()
    with caplog.at_level("WARNING", logger="uvicorn.error"):
        assert scheme.speaks_tls(host) is False
        assert live_fs.client.get("/v2/").status_code == 200
        assert not [r for r in caplog.records if "Invalid HTTP" in r.getMessage()]
        name, port = host.split(":")
        with socket.create_connection((name, int(port)), timeout=10) as sock:
            sock.sendall(b"\x01\x02 nonsense\r\n\r\n")
            assert sock.recv(12).startswith(b"HTTP/1.1 400")
        assert [r for r in caplog.records if "Invalid HTTP" in r.getMessage()]
    scheme.forget_all()
