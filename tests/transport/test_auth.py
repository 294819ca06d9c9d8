"""The Bearer/Basic flow against a real token server on loopback (support/tokenserver.py);
the clock is injected, so token expiry needs no waiting."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from freight.errors import AuthError
from freight.transport.auth import RegistryAuth
from freight.transport.credentials import Credentials
from support.tokenserver import TokenServer

ORIGIN = "http://registry.test:5000"
ALICE = Credentials("alice", "wonderland")


@pytest.fixture
def server() -> Iterator[TokenServer]:
    token_server = TokenServer(users={"alice": "wonderland"}).start()
    yield token_server
    token_server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(path: str = "/v2/team/app/blobs/uploads/", origin: str = ORIGIN) -> httpx.Request:
    return httpx.Request("POST", origin + path)


def challenge(server: TokenServer, extra: str = "") -> httpx.Response:
    header = f'Bearer realm="{server.realm}",service="svc"{extra}'
    return httpx.Response(401, headers={"WWW-Authenticate": header}, request=request())


def bearer(server: TokenServer, creds: Credentials | None = ALICE,
           clock: Clock | None = None) -> RegistryAuth:
    auth = RegistryAuth(creds, origin=ORIGIN, clock=clock or Clock())
    auth.want("repository:team/app:pull,push")
    assert auth.learn(challenge(server), request(), None)
    return auth


def test_one_token_per_scope_set(server: TokenServer) -> None:
    auth = bearer(server)
    first = auth.header_for(request())
    assert first and first.startswith("Bearer ")
    assert auth.header_for(request("/v2/team/app/blobs/sha256:ab")) == first
    mount = auth.header_for(request("/v2/team/app/blobs/uploads/?mount=sha256:ab&from=lib/base"))
    assert mount != first
    assert auth.header_for(request()) == first
    assert [set(r.scopes) for r in server.requests] == [
        {"repository:team/app:pull,push"},
        {"repository:team/app:pull,push", "repository:lib/base:pull"}]
    assert all(r.account == "alice" for r in server.requests)


def test_token_renewed_before_it_expires(server: TokenServer) -> None:
    clock = Clock()
    auth = bearer(server, clock=clock)
    auth.header_for(request())
    clock.now += 49  # 60 s lifetime, renewed 10 s early
    auth.header_for(request())
    assert auth.tokens_fetched == 1
    clock.now += 2
    auth.header_for(request())
    assert auth.tokens_fetched == 2


def test_short_lifetimes_are_raised_to_60_seconds(server: TokenServer) -> None:
    server.expires_in = 5
    clock = Clock()
    auth = bearer(server, clock=clock)
    auth.header_for(request())
    clock.now += 40
    auth.header_for(request())
    assert auth.tokens_fetched == 1


def test_a_refused_token_is_dropped_and_fetched_again(server: TokenServer) -> None:
    auth = bearer(server)
    sent = auth.header_for(request())
    refused = challenge(server, ',error="invalid_token"')
    assert auth.learn(refused, request(), sent) is True
    assert auth.header_for(request()) != sent
    assert auth.tokens_fetched == 2


def test_insufficient_scope_widens_the_next_token(server: TokenServer) -> None:
    auth = bearer(server)
    sent = auth.header_for(request())
    wider = challenge(server, ',scope="repository:team/app:delete",error="insufficient_scope"')
    assert auth.learn(wider, request(), sent) is True
    auth.header_for(request())
    assert "repository:team/app:delete" in server.requests[-1].scopes


def test_anonymous_token(server: TokenServer) -> None:
    auth = bearer(server, creds=None)
    assert auth.header_for(request())
    assert server.requests[-1].account is None


def test_identity_token_uses_the_oauth_post(server: TokenServer) -> None:
    server.refresh_tokens = {"rt-1": "alice"}
    auth = bearer(server, creds=Credentials("<token>", "", identity_token="rt-1"))
    auth.header_for(request())
    (asked,) = server.requests
    assert (asked.method, asked.grant_type, asked.service) == ("POST", "refresh_token", "svc")
    assert asked.scopes == ("repository:team/app:pull,push",)


def test_oauth_404_falls_back_to_get(server: TokenServer) -> None:
    server.oauth_post = False
    creds = Credentials("alice", "wonderland", identity_token="rt-1")
    auth = bearer(server, creds=creds)
    auth.header_for(request())
    assert [r.method for r in server.requests] == ["GET"]


def test_refused_credentials_are_not_echoed(server: TokenServer) -> None:
    auth = bearer(server, creds=Credentials("alice", "not-her-password"))
    with pytest.raises(AuthError, match="refused the credentials") as caught:
        auth.header_for(request())
    assert "not-her-password" not in str(caught.value)


def test_basic_challenge_sends_credentials_only_to_the_registry() -> None:
    auth = RegistryAuth(ALICE, origin=ORIGIN)
    basic = httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'},
                           request=request())
    assert auth.learn(basic, request(), None) is True
    flow = auth.auth_flow(request())
    assert next(flow).headers["Authorization"] == ALICE.basic()
    elsewhere = auth.auth_flow(request(origin="http://storage.test"))
    assert "Authorization" not in next(elsewhere).headers
    wrong = httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'},
                           request=request())
    assert auth.learn(wrong, request(), ALICE.basic()) is False  # no use sending them again


def test_credentials_are_looked_up_only_when_asked_for() -> None:
    calls: list[int] = []

    def source() -> Credentials | None:
        calls.append(1)
        return ALICE

    auth = RegistryAuth(source, origin=ORIGIN)
    next(auth.auth_flow(request()))
    assert calls == []  # an open registry never runs a credential helper
    basic = httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'},
                           request=request())
    auth.learn(basic, request(), None)
    auth.header_for(request())
    auth.header_for(request())
    assert calls == [1]
