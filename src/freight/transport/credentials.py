"""Registry credentials, found and stored where docker and podman keep them.

Lookup order for a registry (protocol.md §4.6): a file given with `--authfile` (only that
file), else the JSON config in the environment variable DOCKER_AUTH_CONFIG (as CI systems
set it; docker/cli reads it before any file), then the file named by REGISTRY_AUTH_FILE if
set, else docker's config.json (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`),
then podman's `$XDG_RUNTIME_DIR/containers/auth.json`. Within one file `credHelpers[host]`
wins over `credsStore`, which wins over the inline `auths` entry. Docker Hub is stored under
its legacy key `https://index.docker.io/v1/`. Helpers speak the docker-credential-helpers
protocol (§4.7). Secrets never appear in a repr, a message or a log.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from freight import jsontext
from freight.atomic import write_atomically
from freight.errors import AuthError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"  # a helper's username meaning "Secret is an identity token"
NOT_FOUND = "credentials not found"  # docker-credential-helpers' message, case-insensitive
HELPER_TIMEOUT = 60.0  # seconds; a helper may unlock a keychain, but must not hang a push


@dataclass(frozen=True)
class Credentials:
    """What to authenticate with; at least one of password / identity / registry token."""

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)  # OAuth2 refresh token
    registry_token: str | None = field(default=None, repr=False)  # bearer token, sent as is

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def config_key(registry: str) -> str:
    """The key docker files a registry's credentials under."""
    host = registry.lower()
    return DOCKER_HUB_KEY if host in DOCKER_HUB_HOSTS else registry


def docker_config_path() -> Path:
    root = os.environ.get("DOCKER_CONFIG")
    return Path(root) / "config.json" if root else Path.home() / ".docker" / "config.json"


def config_paths() -> list[Path]:
    """The files searched for credentials, in order."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    paths = [docker_config_path()]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        paths.append(Path(runtime) / "containers" / "auth.json")
    return paths


AUTH_CONFIG_ENV = "DOCKER_AUTH_CONFIG"


def lookup(registry: str, *, authfile: str | Path | None = None) -> Credentials | None:
    """Credentials for `registry` (a host[:port]), or None when none are configured."""
    if authfile is not None:
        config = read_config(Path(authfile))
        if config is None:
            raise AuthError(f"the credentials file {authfile} (--authfile) does not exist")
        return _from_config(config, registry)
    env = environment_config()
    if env is not None:
        found = _from_config(env, registry)
        if found is not None:
            return found
    for path in config_paths():
        config = read_config(path)
        if config is None:
            continue
        found = _from_config(config, registry)
        if found is not None:
            return found
    return None


def environment_config() -> dict[str, Any] | None:
    """DOCKER_AUTH_CONFIG parsed, or None when unset or empty."""
    text = os.environ.get(AUTH_CONFIG_ENV, "").strip()
    if not text:
        return None
    try:
        data = jsontext.parse(text)
    except ValueError as exc:
        raise AuthError(f"{AUTH_CONFIG_ENV} is not JSON ({exc}); it must hold a docker "
                        'config such as {"auths": {"HOST": {"auth": "BASE64"}}}') from None
    if not isinstance(data, dict):
        raise AuthError(f"{AUTH_CONFIG_ENV} must hold a JSON object (a docker config)")
    return data


def read_config(path: Path) -> dict[str, Any] | None:
    try:
        data = jsontext.parse(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the credentials file {path}: {exc}") from None
    return data if isinstance(data, dict) else None


def _from_config(config: dict[str, Any], registry: str) -> Credentials | None:
    helper = _helper_for(config, registry)
    if helper:
        return helper_get(helper, config_key(registry))
    entry = _auth_entry(config.get("auths") or {}, registry)
    return _from_entry(entry, registry) if entry is not None else None


def _helper_for(config: dict[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    name = helpers.get(config_key(registry)) or helpers.get(registry)
    return str(name) if name else (str(config["credsStore"]) if config.get("credsStore")
                                   else None)


def _auth_entry(auths: dict[str, Any], registry: str) -> dict[str, Any] | None:
    key = config_key(registry)
    if isinstance(auths.get(key), dict):
        return dict(auths[key])
    for name, entry in auths.items():  # legacy keys are URLs: https://host/v1/
        if isinstance(entry, dict) and _hostname(name) == _hostname(key):
            return dict(entry)
    return None


def _hostname(key: str) -> str:
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


def _from_entry(entry: dict[str, Any], registry: str) -> Credentials | None:
    username, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
            if ":" not in decoded:
                raise ValueError("no colon")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise AuthError(f"the saved credentials for {registry} are damaged (auth is not "
                            "base64 of user:password); run freight login again") from None
        username, _, password = decoded.partition(":")
        password = password.strip("\x00")
    identity, token = entry.get("identitytoken"), entry.get("registrytoken")
    if not (username or identity or token):
        return None  # an empty {} entry only records the host
    return Credentials(username, password, identity or None, token or None)


# --- credential helpers: docker-credential-<name> get|store|erase|list -----------------

def _run_helper(name: str, action: str, payload: str) -> str:
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run([program, action], input=payload, capture_output=True,
                              text=True, timeout=HELPER_TIMEOUT, check=False)
    except FileNotFoundError:
        raise AuthError(f"the credential helper {program} is configured (credsStore or "
                        "credHelpers in the docker config) but is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"the credential helper {program} did not answer within "
                        f"{HELPER_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}")
        raise _HelperFailed(program, action, said)
    return done.stdout


class _HelperFailed(AuthError):
    def __init__(self, program: str, action: str, said: str) -> None:
        super().__init__(f"the credential helper {program} failed to {action}: {said}")
        self.said = said


def helper_get(name: str, server: str) -> Credentials | None:
    try:
        out = _run_helper(name, "get", server)
    except _HelperFailed as exc:
        if NOT_FOUND in exc.said.lower():
            return None
        raise
    try:
        data = jsontext.parse(out)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (ValueError, AttributeError):
        raise AuthError(f"the credential helper docker-credential-{name} gave an answer "
                        "that is not JSON") from None
    if not secret:
        return None
    if username == TOKEN_USERNAME:
        return Credentials(username, "", identity_token=secret)
    return Credentials(username, secret)


def helper_store(name: str, server: str, credentials: Credentials) -> None:
    username, secret = credentials.username, credentials.password
    if credentials.identity_token:
        username, secret = TOKEN_USERNAME, credentials.identity_token
    _run_helper(name, "store", json.dumps(
        {"ServerURL": server, "Username": username, "Secret": secret}))


def helper_erase(name: str, server: str) -> bool:
    try:
        _run_helper(name, "erase", server)
    except _HelperFailed as exc:
        if NOT_FOUND in exc.said.lower():
            return False
        raise
    return True


# --- login / logout: write what docker reads -------------------------------------------

def store(registry: str, credentials: Credentials, path: Path | None = None) -> str:
    """Save credentials as `docker login` does; returns where they went (for the user)."""
    path = path or docker_config_path()
    config = read_config(path) or {}
    key = config_key(registry)
    helper = _helper_for(config, registry)
    auths = config.setdefault("auths", {})
    if helper:
        helper_store(helper, key, credentials)
        auths[key] = {}
        where = f"the credential helper docker-credential-{helper}"
    else:
        raw = f"{credentials.username}:{credentials.password}".encode()
        entry: dict[str, str] = {"auth": base64.b64encode(raw).decode()}
        if credentials.identity_token:
            entry = {"identitytoken": credentials.identity_token}
        auths[key] = entry
        where = str(path)
    write_config(path, config)
    return where


def erase(registry: str, path: Path | None = None) -> bool:
    """Forget a registry's credentials; True if there were any."""
    path = path or docker_config_path()
    config = read_config(path)
    if config is None:
        return False
    key = config_key(registry)
    helper = _helper_for(config, registry)
    found = helper_erase(helper, key) if helper else False
    auths = config.get("auths") or {}
    for name in [n for n in auths if n == key or _hostname(n) == _hostname(key)]:
        found = found or bool(auths[name])
        del auths[name]
    write_config(path, config)
    return found


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Atomically, readable by the owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config, indent="\t") + "\n"
    write_atomically(path, text.encode(), private=True, prefix=".config-")
