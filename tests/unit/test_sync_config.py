"""The sync config and tag filters: every mistake says where it is; every filter kind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from freight.errors import SourceError
from freight.sync import config as cfg
from freight.sync.filters import Filters, Range, Version, select
from freight.sync.rewrite import Rewrite

TAGS = ["latest", "v1.0.0", "v1.1.0", "v1.2.0", "1.2.5", "v2.0.0", "v2.1.0-rc.1", "v2.1.0",
        "dev-x", "sha256-" + "a" * 64, "sha256-" + "a" * 64 + ".sig"]


def test_every_filter_kind() -> None:
    assert select(TAGS, Filters()) == sorted(t for t in TAGS if not t.startswith("sha256-"))
    assert select(TAGS, Filters(tags=("latest", "gone"))) == ["latest", "gone"]
    include = Filters(include=(re.compile(r"^v2"),), exclude=(re.compile("-rc"),))
    assert select(TAGS, include) == ["v2.0.0", "v2.1.0"]
    semver = Filters(semver=Range.parse(">=1.1 <2"))
    assert select(TAGS, semver) == ["1.2.5", "v1.1.0", "v1.2.0"]
    assert select(TAGS, Filters(newest=2)) == ["v2.0.0", "v2.1.0"]
    assert select(TAGS, Filters(tags=("latest",), semver=Range.parse("^1.0"),
                                newest=1)) == ["latest", "1.2.5"]
    assert select(TAGS, Filters(semver=Range.parse("~1.2 || >=2.1.0-rc.0 <2.1.0"))) == \
        ["1.2.5", "v1.2.0", "v2.1.0-rc.1"]


def test_versions_order_pre_releases_first() -> None:
    assert Version.parse("1.0.0-rc.1").key() < Version.parse("1.0.0").key()  # type: ignore[union-attr]
    assert Version.parse("v1.2") == Version(1, 2, 0)
    assert Version.parse("latest") is None
    assert Version.parse("1.2.3.4") is None


def test_rewrite() -> None:
    assert Rewrite("mirror/", "library/").apply("library/nginx") == "mirror/nginx"
    with pytest.raises(SourceError, match="not a valid repository name"):
        Rewrite("Bad/").apply("x")


def _load(tmp_path: Path, text: str) -> cfg.Config:
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    return cfg.load(str(path))


def test_a_full_config(tmp_path: Path) -> None:
    loaded = _load(tmp_path, """
destination: {registry: "127.0.0.1:5001", prefix: mirror/, strip: team/}
jobs: 2
retries: 0
sync:
  - source: 127.0.0.1:5000/team/app
    tags: [latest]
    include: ['^v']
    semver: '>=1 <2'
    newest: 3
    digests: [sha256:%s]
    platform: linux/arm64
  - registry: 127.0.0.1:5000
    repositories: ['^team/']
""" % ("b" * 64))
    first = loaded.entries[0]
    assert (loaded.registry, loaded.jobs, loaded.retries) == ("127.0.0.1:5001", 2, 0)
    assert first.repository == "team/app" and first.filters.newest == 3
    assert [str(p) for p in first.platforms] == ["linux/arm64"]
    assert loaded.entries[1].repository is None
    assert loaded.entries[1].platforms == ()
    assert loaded.rewrite.apply("team/app") == "mirror/app"


def test_several_platforms(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "sync: [{source: a/b, platforms: [linux/amd64, linux/arm64/v8, "
                             "linux/amd64]}]")
    assert [str(p) for p in loaded.entries[0].platforms] == ["linux/amd64", "linux/arm64/v8"]


@pytest.mark.parametrize(("text", "message"), [
    ("sync: [", "not valid YAML at line"),
    ("- a", "must be a mapping"),
    ("sync: []", "non-empty list"),
    ("sync: [{source: a/b, registry: c}]", "sync[0]: give exactly one of"),
    ("sync: [{source: 'a/b:1'}]", "sync[0].source: give the repository only"),
    ("sync: [{source: a/b, semver: '>=x'}]", "sync[0]: bad semver range"),
    ("sync: [{source: a/b, include: ['(']}]", "sync[0].include[0]: bad regular expression"),
    ("sync: [{source: a/b, newest: 0}]", "sync[0].newest"),
    ("sync: [{source: a/b, digests: [sha256:x]}]", "sync[0]: malformed sha256 digest"),
    ("sync: [{source: a/b, platform: linux}]", "sync[0].platform"),
    ("sync: [{source: a/b, platforms: [linux/amd64, x]}]", "sync[0].platforms"),
    ("sync: [{source: a/b, platforms: {a: 1}}]", "sync[0].platforms: must be a list"),
    ("sync: [{source: a/b, platform: linux/amd64, platforms: [linux/arm64]}]",
     "not both"),
    ("sync: [{source: a/b, colour: red}]", "sync[0]: unknown key 'colour'"),
    ("jobs: 0\nsync: [{source: a/b}]", "jobs: must be a whole number of at least 1"),
    ("destination: [1]\nsync: [{source: a/b}]", "destination: give a registry"),
    ("sync: " + "[" * 5000 + "]" * 5000, "not valid YAML (nested too deeply)"),
    ("{\"sync\": " + "[" * 5000 + "]" * 5000 + "}", "not valid YAML (nested too deeply)"),
])
def test_config_errors_say_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourceError, match=re.escape(message)):
        _load(tmp_path, text)


def test_cli_bad_config_is_one_line_and_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sync: [{source: a/b, newest: -1}]")
    done = subprocess.run([sys.executable, "-m", "freight", "sync", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().count("\n") == 0 and "sync[0].newest" in done.stderr


def test_cli_unwritable_bundle_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text("sync: [{source: 127.0.0.1:9/x}]")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([sys.executable, "-m", "freight", "sync", str(path), "--to",
                           str(tmp_path / "missing" / "b.tar")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TMPDIR": str(scratch)})
    assert done.returncode == 3 and "cannot write the bundle" in done.stderr
    assert "internal error" not in done.stderr
    assert list(scratch.iterdir()) == []  # no spool directory left behind


def test_a_json_config_is_read_without_the_yaml_parser(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "sync.json"
    path.write_text('{"destination": "127.0.0.1:5001", "sync": [{"source": "a/b"}]}')
    code = ("import sys; from freight.sync.config import load; "
            f"c = load({str(path)!r}); print(c.registry, 'yaml' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["127.0.0.1:5001", "False"]
