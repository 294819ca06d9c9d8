"""Credentials from the command line (--creds, one per side of a copy), from a file of
one's choice (--authfile) and from DOCKER_AUTH_CONFIG, which wins over config files."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import click
import pytest
from click.testing import CliRunner

from freight.cli.options import copy_connection_options
from freight.connect import Connection
from freight.errors import EXIT_AUTH, EXIT_USAGE
from freight.server.auth import BasicAuth

from .conftest import Run, Served, one_error_line, serving


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Served]:
    users = {"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))}
    with serving(tmp_path / "root", auth=BasicAuth(users)) as served:
        yield served


def auth_config(host: str, user: str, password: str) -> dict[str, object]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {host: {"auth": token}}}


def seeded(served: Served) -> None:
    import httpx

    with served.http() as client:
        client.auth = httpx.BasicAuth("alice", "secret")
        seed_with(client)


def seed_with(client: object) -> None:
    """conftest.seed, through an authenticated client."""
    import hashlib

    import httpx

    assert isinstance(client, httpx.Client)
    data = b"{}"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post("/v2/team/app/blobs/uploads/")
    client.put(started.headers["location"], params={"digest": digest}, content=data)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest, "size": 2}, "layers": []}).encode()
    reply = client.put("/v2/team/app/manifests/1", content=manifest,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert reply.status_code == 201, reply.text


def test_creds_with_password(freight: Run, guarded: Served) -> None:
    seeded(guarded)
    one_error_line(freight("tags", f"{guarded.host}/team/app"), EXIT_AUTH, "--creds")
    result = freight("tags", f"{guarded.host}/team/app", "--creds", "alice:secret")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["1"]


def test_creds_without_password_reads_stdin(freight: Run, guarded: Served) -> None:
    seeded(guarded)
    result = freight("tags", f"{guarded.host}/team/app", "--creds", "alice", input="secret\n")
    assert result.exit_code == 0, result.stderr
    wrong = freight("tags", f"{guarded.host}/team/app", "--creds", "alice", input="nope\n")
    assert wrong.exit_code == EXIT_AUTH


def test_creds_conflicts_with_username(freight: Run) -> None:
    result = freight("tags", "127.0.0.1:1/team/app", "--creds", "a:b", "-u", "a",
                     "--password-stdin", input="b\n")
    assert result.exit_code == EXIT_USAGE and "give one" in result.stderr


def test_authfile_is_the_only_file_read(freight: Run, guarded: Served, tmp_path: Path) -> None:
    seeded(guarded)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps(auth_config(guarded.host, "alice", "secret")))
    result = freight("tags", f"{guarded.host}/team/app", "--authfile", str(authfile))
    assert result.exit_code == 0, result.stderr
    one_error_line(freight("tags", f"{guarded.host}/team/app", "--authfile",
                           str(tmp_path / "missing.json")), EXIT_AUTH, "missing.json")


def test_docker_auth_config_wins_over_files(freight: Run, guarded: Served, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(guarded)
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    (config / "config.json").write_text(json.dumps(auth_config(guarded.host, "alice", "bad")))
    assert freight("tags", f"{guarded.host}/team/app").exit_code == EXIT_AUTH
    monkeypatch.setenv("DOCKER_AUTH_CONFIG",
                       json.dumps(auth_config(guarded.host, "alice", "secret")))
    result = freight("tags", f"{guarded.host}/team/app")
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", "{not json")
    one_error_line(freight("tags", f"{guarded.host}/team/app"), EXIT_AUTH,
                   "DOCKER_AUTH_CONFIG is not JSON")


@click.command()
@copy_connection_options
def _two_sides(source_connection: Connection, connection: Connection) -> None:
    """What `freight copy` gets: one Connection per side."""
    click.echo(json.dumps({"src": [source_connection.username, source_connection.password],
                           "dest": [connection.username, connection.password],
                           "insecure": [source_connection.insecure, connection.insecure]}))


@pytest.mark.parametrize(("args", "stdin", "src", "dest"), [
    (["--src-creds", "a:1", "--dest-creds", "b:2"], None, ["a", "1"], ["b", "2"]),
    (["--creds", "c:3", "--dest-creds", "b:2"], None, ["c", "3"], ["b", "2"]),
    (["--src-creds", "a"], "pw\n", ["a", "pw"], [None, None]),
    (["--tls-verify=false", "--src-creds", "a:1"], None, ["a", "1"], [None, None]),
])
def test_each_side_has_its_credentials(args: list[str], stdin: str | None, src: list[str],
                                       dest: list[str | None]) -> None:
    result = CliRunner().invoke(_two_sides, args, input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["src"] == src and shown["dest"] == dest
    assert shown["insecure"] == [("--tls-verify=false" in args)] * 2
