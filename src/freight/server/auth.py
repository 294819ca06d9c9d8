"""HTTP Basic authentication against an htpasswd file of bcrypt entries (`htpasswd -B`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from pathlib import Path

from freight.errors import UsageError

DEFAULT_REALM = "freight"
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def load_htpasswd(path: Path) -> dict[str, bytes]:
    """user -> bcrypt hash; UsageError for an unreadable file or a non-bcrypt entry."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read htpasswd file {path}: {exc.strerror}") from None
    users: dict[str, bytes] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(_BCRYPT_PREFIXES):
            raise UsageError(f"{path}:{number}: not a bcrypt entry; create it with htpasswd -B")
        users[user] = hashed.encode()
    return users


class BasicAuth:
    """Checks `Authorization: Basic ...` headers; remembers credentials that passed.

    bcrypt is slow on purpose (tens of ms), and a push makes many requests, so a check that
    succeeded once is cached by a hash of user, password and stored hash (never the password).
    """

    def __init__(self, users: dict[str, bytes], realm: str = DEFAULT_REALM) -> None:
        self.users, self.realm = users, realm
        self._passed: set[bytes] = set()

    @property
    def challenge(self) -> tuple[str, str]:
        return ("WWW-Authenticate", f'Basic realm="{self.realm}"')

    async def user(self, authorization: str | None) -> str | None:
        """The authenticated user name, or None."""
        credentials = _decode(authorization)
        if credentials is None or credentials[0] not in self.users:
            return None
        user, password = credentials
        stored = self.users[user]
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), stored))).digest()
        if key in self._passed:
            return user
        if not await asyncio.to_thread(_checkpw, password.encode(), stored):
            return None
        self._passed.add(key)
        return user


def _checkpw(password: bytes, stored: bytes) -> bool:
    import bcrypt

    try:
        return bool(bcrypt.checkpw(password, stored))
    except ValueError:  # malformed stored hash
        return False


def _decode(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None
