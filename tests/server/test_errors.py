"""Errors and access control: spec error bodies, never a 500 for bad input (S5 of §7)."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import Live, digest_of, serving

GOOD = digest_of(b"x")


def raw_request(live: Live, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send a request line exactly as given (httpx would normalise `..` away)."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"),
    ("GET", "/v2/a//b/tags/list", 400, "NAME_INVALID"),
    ("GET", "/v2/-a/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/a_/manifests/latest", 400, "NAME_INVALID"),
    ("GET", f"/v2/{'a' * 256}/manifests/latest", 400, "NAME_INVALID"),
    # A GET or HEAD of a reference that is no valid tag or digest names no manifest: 404, as
    # the OCI spec and its conformance suite (`.INVALID_MANIFEST_NAME`) want; a PUT is 400.
    ("GET", "/v2/a/manifests/.INVALID_MANIFEST_NAME", 404, "MANIFEST_UNKNOWN"),
    ("HEAD", "/v2/a/manifests/.INVALID_MANIFEST_NAME", 404, None),
    ("GET", "/v2/a/manifests/-bad", 404, "MANIFEST_UNKNOWN"),
    ("GET", f"/v2/a/manifests/{'t' * 129}", 404, "MANIFEST_UNKNOWN"),
    ("PUT", "/v2/a/manifests/-bad", 400, "TAG_INVALID"),
    ("PUT", "/v2/a/manifests/.INVALID_MANIFEST_NAME", 400, "TAG_INVALID"),
    ("GET", "/v2/a/manifests/sha256:totallywrong", 404, "MANIFEST_UNKNOWN"),
    ("HEAD", "/v2/a/manifests/sha256:totallywrong", 404, None),
    ("DELETE", "/v2/a/manifests/md5:abc", 400, "DIGEST_INVALID"),
    ("GET", "/v2/a/blobs/sha256:short", 400, "DIGEST_INVALID"),
    ("GET", "/v2/a/blobs/notadigest", 400, "DIGEST_INVALID"),
    ("DELETE", "/v2/a/blobs/sha256:" + "A" * 64, 400, "DIGEST_INVALID"),
    ("GET", f"/v2/a/blobs/{GOOD}", 404, "BLOB_UNKNOWN"),
    ("GET", "/v2/a/manifests/latest", 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v3/", 404, "UNSUPPORTED"),
    ("GET", "/", 404, "UNSUPPORTED"),
    ("GET", "/v2/a/whatever/x", 404, "UNSUPPORTED"),
    ("POST", "/v2/a/manifests/latest", 405, "UNSUPPORTED"),
    ("PATCH", "/v2/", 405, "UNSUPPORTED"),
    ("PUT", f"/v2/a/blobs/{GOOD}", 405, "UNSUPPORTED"),
    ("DELETE", "/v2/a/tags/list", 405, "UNSUPPORTED"),
])
def test_bad_requests_get_spec_errors(live: Live, method: str, path: str, status: int,
                                      code: str | None) -> None:
    reply = live.client.request(method, path)
    assert reply.status_code == status
    assert reply.headers["docker-distribution-api-version"] == "registry/2.0"
    if code is not None:
        assert reply.headers["content-type"] == "application/json"
        assert reply.json()["errors"][0]["code"] == code


@pytest.mark.parametrize("target", [
    "/v2/../../etc/passwd/manifests/x",
    "/v2/a/../../manifests/x",
    "/v2/%2e%2e/%2e%2e/manifests/x",
    "/v2/a%2f..%2f..%2fetc/tags/list",
    "/v2/a/blobs/uploads/..",
    "/v2/a/blobs/uploads/%2e%2e%2f%2e%2e",
    "/v2/a/manifests/..%2f..%2fx",
])
def test_path_tricks_are_refused(live: Live, target: str) -> None:
    status, body = raw_request(live, target)
    assert 400 <= status < 500
    assert json.loads(body)["errors"]


def test_ping(live: Live) -> None:
    reply = live.client.get("/v2/")
    assert (reply.status_code, reply.json()) == (200, {})
    assert live.client.head("/v2/").status_code == 200


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("headers", [
    {}, basic("alice", "wrong"), basic("bob", "secret"), {"Authorization": "Basic !!!"},
    {"Authorization": "Bearer abc"},
])
def test_auth_required(live_auth: Live, headers: dict[str, str]) -> None:
    for path in ("/v2/", "/v2/a/tags/list"):
        reply = live_auth.client.get(path, headers=headers)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == 'Basic realm="freight"'
        assert reply.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_auth_accepts_good_credentials(live_auth: Live) -> None:
    live_auth.client.headers.update(basic("alice", "secret"))
    assert live_auth.client.get("/v2/").status_code == 200
    assert live_auth.push_blob("a/b", b"data").startswith("sha256:")


def test_read_only(tmp_path: Path) -> None:
    with serving(tmp_path / "root") as live:
        digest, _ = live.push_image("test/repo", "v1")
    with serving(tmp_path / "root", read_only=True) as live:
        assert live.client.get("/v2/test/repo/manifests/v1").status_code == 200
        for method, path in [("POST", "/v2/test/repo/blobs/uploads/"),
                             ("PUT", "/v2/test/repo/manifests/v2"),
                             ("DELETE", f"/v2/test/repo/manifests/{digest}")]:
            reply = live.client.request(method, path)
            assert reply.status_code == 405
            assert reply.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_htpasswd_file_must_be_bcrypt(tmp_path: Path) -> None:
    from freight.errors import UsageError
    from freight.server.auth import load_htpasswd

    (tmp_path / "plain").write_text("alice:{SHA}abc\n")
    with pytest.raises(UsageError, match="htpasswd -B"):
        load_htpasswd(tmp_path / "plain")
    (tmp_path / "good").write_text("# comment\n\nalice:$2y$05$abcdefghijklmnopqrstuv\n")
    assert list(load_htpasswd(tmp_path / "good")) == ["alice"]


SEGMENTS = st.sampled_from(["a", "b-c", "UP", "..", ".", "_x", "blobs", "uploads",
                            "manifests", "tags", "list", "referrers", "_catalog", "",
                            "sha256:" + "a" * 64, "sha256:zz", "md5:1", "x" * 300, "%2e", "~"])


def test_no_path_or_method_gives_500(tmp_path: Path) -> None:
    with serving(tmp_path / "root") as live:
        live.push_image("a", "v1")

        @settings(max_examples=300, deadline=None)
        @given(st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]),
               st.lists(SEGMENTS, max_size=6), st.sampled_from(["", "?n=x", "?digest=q",
                                                                 "?mount=a&from=..", "?last="]))
        def check(method: str, segments: list[str], query: str) -> None:
            reply = live.client.request(method, "/v2/" + "/".join(segments) + query,
                                        content=b"{}" if method in ("PUT", "PATCH") else None)
            assert reply.status_code < 500, reply.text

        check()


def test_apache_style_2y_hash_is_accepted() -> None:
    import asyncio

    import bcrypt

    from freight.server.auth import BasicAuth

    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"alice": b"$2y$" + hashed[4:]})  # what `htpasswd -B` writes
    header = basic("alice", "secret")["Authorization"]
    assert asyncio.run(auth.user(header)) == "alice"
    assert asyncio.run(auth.user(header)) == "alice"  # the cached path
    assert asyncio.run(auth.user(basic("alice", "nope")["Authorization"])) is None
