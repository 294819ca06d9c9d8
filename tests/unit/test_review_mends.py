"""Three mends from the mutation helper's notes: a dangling symbolic link as an archive
output needs --force like any existing name; a layout write that fails leaves no temporary
file; the embedded registry answers a proxy's absolute-form request line."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from freight.connect import Connection
from freight.engine.destinations import open_destination
from freight.errors import UsageError
from freight.locations import parse_location
from freight.results import Action
from freight.server.exchange import origin_form
from freight.sinks import layout
from freight.testing import serve_in_thread


def test_a_dangling_symlink_as_an_archive_is_replaced_only_with_force(tmp_path: Path) -> None:
    link = tmp_path / "app.tar"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="exists: give another name, or --force"):
        open_destination(parse_location(f"docker-archive:{link}"), connection=Connection(),
                         chunk_size=None, jobs=1, force=False, stored=Action.WRITTEN)
    assert link.is_symlink()


def test_a_failed_layout_write_leaves_no_temporary_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(layout.os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        layout._write(tmp_path / "index.json", b"{}")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("target", "path"), [
    ("http://registry.test:5000/v2/", "/v2/"), ("https://r.test/v2/a/tags/list", "/v2/a/tags/list"),
    ("http://r.test", "/"), ("/v2/", "/v2/"), ("/v2/http://x", "/v2/http://x")])
def test_the_origin_form_of_a_request_target(target: str, path: str) -> None:
    assert origin_form(target) == path


def test_the_registry_answers_an_absolute_form_request_line() -> None:
    with serve_in_thread() as registry:
        host, port = registry.host.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(f"GET http://registry.test:{port}/v2/ HTTP/1.1\r\n"
                         f"Host: registry.test:{port}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_an_atomic_write_is_whole_private_when_asked_and_leaves_nothing_on_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from freight.atomic import write_atomically

    target = tmp_path / "config.json"
    write_atomically(target, b"secret", private=True)
    assert target.read_bytes() == b"secret" and target.stat().st_mode & 0o077 == 0

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, b"other")
    assert target.read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
