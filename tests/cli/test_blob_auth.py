"""`freight blob get/put` and `freight auth token`."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from freight.errors import EXIT_REGISTRY, EXIT_USAGE

from .conftest import Run, Served, one_error_line
from .scripted import Scripted, reply


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_then_get(freight: Run, plain: Served, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    put = freight("blob", "put", f"{plain.host}/team/app", str(source))
    assert put.exit_code == 0, put.stderr
    assert put.stdout.strip() == sha(data)
    again = json.loads(freight("blob", "put", f"{plain.host}/team/app", str(source),
                               "--json").stdout)
    assert again == {"digest": sha(data), "size": len(data), "uploaded": False}
    out = tmp_path / "copy.bin"
    got = freight("blob", "get", f"{plain.host}/team/app@{sha(data)}", "-o", str(out))
    assert got.exit_code == 0, got.stderr
    assert out.read_bytes() == data
    piped = freight("blob", "get", f"{plain.host}/team/app@{sha(data)}")
    assert piped.stdout_bytes == data


def test_get_needs_a_digest(freight: Run) -> None:
    one_error_line(freight("blob", "get", "127.0.0.1:5999/team/app:1"), EXIT_USAGE,
                   "REPO@sha256:")


def test_damaged_blob_leaves_nothing(freight: Run, tmp_path: Path) -> None:
    good = b"the real bytes"

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            reply(h, 200, b"{}")
        else:
            reply(h, 200, b"other bytes!!!", {"Content-Type": "application/octet-stream"})

    server = Scripted(handle)
    out = tmp_path / "blob.bin"
    try:
        one_error_line(freight("blob", "get", f"{server.host}/team/app@{sha(good)}", "-o",
                               str(out)), EXIT_REGISTRY, "damaged")
    finally:
        server.stop()
    assert list(tmp_path.iterdir()) == []


def test_auth_token(freight: Run) -> None:
    scopes: list[str] = []

    def tokens(h: BaseHTTPRequestHandler) -> None:
        scopes.extend(parse_qs(urlsplit(h.path).query).get("scope", []))
        reply(h, 200, json.dumps({"token": "tok-123", "expires_in": 300}).encode())

    token_server = Scripted(tokens)

    def registry(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == "Bearer tok-123":
            reply(h, 200, b"{}")
        else:
            reply(h, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://'
                                  f'{token_server.host}/token",service="reg"'})

    server = Scripted(registry)
    try:
        pulled = freight("auth", "token", f"{server.host}/team/app")
        pushed = freight("auth", "token", f"{server.host}/team/app", "--push")
    finally:
        server.stop()
        token_server.stop()
    assert pulled.exit_code == 0, pulled.stderr
    assert pulled.stdout.strip() == "tok-123" and pushed.stdout.strip() == "tok-123"
    assert "repository:team/app:pull" in scopes
    assert "repository:team/app:pull,push" in scopes


def test_auth_token_on_an_open_registry(freight: Run, plain: Served) -> None:
    one_error_line(freight("auth", "token", f"{plain.host}/team/app"), EXIT_USAGE,
                   "no token")
