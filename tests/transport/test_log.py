"""`--verbose` / `--debug` lines (transport/log.py) through a real client and registry on
loopback: what is printed, and that no secret ever is."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from freight.transport import log

from .stubregistry import StubRegistry

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def level() -> Iterator[None]:
    yield
    log.set_level(log.QUIET)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://r.example/v2/", "https://r.example/v2/"),
    ("https://user:pw@r.example/v2/a?x=1", "https://r.example/v2/a?x=1"),
    ("https://user:p@ss@r.example/v2/", "https://r.example/v2/"),  # an @ in the password
    ("https://r.example/token?service=r&scope=repository:a:pull&access_token=abc",
     "https://r.example/token?service=r&scope=repository:a:pull&access_token=<redacted>"),
    ("https://s3.example/b?X-Amz-Signature=sig1&X-Amz-Credential=c&X-Amz-Date=d",
     "https://s3.example/b?X-Amz-Signature=<redacted>&X-Amz-Credential=<redacted>"
     "&X-Amz-Date=d"),
    ("http://r/v2/a/blobs/uploads/1?_state=abc%2Fdef&digest=sha256:1",
     "http://r/v2/a/blobs/uploads/1?_state=abc/def&digest=sha256:1"),
    ("http://r/p?password=&token=t#frag", "http://r/p?password=<redacted>&token=<redacted>#frag"),
    ("http://r/p?sig=1&Signature=2&secret=3&refresh_token=4&x-goog-signature=5"
     "&x-goog-credential=6&x-amz-security-token=7",
     "http://r/p?sig=<redacted>&Signature=<redacted>&secret=<redacted>"
     "&refresh_token=<redacted>&x-goog-signature=<redacted>&x-goog-credential=<redacted>"
     "&x-amz-security-token=<redacted>"),
])
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert log.redact_url(url) == shown
    assert log.redact_url(httpx.URL(url)) == log.redact_url(url)


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("Authorization", "Bearer eyJabc", "Bearer <redacted>"),
    ("authorization", "Basic dTpw", "Basic <redacted>"),
    ("Authorization", "Bearer two words", "Bearer <redacted>"),
    ("Proxy-Authorization", "Basic dTpw", "Basic <redacted>"),
    ("Authorization", "opaque", "<redacted>"),
    ("Cookie", "session=1; other=2", "<redacted>"),
    ("Set-Cookie", "session=1; Path=/", "<redacted>"),
    ("X-Registry-Auth", "eyJ1 x", "<redacted>"),
    ("X-Amz-Security-Token", "tok en", "<redacted>"),
    ("Content-Type", "application/json", "application/json"),
    ("WWW-Authenticate", 'Bearer realm="x"', 'Bearer realm="x"'),
])
def test_secret_headers_are_redacted(name: str, value: str, shown: str) -> None:
    assert log.redact_header(name, value) == shown


def test_quiet_prints_nothing_and_adds_no_hooks(capsys: pytest.CaptureFixture[str],
                                                level: None) -> None:
    assert log.level() == log.QUIET
    assert log.hooks() == {"request": [], "response": []}
    log.note("decided something")
    assert capsys.readouterr().err == ""


def test_verbose_prints_a_line_per_request_and_answer(capsys: pytest.CaptureFixture[str],
                                                      level: None) -> None:
    stub = StubRegistry()
    try:
        log.set_level(log.VERBOSE)
        assert log.level() == log.VERBOSE
        with httpx.Client(event_hooks=log.hooks()) as client:  # type: ignore[arg-type]
            client.get(f"http://{stub.host}/v2/?token=hunter2",
                       headers={"Authorization": "Bearer hunter2"})
            client.get(f"http://{stub.host}/v2/nothing/here")
        log.note("127.0.0.1 speaks plain HTTP")
    finally:
        stub.stop()
    assert capsys.readouterr().err.splitlines() == [
        f"freight: > GET http://{stub.host}/v2/?token=<redacted>",
        f"freight: < 200 OK GET http://{stub.host}/v2/?token=<redacted>",
        f"freight: > GET http://{stub.host}/v2/nothing/here",
        f"freight: < 404 Not Found GET http://{stub.host}/v2/nothing/here",
        "freight: 127.0.0.1 speaks plain HTTP",
    ]


def test_debug_adds_the_headers_redacted(capsys: pytest.CaptureFixture[str],
                                         level: None) -> None:
    stub = StubRegistry()
    try:
        log.set_level(log.DEBUG)
        with httpx.Client(event_hooks=log.hooks()) as client:  # type: ignore[arg-type]
            client.get(f"http://{stub.host}/v2/", headers={"Authorization": "Bearer hunter2",
                                                           "X-Trace": "t1"})
    finally:
        stub.stop()
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == f"freight: > GET http://{stub.host}/v2/"
    assert "freight:     authorization: Bearer <redacted>" in lines
    assert "freight:     x-trace: t1" in lines
    answer = lines.index(f"freight: < 200 OK GET http://{stub.host}/v2/")
    assert "freight:     content-length: 2" in lines[answer + 1:]
    assert "hunter2" not in err
