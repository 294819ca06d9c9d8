"""JSON nested deeper than Python's parser goes (a few thousand `[`) from anywhere freight
reads JSON: a registry's listing, manifest, token reply or error body, an archive's
manifest.json, a credentials file. Each is a one-line error with its own exit code, never
an "internal error" (RecursionError is no ValueError)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from freight import jsontext
from freight.distribution.errors import parse_error_body
from freight.errors import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_REGISTRY, SourceError
from freight.manifest import load_json

from .conftest import Run, one_error_line
from .scripted import Scripted, reply

DEPTH = 5_000  # past any recursion limit CPython ships with, under every body cap
DEEP = b"[" * DEPTH + b"]" * DEPTH
DEEP_OBJECT = b'{"a": ' + DEEP + b"}"  # starts like a manifest: passes the first-byte sniff


def test_the_parser_makes_deep_nesting_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.parse(DEEP)
    with pytest.raises(SourceError, match="is not valid JSON"):
        load_json(DEEP_OBJECT, "manifest")
    assert parse_error_body(DEEP_OBJECT) == []
    assert jsontext.parse(b'{"ok": [1]}') == {"ok": [1]}


def _registry(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    def handle(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}", {"Content-Type": "application/json"})
        else:
            answer(handler)

    server = Scripted(handle)
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture
def deep_listing() -> Iterator[str]:
    yield from _registry(lambda h: reply(h, 200, DEEP_OBJECT,
                                         {"Content-Type": "application/json"}))


@pytest.fixture
def deep_manifest() -> Iterator[str]:
    yield from _registry(lambda h: reply(
        h, 200, DEEP_OBJECT, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))


@pytest.fixture
def deep_error() -> Iterator[str]:
    yield from _registry(lambda h: reply(h, 404, DEEP_OBJECT,
                                         {"Content-Type": "application/json"}))


def test_a_deep_listing_is_a_registry_error(freight: Run, deep_listing: str) -> None:
    one_error_line(freight("tags", f"{deep_listing}/team/app"), EXIT_REGISTRY, "not JSON")
    one_error_line(freight("catalog", deep_listing), EXIT_REGISTRY, "not JSON")


def test_a_deep_manifest_is_a_registry_error(freight: Run, deep_manifest: str,
                                             tmp_path: Path) -> None:
    one_error_line(freight("manifest", f"{deep_manifest}/team/app:1"), EXIT_REGISTRY)
    out = tmp_path / "app.tar"
    one_error_line(freight("pull", f"{deep_manifest}/team/app:1", str(out)), EXIT_REGISTRY)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_deep_error_body_still_reads_as_not_found(freight: Run, deep_error: str) -> None:
    one_error_line(freight("manifest", f"{deep_error}/team/app:1"), EXIT_NOT_FOUND)


def test_a_deep_token_reply_is_an_auth_error(freight: Run) -> None:
    def handle(handler: BaseHTTPRequestHandler) -> None:
        host = handler.headers["Host"]
        if handler.path.startswith("/token"):
            reply(handler, 200, DEEP_OBJECT, {"Content-Type": "application/json"})
        else:
            reply(handler, 401, b"{}", {
                "Content-Type": "application/json",
                "WWW-Authenticate": f'Bearer realm="http://{host}/token",service="x"'})

    server = Scripted(handle)
    try:
        one_error_line(freight("tags", f"{server.host}/team/app"), EXIT_AUTH)
    finally:
        server.stop()


def test_a_deep_docker_archive_manifest_is_bad_input(freight: Run, tmp_path: Path) -> None:
    archive = tmp_path / "deep.tar"
    body = tmp_path / "manifest.json"
    body.write_bytes(DEEP)
    with tarfile.open(archive, "w") as tar:
        tar.add(body, "manifest.json")
    one_error_line(freight("push", str(archive), "127.0.0.1:9/team/app:1"), EXIT_BAD_INPUT,
                   "manifest.json is not valid JSON")


def test_a_deep_credentials_file_is_an_auth_error(freight: Run, tmp_path: Path,
                                                   deep_listing: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_bytes(DEEP_OBJECT)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    one_error_line(freight("login", deep_listing, "--username", "u", "--password-stdin",
                           input="p\n"), EXIT_AUTH, "credentials file")
