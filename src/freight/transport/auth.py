"""Registry auth as one httpx flow around every request: Basic, or the Bearer token dance.

On a 401 the challenge says what to do (protocol.md §4): Basic sends the credentials;
Bearer fetches a token from the realm — GET with Basic credentials (anonymous without
them), or the OAuth2 POST when we hold an identity (refresh) token, falling back to GET on
404 — for the scopes declared up front (`pull,push` on the target) plus `pull` on a mount's
`from` repository. Tokens are cached per scope set and renewed before they expire; a token
the registry stops accepting is dropped and fetched again.

Credentials only ever go to the registry's own origin: a request to another host (an upload
`Location` on a storage server, a redirect) is sent without `Authorization`.

A request whose body is streamed cannot be replayed here; `RegistryClient.request` sends
it again with a fresh body after this flow has learnt what the 401 asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import httpx

from freight import jsontext
from freight.distribution.urls import same_origin
from freight.errors import AuthError
from freight.transport.capped import MAX_BODY
from freight.transport.challenge import Challenge, parse_challenges
from freight.transport.credentials import Credentials

__all__ = ["Credentials", "RegistryAuth"]

DEFAULT_TOKEN_LIFETIME = 60  # seconds, when the token server does not say (token.md)
MIN_TOKEN_LIFETIME = 60  # docker raises shorter lifetimes to this (minimumTokenLifetimeSeconds)
REFRESH_MARGIN = 10  # renew this many seconds before expiry, so no request carries a dead token
CLIENT_ID = "freight"  # OAuth2 client_id (oauth.md requires one)
TOKEN_TIMEOUT = 30.0  # seconds for a token server to answer
MAX_TOKEN_BODY = 1 << 20  # a token answer is a JWT or two in JSON: a few KiB; more is not one

CredentialSource = Callable[[], Credentials | None]
Scopes = frozenset[str]


class RegistryAuth(httpx.Auth):
    def __init__(self, credentials: Credentials | CredentialSource | None, *, origin: str,
                 token_http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source: CredentialSource = (
            credentials if callable(credentials) else (lambda: credentials))
        self._resolved: tuple[Credentials | None] | None = None
        self.origin = origin
        self._http = token_http or httpx.Client(timeout=TOKEN_TIMEOUT)
        self._clock = clock
        self._scopes: set[str] = set()
        self._challenge: Challenge | None = None
        self._tokens: dict[Scopes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._resolving = threading.Lock()
        self.tokens_fetched = 0  # how many times a token server was asked (for tests, stats)

    def want(self, scope: str) -> None:
        """Ask for `scope` (e.g. `repository:team/app:pull,push`) in every later token."""
        with self._lock:
            self._scopes.add(scope)

    def scopes(self) -> set[str]:
        with self._lock:
            return set(self._scopes)

    @property
    def source(self) -> CredentialSource:
        return self._source

    @property
    def credentials(self) -> Credentials | None:
        """The credentials, looked up at most once and only when a registry asks for them."""
        with self._resolving:
            if self._resolved is None:
                self._resolved = (self._source(),)
            return self._resolved[0]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not same_origin(str(request.url), self.origin):
            yield request  # never hand our credentials to another host
            return
        sent = self._apply(request)
        response = yield request
        if response.status_code != 401 or not _replayable(request):
            return  # a streamed body: RegistryClient learns from the 401 and sends it again
        if not same_origin(str(response.request.url), self.origin):
            return  # redirected elsewhere: that host's challenge is not ours to answer
        if self.learn(response, request, sent):
            self._apply(request)
            yield request

    def _apply(self, request: httpx.Request) -> str | None:
        header = self.header_for(request)
        if header:
            request.headers["Authorization"] = header
        return header

    def header_for(self, request: httpx.Request) -> str | None:
        """The Authorization value for `request` now (fetching a token if needed)."""
        with self._lock:
            challenge = self._challenge
        if challenge is None:
            return None
        creds = self.credentials
        if challenge.scheme == "basic":
            return creds.basic() if creds and creds.password else None
        if creds is not None and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        return self._token(challenge, self._scopes_for(request))

    def learn(self, response: httpx.Response, request: httpx.Request, sent: str | None) -> bool:
        """Take in a 401's challenge; True when sending the request again may succeed."""
        challenges = parse_challenges(", ".join(response.headers.get_list("www-authenticate")))
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            return False
        challenge = next((c for c in usable if c.scheme == "bearer"), usable[0])
        with self._lock:
            first = self._challenge is None or self._challenge.scheme != challenge.scheme
            self._challenge = challenge
            if challenge.scheme == "basic":
                return first and self.credentials is not None
            wider = set(challenge.params.get("scope", "").split()) - self._scopes
            self._scopes |= wider
            stale = [k for k, (h, _) in self._tokens.items() if h == sent]
            for key in stale:
                del self._tokens[key]  # expired or revoked: fetch again
        return first or bool(wider) or bool(stale)

    def _scopes_for(self, request: httpx.Request) -> Scopes:
        with self._lock:
            scopes = set(self._scopes)
        source = dict(parse_qsl(urlsplit(str(request.url)).query)).get("from")
        if source:  # a cross-repository mount also needs pull on the source (§2.7)
            scopes.add(f"repository:{source}:pull")
        return frozenset(scopes)

    def _token(self, challenge: Challenge, scopes: Scopes) -> str:
        with self._fetching:  # one fetch at a time: parallel uploads share the new token
            with self._lock:
                cached = self._tokens.get(scopes)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
            header, lifetime = self._fetch(challenge, scopes)
            with self._lock:
                self._tokens[scopes] = (header, self._clock() + lifetime - REFRESH_MARGIN)
            return header

    def _fetch(self, challenge: Challenge, scopes: Scopes) -> tuple[str, float]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthError("the registry asked for a token but named no token server (realm)")
        service = challenge.params.get("service", "")
        self.tokens_fetched += 1
        creds = self.credentials
        if creds is not None and _downgrade(self.origin, realm):
            raise AuthError(
                f"the registry {_origin(self.origin)} speaks HTTPS but names a plain-HTTP token "
                f"server ({_origin(realm)}); freight will not send credentials there "
                "unencrypted (a downgrade an attacker on the path could ask for)")
        if creds is not None and creds.identity_token:
            reply = self._post(realm, service, scopes, creds.identity_token)
            if reply.status_code != 404:
                return _read_token(reply, realm)
        return _read_token(self._get(realm, service, scopes, creds), realm)

    def _get(self, realm: str, service: str, scopes: Scopes,
             creds: Credentials | None) -> httpx.Response:
        params: list[tuple[str, str]] = [("service", service)] if service else []
        params += [("scope", s) for s in sorted(scopes)]
        headers = {}
        if creds is not None and creds.password:
            headers["Authorization"] = creds.basic()
            params.append(("account", creds.username))
        return self._send("GET", realm, params=params, headers=headers)

    def _post(self, realm: str, service: str, scopes: Scopes, refresh: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": service,
                "client_id": CLIENT_ID, "scope": " ".join(sorted(scopes))}
        return self._send("POST", realm, data=form)

    def _send(self, method: str, realm: str, **kwargs: object) -> httpx.Response:
        try:
            return self._http.request(method, realm, follow_redirects=True,
                                      extensions={MAX_BODY: MAX_TOKEN_BODY},
                                      **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise AuthError(f"cannot reach the token server {_origin(realm)}: "
                            f"{type(exc).__name__}: {exc}") from None


def _read_token(reply: httpx.Response, realm: str) -> tuple[str, float]:
    where = _origin(realm)
    if reply.status_code in (401, 403):
        raise AuthError(f"the token server {where} refused the credentials "
                        f"(HTTP {reply.status_code}); check the user name and password, "
                        "or run freight login", status=reply.status_code)
    try:
        data = jsontext.parse(reply.content)
        token = data.get("access_token") or data.get("token")
        lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        issued = data.get("issued_at")
    except (ValueError, AttributeError, TypeError):
        token = None
    if reply.status_code != 200 or not token or not isinstance(token, str):
        raise AuthError(f"the token server {where} gave no token (HTTP {reply.status_code})",
                        status=reply.status_code)
    lifetime = max(lifetime, MIN_TOKEN_LIFETIME)
    return f"Bearer {token}", min(lifetime, _remaining(issued, lifetime))


def _remaining(issued_at: object, lifetime: float) -> float:
    """Seconds left when the server says when it issued the token (RFC 3339), else all."""
    if not isinstance(issued_at, str):
        return lifetime
    try:
        issued = datetime.fromisoformat(issued_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return lifetime
    return max(float(REFRESH_MARGIN + 1), issued + lifetime - time.time())


def _downgrade(origin: str, realm: str) -> bool:
    """True when the registry speaks HTTPS and its token realm is plain HTTP."""
    return urlsplit(origin).scheme == "https" and urlsplit(realm).scheme == "http"


def _origin(url: str) -> str:
    """scheme://host of a URL: messages name the server, never its query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _replayable(request: httpx.Request) -> bool:
    """Only a body held in memory can be sent twice; a streamed upload is retried by its caller."""
    return isinstance(request.stream, httpx.ByteStream)
