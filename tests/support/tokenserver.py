"""A token server for distribution's token auth (token.md, oauth.md) on 127.0.0.1, and the
registry configuration that trusts it.

Tokens are ES256 JWTs. distribution 2.8 finds the signing key through the JWT header: an
``x5c`` chain verified against ``auth.token.rootcertbundle``, a ``jwk``, or a ``kid`` equal to
the libtrust key ID of a key in that bundle (registry/auth/token/token.go VerifySigningKey).
We send ``x5c`` with the signing certificate, which is self-signed and is the bundle itself.

The registry accepts a token until 60 s after its ``exp`` (token.go ``Leeway``), so a token
meant to die after ``lifetime`` seconds is minted with ``exp = now + lifetime - 60`` (and an
``nbf`` before that): the registry then refuses it after ``lifetime`` seconds, whatever
``expires_in`` the client was told. That is how tests make a token expire mid-push.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "freight-test-issuer"
SERVICE = "freight-test-registry"
REGISTRY_LEEWAY = 60  # seconds distribution adds to exp (token.go Leeway)


@dataclass(frozen=True)
class TokenRequest:
    """What a client asked the token server."""

    method: str
    scopes: tuple[str, ...]
    account: str | None  # the authenticated user; None when anonymous
    grant_type: str | None  # OAuth2 POST only
    service: str | None


@dataclass
class TokenServer:
    """Configure through the attributes while it runs; ``requests`` records every ask."""

    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    lifetime: int = 3600  # seconds the registry will accept a token
    expires_in: int | None = 60  # what the reply says (None: leave the field out)
    field_name: str = "token"  # "token", "access_token" or "both"
    anonymous_pull: bool = True  # anonymous users get pull; push always needs a user
    oauth_post: bool = True  # False: POST answers 404, as token.md servers without OAuth do
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _self_signed(self._key)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def registry_auth_config(self, bundle: Path) -> dict[str, Any]:
        """The registry's ``auth`` section."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.write_bundle(bundle)),
            }
        }

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def granted(self, account: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            allowed = (
                wanted if account else [a for a in wanted if a == "pull" and self.anonymous_pull]
            )
            access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def mint(self, account: str | None, scopes: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": account or "",
            "aud": SERVICE,
            "exp": now + self.lifetime - REGISTRY_LEEWAY,
            "nbf": now - REGISTRY_LEEWAY - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": self.granted(account, scopes),
        }
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(
            self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r || s
        return f"{signing_input}.{_b64(signature)}"

    def reply(self, account: str | None, scopes: list[str]) -> dict[str, Any]:
        token = self.mint(account, scopes)
        body: dict[str, Any] = {}
        if self.field_name in ("token", "both"):
            body["token"] = token
        if self.field_name in ("access_token", "both"):
            body["access_token"] = token
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        body["issued_at"] = datetime.datetime.now(datetime.UTC).isoformat()
        return body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "freight test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_TokenHandler):
        owner = server

    return Handler


class _TokenHandler(BaseHTTPRequestHandler):
    owner: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qsl(urlsplit(self.path).query)
        scopes = [v for k, v in query if k == "scope"]
        service = dict(query).get("service")
        account = self._basic_user()
        if account is False:
            return self._send(401, {"details": "bad credentials"})
        self.owner.record(TokenRequest("GET", tuple(scopes), account or None, None, service))
        self._send(200, self.owner.reply(account or None, scopes))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if not self.owner.oauth_post:
            return self._send(404, {"details": "POST not supported"})
        grant = form.get("grant_type")
        account: str | None = None
        if grant == "refresh_token":
            account = self.owner.refresh_tokens.get(form.get("refresh_token", ""))
        elif grant == "password":
            user, password = form.get("username", ""), form.get("password", "")
            account = user if self.owner.users.get(user) == password else None
        if account is None or not form.get("client_id") or not form.get("service"):
            return self._send(401, {"error": "invalid_grant"})
        scopes = form.get("scope", "").split()
        self.owner.record(TokenRequest("POST", tuple(scopes), account, grant, form.get("service")))
        self._send(200, self.owner.reply(account, scopes))

    def _basic_user(self) -> str | bool:
        """ "" when anonymous, the user name when the password matches, False otherwise."""
        header = self.headers.get("Authorization", "")
        if not header:
            return ""
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (IndexError, ValueError):
            return False
        return user if self.owner.users.get(user) == password else False

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
