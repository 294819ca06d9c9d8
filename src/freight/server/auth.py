"""HTTP Basic authentication against an htpasswd file of bcrypt entries (`htpasswd -B`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import time
from collections import OrderedDict
from pathlib import Path

from freight.errors import UsageError
from freight.server.exchange import HTTPError
from freight.server.threads import offload

DEFAULT_REALM = "freight"
DEFAULT_COST = 10  # bcrypt's own default, for the dummy hash when there are no users
# Failed logins allowed per client address and window: a person mistyping gets many tries,
# a guesser gets few bcrypt runs (each ~75 ms of CPU) per minute.
FAILURES_ALLOWED = 10
FAILURE_WINDOW = 60.0  # seconds
TRACKED_CLIENTS = 10_000  # addresses remembered: bounded memory under a spread-out attack
CACHED_PASSES = 1_024  # credentials remembered as checked: bounded memory, LRU
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


class FailureLimiter:
    """Counts failed logins per client address in fixed windows; bounded memory.

    Each failed check costs a bcrypt run (~75 ms of CPU), so a client past `limit` failures
    in `window` seconds is refused (429) without one until the window ends. At most
    `max_clients` addresses are tracked; the least recently failing is forgotten first.
    """

    def __init__(self, *, limit: int, window: float, max_clients: int) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, client: str, now: float) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        started, count = self._failures.get(client, (now, 0))
        if now - started >= self.window or count < self.limit:
            return 0
        return max(1, math.ceil(self.window - (now - started)))

    def fail(self, client: str, now: float) -> None:
        started, count = self._failures.pop(client, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        self._failures[client] = (started, count + 1)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


class BasicAuth:
    """Checks `Authorization: Basic ...` headers; remembers credentials that passed.

    bcrypt is slow on purpose (tens of ms), and a push makes many requests, so a check that
    succeeded once is cached by a hash of user, password and stored hash (never the password).
    An unknown user is checked against a dummy hash of the same cost, so the time taken does
    not tell which names exist; failed checks are rate-limited per client address.
    """

    def __init__(self, users: dict[str, bytes], realm: str = DEFAULT_REALM, *,
                 limiter: FailureLimiter | None = None) -> None:
        self.users, self.realm = users, realm
        self.limiter = limiter or FailureLimiter(limit=FAILURES_ALLOWED, window=FAILURE_WINDOW,
                                                 max_clients=TRACKED_CLIENTS)
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._dummy = _dummy_hash(users)

    @property
    def challenge(self) -> tuple[str, str]:
        return ("WWW-Authenticate", f'Basic realm="{self.realm}"')

    async def user(self, authorization: str | None, client: str = "") -> str | None:
        """The authenticated user name, or None; HTTPError TOOMANYREQUESTS when `client`
        failed too often lately."""
        credentials = _decode(authorization)
        if credentials is None:
            return None
        user, password = credentials
        stored = self.users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), stored or b""))
                             ).digest()
        if stored is not None and key in self._passed:
            self._passed.move_to_end(key)
            return user
        wait = self.limiter.retry_after(client, time.monotonic())
        if wait:
            raise HTTPError("TOOMANYREQUESTS", "too many failed logins; try again later",
                            headers=(("Retry-After", str(wait)),))
        passed = await offload(_checkpw, password.encode(), stored or self._dummy)
        if not passed or stored is None:
            self.limiter.fail(client, time.monotonic())
            return None
        self._passed[key] = None
        if len(self._passed) > CACHED_PASSES:
            self._passed.popitem(last=False)
        return user


def _dummy_hash(users: dict[str, bytes]) -> bytes:
    """A bcrypt hash with the cost of the users' (the first one's), matching no password."""
    import bcrypt

    cost = DEFAULT_COST
    for stored in users.values():
        if stored[4:6].isdigit():
            cost = int(stored[4:6])
        break
    return bytes(bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(rounds=min(max(cost, 4), 31))))


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
