"""Typos and near-misses get a sentence that fixes them: URLs and docker:// references,
a local file given where a reference goes, a missing tag, a failed login, a --platform
that matches nothing."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from freight.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE
from freight.server.auth import BasicAuth

from .conftest import Run, Served, one_error_line, seed, serving


def test_docker_scheme_is_accepted_everywhere(freight: Run, plain: Served) -> None:
    digest = seed(plain, "team/app", "1")
    for args in (("digest", f"docker://{plain.host}/team/app:1"),
                 ("tags", f"docker://{plain.host}/team/app"),
                 ("catalog", f"docker://{plain.host}")):
        result = freight(*args)
        assert result.exit_code == 0, (args, result.stderr)
    assert freight("digest", f"docker://{plain.host}/team/app:1").stdout.strip() == digest
    tagged = freight("tag", f"docker://{plain.host}/team/app:1", "2")
    assert tagged.exit_code == 0, tagged.stderr


@pytest.mark.parametrize("command", ["manifest", "tags", "tag", "delete"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_url_gets_the_fix_suggested(freight: Run, command: str, scheme: str) -> None:
    extra = ["2"] if command == "tag" else []
    line = one_error_line(freight(command, f"{scheme}://127.0.0.1:5999/team/app", *extra),
                          EXIT_USAGE, "is a URL", "'127.0.0.1:5999/team/app'")
    assert "invalid registry host" not in line


def test_catalog_url_gets_the_fix(freight: Run) -> None:
    one_error_line(freight("catalog", "http://127.0.0.1:5999"), EXIT_USAGE, "'127.0.0.1:5999'")


def test_local_archive_never_goes_to_docker_hub(freight: Run, archive: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(archive.parent)
    shown = freight("-v", "manifest", "app.tar")
    assert shown.exit_code == 0, shown.stderr
    assert "docker.io" not in shown.stderr and "docker.io" not in shown.stdout
    one_error_line(freight("tag", "app.tar", "v2"), EXIT_USAGE, "local path", "docker://app.tar")


def test_missing_tag_names_the_tags_there_are(freight: Run, plain: Served) -> None:
    seed(plain, "team/app", "1")
    seed(plain, "team/app", "2")
    one_error_line(freight("manifest", f"{plain.host}/team/app"), EXIT_NOT_FOUND,
                   "no tag 'latest'", ":latest", "it has: 1, 2")
    one_error_line(freight("config", f"{plain.host}/team/app:3"), EXIT_NOT_FOUND,
                   "no tag '3'", "it has: 1, 2")
    one_error_line(freight("digest", f"{plain.host}/team/nothing:1"), EXIT_NOT_FOUND,
                   "does not exist", f"freight catalog {plain.host}")


def test_failed_login_does_not_say_run_login(freight: Run, tmp_path: Path) -> None:
    users = {"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))}
    with serving(tmp_path / "root", auth=BasicAuth(users)) as served:
        line = one_error_line(freight("login", served.host, "-u", "alice", "--password-stdin",
                                      input="wrong\n"),
                              EXIT_AUTH, "login failed", "'alice'", "nothing was saved")
    assert "freight login" not in line
    assert not (tmp_path / "docker-config" / "config.json").exists()


def test_platform_matching_nothing_lists_what_there_is(freight: Run, plain: Served) -> None:
    seed(plain, "team/app", "1", arch="arm64")
    for command in ("manifest", "config", "digest"):
        one_error_line(freight(command, f"{plain.host}/team/app:1", "--platform",
                               "linux/amd64"), EXIT_USAGE, "linux/arm64", "not linux/amd64")
    ok = freight("digest", f"{plain.host}/team/app:1", "--platform", "linux/arm64")
    assert ok.exit_code == 0, ok.stderr
