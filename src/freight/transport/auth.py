"""Registry auth as one httpx flow around every request: Basic, or the Bearer token dance.

On a 401 the challenge says what to do: Basic sends the credentials; Bearer fetches a token
from the realm (with Basic credentials if we have them, anonymously otherwise) for the
scopes the challenge names plus the ones the caller declared up front (`pull,push` on the
target, `pull` on a mount source), so one token serves a whole push. Tokens are refreshed
before they expire; a request whose body already streamed cannot be replayed, so callers
that stream bodies make one authenticated cheap request first (`RegistryClient.ping`).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from freight.errors import AuthError
from freight.transport.challenge import Challenge, parse_challenges

DEFAULT_TOKEN_LIFETIME = 60  # seconds, when the token server does not say (token.md)
REFRESH_MARGIN = 10  # renew this many seconds before expiry, so no request carries a dead token


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


class RegistryAuth(httpx.Auth):
    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._scopes: set[str] = set()
        self._challenge: Challenge | None = None
        self._header: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def want(self, scope: str) -> None:
        """Ask for `scope` (e.g. `repository:team/app:pull,push`) in the next token."""
        with self._lock:
            if scope not in self._scopes:
                self._scopes.add(scope)
                if self._challenge is not None and self._challenge.scheme == "bearer":
                    self._expires = 0.0  # the current token lacks it: fetch a wider one

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        header = self._current(request)
        if header:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401 or not _replayable(request):
            return
        header = self._answer(response, request)
        if header:
            request.headers["Authorization"] = header
            yield request

    def _current(self, request: httpx.Request) -> str | None:
        with self._lock:
            if self._header and time.monotonic() < self._expires:
                return self._header
            challenge = self._challenge
        if challenge is None:
            return None
        return self._respond(challenge, request)

    def _answer(self, response: httpx.Response, request: httpx.Request) -> str | None:
        challenges = parse_challenges(", ".join(response.headers.get_list("www-authenticate")))
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            return None
        challenge = next((c for c in usable if c.scheme == "bearer"), usable[0])
        with self._lock:
            self._challenge = challenge
            scope = challenge.params.get("scope")
            if scope:
                self._scopes.update(scope.split(" "))
        return self._respond(challenge, request)

    def _respond(self, challenge: Challenge, request: httpx.Request) -> str | None:
        if challenge.scheme == "basic":
            header = self._credentials.basic() if self._credentials else None
            lifetime = float("inf")
        else:
            header, lifetime = self._fetch_token(challenge)
        with self._lock:
            self._header, self._expires = header, time.monotonic() + lifetime - REFRESH_MARGIN
        return header

    def _fetch_token(self, challenge: Challenge) -> tuple[str, float]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthError("the registry asked for a token but named no token server (realm)")
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("service", challenge.params.get("service", ""))]
        params += [("scope", s) for s in sorted(self._scopes)]
        headers = {"Authorization": self._credentials.basic()} if self._credentials else {}
        if self._credentials:
            params.append(("account", self._credentials.username))
        try:
            reply = httpx.get(realm, params=params, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            raise AuthError(f"cannot reach the token server {realm}: {exc}") from None
        return _read_token(reply, realm)


def _read_token(reply: httpx.Response, realm: str) -> tuple[str, float]:
    if reply.status_code in (401, 403):
        raise AuthError(f"the token server {realm} refused the credentials "
                        f"(HTTP {reply.status_code}); check --username and the password",
                        status=reply.status_code)
    try:
        data = reply.json()
        token = data.get("access_token") or data.get("token")
        lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError):
        token = None
    if reply.status_code != 200 or not token:
        raise AuthError(f"the token server {realm} gave no token (HTTP {reply.status_code})",
                        status=reply.status_code)
    return f"Bearer {token}", max(lifetime, DEFAULT_TOKEN_LIFETIME)


def _replayable(request: httpx.Request) -> bool:
    """Only a body held in memory can be sent twice; a streamed upload is retried by its caller."""
    return isinstance(request.stream, httpx.ByteStream)
