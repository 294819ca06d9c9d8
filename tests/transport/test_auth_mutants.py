"""The auth flow's details (src/freight/transport/auth.py) against a scripted token server on
loopback: what a token request carries, how a token's answer is read (field names,
lifetimes, issued_at, refusals), the downgrade refused, and which requests get an
Authorization header at all. The clock is injected: no waiting. Written against mutation
testing of the module; test_auth.py has the flows against a real token server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from freight.errors import AuthError, RegistryError
from freight.transport.auth import (
    CLIENT_ID,
    DEFAULT_TOKEN_LIFETIME,
    MAX_TOKEN_BODY,
    MIN_TOKEN_LIFETIME,
    REFRESH_MARGIN,
    RegistryAuth,
)
from freight.transport.capped import CappedTransport
from freight.transport.credentials import Credentials

pytestmark = pytest.mark.timeout(20)

ORIGIN = "http://registry.test:5000"
ALICE = Credentials("alice", "wonderland")
SCOPE = "repository:team/app:pull,push"


@dataclass
class Asked:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Scripted:
    """A token server answering each request with the next of `replies` (the last one
    again when they run out); `asked` records every request."""

    replies: list[tuple[int, object]] = field(default_factory=lambda: [(200, {"token": "t"})])
    asked: list[Asked] = field(default_factory=list)

    def __post_init__(self) -> None:
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                script.asked.append(Asked(self.command, parts.path,
                                          parse_qsl(parts.query, keep_blank_values=True),
                                          {k.lower(): v for k, v in self.headers.items()},
                                          dict(parse_qsl(body))))
                status, reply = script.replies[min(len(script.asked),
                                                   len(script.replies)) - 1]
                if status in (301, 302, 307):
                    self.send_response(status)
                    self.send_header("Location", str(reply))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def tokens() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(path: str = "/v2/team/app/blobs/uploads/", origin: str = ORIGIN) -> httpx.Request:
    return httpx.Request("POST", origin + path, content=b"body")


def _challenge(header: str, request: httpx.Request | None = None) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": header},
                          request=request or _request())


def _bearer(tokens: Scripted, creds: Credentials | None = ALICE, *, service: str = "svc",
            clock: Clock | None = None, origin: str = ORIGIN) -> RegistryAuth:
    auth = RegistryAuth(creds, origin=origin, clock=clock or Clock())
    auth.want(SCOPE)
    extra = f',service="{service}"' if service else ""
    assert auth.learn(_challenge(f'Bearer realm="{tokens.realm}"{extra}'), _request(), None)
    return auth


# -- what a token request carries -------------------------------------------------------


def test_a_token_get_carries_service_scopes_account_and_basic(tokens: Scripted) -> None:
    auth = _bearer(tokens)
    auth.want("repository:lib/base:pull")
    assert auth.header_for(_request()) == "Bearer t"
    (asked,) = tokens.asked
    assert (asked.method, asked.path) == ("GET", "/token")
    assert asked.query == [("service", "svc"), ("scope", "repository:lib/base:pull"),
                           ("scope", SCOPE), ("account", "alice")]
    assert asked.headers["authorization"] == ALICE.basic()
    assert auth.tokens_fetched == 1
    assert auth.scopes() == {SCOPE, "repository:lib/base:pull"}


def test_an_anonymous_token_get_carries_no_account(tokens: Scripted) -> None:
    auth = _bearer(tokens, creds=None, service="")
    auth.header_for(_request())
    (asked,) = tokens.asked
    assert asked.query == [("scope", SCOPE)]
    assert "authorization" not in asked.headers


def test_a_user_without_a_password_asks_anonymously(tokens: Scripted) -> None:
    auth = _bearer(tokens, creds=Credentials("alice", ""))
    auth.header_for(_request())
    assert "authorization" not in tokens.asked[0].headers
    assert ("account", "alice") not in tokens.asked[0].query


def test_an_identity_token_posts_the_oauth_form(tokens: Scripted) -> None:
    auth = _bearer(tokens, creds=Credentials("<token>", "", identity_token="rt-1"))
    auth.want("repository:a/b:pull")
    assert auth.header_for(_request()) == "Bearer t"
    (asked,) = tokens.asked
    assert asked.method == "POST"
    assert asked.form == {"grant_type": "refresh_token", "refresh_token": "rt-1",
                          "service": "svc", "client_id": CLIENT_ID,
                          "scope": f"repository:a/b:pull {SCOPE}"}
    assert CLIENT_ID == "freight"


def test_an_oauth_refusal_other_than_404_is_not_retried_as_get(tokens: Scripted) -> None:
    tokens.replies = [(401, {"error": "invalid_grant"}), (200, {"token": "t"})]
    auth = _bearer(tokens, creds=Credentials("<token>", "", identity_token="rt-1"))
    with pytest.raises(AuthError, match="refused the credentials"):
        auth.header_for(_request())
    assert [a.method for a in tokens.asked] == ["POST"]


def test_an_oauth_404_falls_back_to_a_get(tokens: Scripted) -> None:
    tokens.replies = [(404, {}), (200, {"token": "t"})]
    auth = _bearer(tokens, creds=Credentials("u", "p", identity_token="rt-1"))
    assert auth.header_for(_request()) == "Bearer t"
    assert [a.method for a in tokens.asked] == ["POST", "GET"]
    assert tokens.asked[1].headers["authorization"] == Credentials("u", "p").basic()


def test_a_token_server_redirect_is_followed(tokens: Scripted) -> None:
    tokens.replies = [(307, tokens.realm + "2"), (200, {"token": "moved"})]
    assert _bearer(tokens).header_for(_request()) == "Bearer moved"
    assert [a.path for a in tokens.asked] == ["/token", "/token2"]


def test_a_registry_token_is_sent_as_is(tokens: Scripted) -> None:
    auth = _bearer(tokens, creds=Credentials("", "", registry_token="rt"))
    assert auth.header_for(_request()) == "Bearer rt"
    assert tokens.asked == []


# -- how an answer is read --------------------------------------------------------------


@pytest.mark.parametrize(("reply", "token"), [
    ({"token": "a"}, "a"), ({"access_token": "b"}, "b"),
    ({"access_token": "c", "token": "d"}, "c"), ({"access_token": "", "token": "e"}, "e")])
def test_either_token_field_is_read(tokens: Scripted, reply: dict[str, str],
                                    token: str) -> None:
    tokens.replies = [(200, reply)]
    assert _bearer(tokens).header_for(_request()) == f"Bearer {token}"


def _fetches_after(tokens: Scripted, reply: dict[str, Any], seconds: float) -> int:
    tokens.replies = [(200, reply)]
    clock = Clock()
    auth = _bearer(tokens, clock=clock)
    auth.header_for(_request())
    clock.now += seconds
    auth.header_for(_request())
    return auth.tokens_fetched


@pytest.mark.parametrize(("reply", "kept_for"), [
    ({"token": "t"}, DEFAULT_TOKEN_LIFETIME - REFRESH_MARGIN),
    ({"token": "t", "expires_in": 0}, DEFAULT_TOKEN_LIFETIME - REFRESH_MARGIN),
    ({"token": "t", "expires_in": 300}, 300 - REFRESH_MARGIN),
    ({"token": "t", "expires_in": "300"}, 300 - REFRESH_MARGIN),
    ({"token": "t", "expires_in": 5}, MIN_TOKEN_LIFETIME - REFRESH_MARGIN),
])
def test_a_token_is_kept_for_its_lifetime_less_the_margin(tokens: Scripted,
                                                          reply: dict[str, Any],
                                                          kept_for: float) -> None:
    assert _fetches_after(tokens, reply, kept_for - 0.5) == 1
    tokens.asked.clear()
    assert _fetches_after(tokens, reply, kept_for + 0.5) == 2
    tokens.asked.clear()
    assert _fetches_after(tokens, reply, kept_for) == 2  # renewed at the moment it is due


def _issued(seconds_ago: float) -> str:
    stamp = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_token_issued_a_while_ago_is_renewed_sooner(tokens: Scripted) -> None:
    reply = {"token": "t", "expires_in": 300, "issued_at": _issued(200)}
    assert _fetches_after(tokens, reply, 80) == 1  # ~100 s left, less the margin
    assert _fetches_after(tokens, reply, 95) == 2


def test_a_token_issued_long_ago_is_still_used_once(tokens: Scripted) -> None:
    reply = {"token": "t", "expires_in": 300, "issued_at": _issued(10_000)}
    assert _fetches_after(tokens, reply, 0.5) == 1  # at least a second to use it
    assert _fetches_after(tokens, reply, 1.5) == 2


@pytest.mark.parametrize("issued", ["yesterday", 12345, None])
def test_an_issued_at_that_is_no_time_is_ignored(tokens: Scripted, issued: object) -> None:
    reply = {"token": "t", "expires_in": 300, "issued_at": issued}
    assert _fetches_after(tokens, reply, 280) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_says_so_with_its_status(tokens: Scripted, status: int) -> None:
    tokens.replies = [(status, {})]
    with pytest.raises(AuthError, match=rf"^the token server http://127\.0\.0\.1:\d+ refused "
                                        rf"the credentials \(HTTP {status}\); check the user "
                                        r"name and password, or run freight login$") as caught:
        _bearer(tokens).header_for(_request())
    assert caught.value.status == status
    assert "/token" not in str(caught.value)  # the server is named, never its query


@pytest.mark.parametrize(("status", "reply"), [
    (500, {"token": "t"}), (200, {}), (200, {"token": 7}), (200, b"not json"),
    (200, ["token"]), (200, {"token": "t", "expires_in": "soon"})])
def test_an_answer_without_a_token_says_so(tokens: Scripted, status: int,
                                           reply: object) -> None:
    tokens.replies = [(status, reply)]
    with pytest.raises(AuthError, match=rf"^the token server http://127\.0\.0\.1:\d+ gave no "
                                        rf"token \(HTTP {status}\)$") as caught:
        _bearer(tokens).header_for(_request())
    assert caught.value.status == status


def test_a_token_answer_is_read_up_to_a_cap(tokens: Scripted) -> None:
    tokens.replies = [(200, b'{"token": "' + b"a" * (MAX_TOKEN_BODY + 1) + b'"}')]
    capped = httpx.Client(transport=CappedTransport(httpx.HTTPTransport()))
    auth = RegistryAuth(ALICE, origin=ORIGIN, token_http=capped)
    auth.learn(_challenge(f'Bearer realm="{tokens.realm}"'), _request(), None)
    with pytest.raises(RegistryError, match=rf"sent more than {MAX_TOKEN_BODY} bytes"):
        auth.header_for(_request())
    capped.close()


def test_a_token_server_that_is_down_is_named(tokens: Scripted) -> None:
    realm = tokens.realm
    tokens.stop()
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    auth.learn(_challenge(f'Bearer realm="{realm}?x=secret"'), _request(), None)
    with pytest.raises(AuthError, match=rf"^cannot reach the token server "
                                        rf"{realm.removesuffix('/token')}: ConnectError: ") as e:
        auth.header_for(_request())
    assert "secret" not in str(e.value)


def test_a_challenge_without_a_realm_is_refused() -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    auth.learn(_challenge('Bearer service="svc"'), _request(), None)
    with pytest.raises(AuthError, match=r"^the registry asked for a token but named no token "
                                        r"server \(realm\)$"):
        auth.header_for(_request())


def test_credentials_never_go_to_a_plain_http_token_server_of_an_https_registry(
        tokens: Scripted) -> None:
    auth = _bearer(tokens, origin="https://registry.test")
    with pytest.raises(AuthError, match=r"^the registry https://registry\.test speaks HTTPS "
                                        r"but names a plain-HTTP token server "
                                        r"\(http://127\.0\.0\.1:\d+\); freight will not send "
                                        r"credentials there unencrypted"):
        auth.header_for(_request(origin="https://registry.test"))
    assert tokens.asked == []
    anonymous = _bearer(tokens, creds=None, origin="https://registry.test")
    assert anonymous.header_for(_request(origin="https://registry.test")) == "Bearer t"


# -- which requests carry Authorization -------------------------------------------------


def test_no_challenge_yet_means_no_header() -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    assert auth.header_for(_request()) is None
    flow = auth.auth_flow(_request())
    assert "Authorization" not in next(flow).headers


def test_a_basic_challenge_without_a_password_sends_nothing() -> None:
    auth = RegistryAuth(Credentials("alice", ""), origin=ORIGIN)
    assert auth.learn(_challenge('Basic realm="r"'), _request(), None) is True
    assert auth.header_for(_request()) is None
    anonymous = RegistryAuth(None, origin=ORIGIN)
    assert anonymous.learn(_challenge('Basic realm="r"'), _request(), None) is False


def test_the_flow_answers_a_401_once_and_sends_the_request_again(tokens: Scripted) -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    auth.want(SCOPE)
    request = _request()
    flow = auth.auth_flow(request)
    first = next(flow)
    assert "Authorization" not in first.headers
    again = flow.send(_challenge(f'Bearer realm="{tokens.realm}"', request))
    assert again.headers["Authorization"] == "Bearer t"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200, request=request))


def test_the_flow_drops_a_refused_token_and_sends_a_new_one(tokens: Scripted) -> None:
    tokens.replies = [(200, {"token": "old"}), (200, {"token": "new"})]
    auth = _bearer(tokens)
    request = _request()
    flow = auth.auth_flow(request)
    assert next(flow).headers["Authorization"] == "Bearer old"
    refused = _challenge(f'Bearer realm="{tokens.realm}",service="svc",error="invalid_token"',
                         request)
    assert flow.send(refused).headers["Authorization"] == "Bearer new"


def test_a_wider_scope_is_a_reason_to_retry(tokens: Scripted) -> None:
    auth = _bearer(tokens)
    wider = _challenge(f'Bearer realm="{tokens.realm}",service="svc",'
                       'scope="repository:team/app:delete"')
    assert auth.learn(wider, _request(), None) is True
    assert "repository:team/app:delete" in auth.scopes()
    assert auth.learn(wider, _request(), None) is False  # nothing new the second time


def test_an_oauth_refusal_names_the_token_server(tokens: Scripted) -> None:
    tokens.replies = [(403, {})]
    auth = _bearer(tokens, creds=Credentials("<token>", "", identity_token="rt-1"))
    with pytest.raises(AuthError, match=r"^the token server http://127\.0\.0\.1:\d+ refused "):
        auth.header_for(_request())


def test_a_challenge_of_no_known_scheme_is_not_answered() -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    request = _request()
    flow = auth.auth_flow(request)
    next(flow)
    with pytest.raises(StopIteration):
        flow.send(_challenge('Negotiate realm="r"', request))
    assert auth.learn(_challenge('Negotiate realm="r"'), request, None) is False


def test_a_streamed_body_is_not_replayed_here(tokens: Scripted) -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    request = httpx.Request("PUT", ORIGIN + "/v2/team/app/blobs/uploads/x",
                            content=iter([b"chunk"]))
    flow = auth.auth_flow(request)
    next(flow)
    with pytest.raises(StopIteration):
        flow.send(_challenge(f'Bearer realm="{tokens.realm}"', request))
    assert auth.header_for(_request()) is None  # nothing learnt: the caller learns it


def test_a_401_from_a_redirect_elsewhere_is_not_answered(tokens: Scripted) -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    request = _request()
    flow = auth.auth_flow(request)
    next(flow)
    storage = httpx.Request("GET", "http://storage.test/blob")
    with pytest.raises(StopIteration):
        flow.send(_challenge(f'Bearer realm="{tokens.realm}"', storage))
    assert auth.header_for(_request()) is None


def test_bearer_wins_over_basic_when_both_are_offered(tokens: Scripted) -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    header = f'Basic realm="r", Bearer realm="{tokens.realm}",service="svc"'
    assert auth.learn(_challenge(header), _request(), None) is True
    assert auth.header_for(_request()) == "Bearer t"
    split = httpx.Response(401, request=_request(), headers=[
        ("WWW-Authenticate", 'Basic realm="r"'),
        ("WWW-Authenticate", f'Bearer realm="{tokens.realm}"')])
    other = RegistryAuth(ALICE, origin=ORIGIN)
    assert other.learn(split, _request(), None) is True
    assert other.header_for(_request()) == "Bearer t"


def test_learning_the_same_bearer_challenge_again_is_no_reason_to_retry(
        tokens: Scripted) -> None:
    auth = _bearer(tokens)
    sent = auth.header_for(_request())
    same = _challenge(f'Bearer realm="{tokens.realm}",service="svc"')
    assert auth.learn(same, _request(), "Bearer another") is False
    assert auth.learn(same, _request(), sent) is True  # that token was refused: drop it


def test_a_basic_challenge_after_a_bearer_one_switches_scheme(tokens: Scripted) -> None:
    auth = _bearer(tokens)
    assert auth.learn(_challenge('Basic realm="r"'), _request(), None) is True
    assert auth.header_for(_request()) == ALICE.basic()


def test_the_credential_source_is_kept_and_looked_up_once() -> None:
    calls: list[int] = []

    def source() -> Credentials | None:
        calls.append(1)
        return None

    auth = RegistryAuth(source, origin=ORIGIN)
    assert auth.source is source
    assert auth.credentials is None and auth.credentials is None
    assert calls == [1]
    fixed = RegistryAuth(ALICE, origin=ORIGIN)
    assert fixed.source() == ALICE and fixed.credentials == ALICE
