"""What a user sees when something is wrong: one line on stderr, no traceback, and an exit
code per kind of failure (2 usage, 4 registry, 5 network, 7 not found).

The real `freight` command runs in a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from inspect_support import PushedIndex, Target, push_index, start_served, stop

import freight
from freight.errors import (
    EXIT_NETWORK,
    EXIT_NOT_FOUND,
    EXIT_REGISTRY,
    EXIT_USAGE,
    RegistryError,
)
from support.freightcli import FreightRun, UserDirs, run_freight
from support.procs import free_port

UNKNOWN_DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def dirs(tmp_path: Path) -> UserDirs:
    return UserDirs.under(tmp_path / "user")


@pytest.fixture
def run(dirs: UserDirs) -> Callable[..., FreightRun]:
    def freight_cli(*args: str) -> FreightRun:
        return run_freight(*args, dirs=dirs)

    return freight_cli


def assert_fails(result: FreightRun, code: int, *words: str) -> None:
    """Exit `code`, exactly one line on stderr naming `words`, nothing on stdout."""
    assert result.returncode == code, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("freight: error: "), result.describe()
    for word in words:
        assert word in lines[0], result.describe()
    assert result.stdout == "", result.describe()


@pytest.fixture
def pushed(archive: Path, target: Target, repo: str) -> str:
    freight.push(str(archive), f"{target.host}/{repo}:1")
    return f"{target.host}/{repo}"


def test_unknown_repository(run: Callable[..., FreightRun], target: Target) -> None:
    assert_fails(run("tags", f"{target.host}/no/such/repo"), EXIT_NOT_FOUND, "NAME_UNKNOWN")
    assert_fails(run("manifest", f"{target.host}/no/such/repo:1"), EXIT_NOT_FOUND,
                 "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("command", ["manifest", "config", "digest", "tag", "delete"])
def test_unknown_tag(run: Callable[..., FreightRun], pushed: str, command: str) -> None:
    extra = ["new"] if command == "tag" else []
    assert_fails(run(command, f"{pushed}:nope", *extra), EXIT_NOT_FOUND, "nope")


@pytest.mark.parametrize("command", ["manifest", "config", "digest", "tag", "delete"])
def test_unknown_digest(run: Callable[..., FreightRun], pushed: str, command: str) -> None:
    extra = ["new"] if command == "tag" else []
    assert_fails(run(command, f"{pushed}@{UNKNOWN_DIGEST}", *extra), EXIT_NOT_FOUND)


def test_platform_missing_from_an_index(run: Callable[..., FreightRun], target: Target,
                                        repo: str) -> None:
    index: PushedIndex = push_index(target, repo)
    assert_fails(run("digest", index.reference, "--platform", "linux/riscv64"),
                 EXIT_USAGE, "linux/riscv64", "linux/amd64, linux/arm64")


@pytest.mark.parametrize("args", [
    ["tags", "127.0.0.1:5000/app:1"],  # a tag where a repository is wanted
    ["catalog", "127.0.0.1:5000/app"],  # a repository where a registry is wanted
    ["manifest", "127.0.0.1:5000/App:1"],  # upper case is not a repository name
    ["digest", "127.0.0.1:5000/app@sha256:short"],
    ["tag", "127.0.0.1:5000/app:1", "bad/tag"],
    ["manifest", "127.0.0.1:5000/app:1", "--raw", "--json"],
    ["tags", "127.0.0.1:5000/app", "--limit", "0"],
])
def test_usage_errors(run: Callable[..., FreightRun], args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == EXIT_USAGE, result.describe()
    assert "Traceback" not in result.stderr


def test_registry_not_running(run: Callable[..., FreightRun]) -> None:
    host = f"127.0.0.1:{free_port()}"
    for args in (["tags", f"{host}/app"], ["catalog", host], ["delete", f"{host}/app:1"]):
        assert_fails(run(*args), EXIT_NETWORK, "cannot connect", host)


def test_deletes_disabled(run: Callable[..., FreightRun], tmp_path: Path) -> None:
    proc, target = start_served(tmp_path / "root", "--read-only")
    try:
        for ref in (f"{target.host}/app:1", f"{target.host}/app@{UNKNOWN_DIGEST}"):
            assert_fails(run("delete", ref), EXIT_REGISTRY, "does not allow deletes",
                         "UNSUPPORTED")
    finally:
        stop(proc)


# -- registries that send bad pagination links ---------------------------------------------

class _Listing(BaseHTTPRequestHandler):
    """Every tags page says the next page is `link` (set per server)."""

    link = ""

    def do_GET(self) -> None:
        body = json.dumps({"name": "app", "tags": ["a"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Link", f'<{self.link}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def listing_server() -> Iterator[Callable[[str], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(link: str) -> str:
        handler = type("Handler", (_Listing,), {"link": link})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_link_that_loops_is_not_followed_forever(
        listing_server: Callable[[str], str]) -> None:
    host = listing_server("/v2/app/tags/list?n=1&last=a")
    with pytest.raises(RegistryError, match="same next-page link twice"):
        freight.tags(f"{host}/app")


def test_a_link_to_another_host_is_not_followed(listing_server: Callable[[str], str]) -> None:
    host = listing_server("http://127.0.0.2:9/v2/app/tags/list?last=a")
    with pytest.raises(RegistryError, match="another host"):
        freight.tags(f"{host}/app")
