"""TLS settings for one registry, read the way docker reads them.

Verification is on by default against the system's CAs. A registry with a private CA is
trusted through `ca_cert` or docker's per-registry directory `/etc/docker/certs.d/HOST[:PORT]/`
(podman's `/etc/containers/certs.d/` too): every `*.crt` there is a CA, and each
`NAME.cert` + `NAME.key` pair is a client certificate for mutual TLS. `insecure` turns
verification off, for that registry only.
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from freight.errors import UsageError

# Where docker and podman look for per-registry certificates; FREIGHT_CERTS_DIRS (paths
# separated by os.pathsep) replaces the list, e.g. for tests or unprivileged users.
DEFAULT_CERTS_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d")


def certs_dirs() -> list[Path]:
    configured = os.environ.get("FREIGHT_CERTS_DIRS")
    if configured is not None:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    home = Path.home() / ".config" / "containers" / "certs.d"
    return [Path(p) for p in DEFAULT_CERTS_DIRS] + [home]


def registry_certs_dir(host: str, roots: list[Path] | None = None) -> Path | None:
    """The certs.d directory for `host` (`HOST:PORT` as docker names it), if one exists."""
    for root in certs_dirs() if roots is None else roots:
        candidate = root / host
        if candidate.is_dir():
            return candidate
    return None


def ssl_context(host: str, *, insecure: bool = False, ca_cert: str | Path | None = None,
                client_cert: tuple[str | Path, str | Path] | None = None,
                roots: list[Path] | None = None, shared: bool = True) -> ssl.SSLContext:
    """The SSL context for talking to `host`; raises UsageError for unreadable files.

    A host with nothing of its own (no CA file, no certs.d directory, no client
    certificate) gets the process's shared context, unless `shared=False` (a caller that
    changes its context): building one loads the CA bundles, tens of milliseconds that
    every registry client would otherwise pay."""
    directory = registry_certs_dir(host, roots)
    plain = directory is None and client_cert is None and (ca_cert is None or insecure)
    if plain and shared:
        return _shared_unverified() if insecure else default_context()
    context = _unverified_context() if insecure else _verifying_context()
    try:
        if ca_cert is not None and not insecure:
            context.load_verify_locations(cafile=str(ca_cert))
        if directory is not None:
            _load_dir(context, directory, verify=not insecure)
        if client_cert is not None:
            context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificates for {host}: {exc}") from None
    return context


@functools.cache
def default_context() -> ssl.SSLContext:
    """One verifying context per process, for connections that need nothing special (a
    token server behind a plain-HTTP registry): building one costs tens of milliseconds."""
    return _verifying_context()


@functools.cache
def plain_http_context() -> ssl.SSLContext:
    """For a transport that carries only http:// URLs (https:// is mounted on another):
    httpx gives every transport a context, and its default loads the CA bundles. This one
    loads nothing, and would refuse every certificate if it were ever used."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _shared_unverified() -> ssl.SSLContext:
    return _unverified_context()


def _new_context() -> ssl.SSLContext:
    """What ssl.create_default_context() makes (the same protocol, options and ciphers),
    without reading any CA yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostname and chain
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog  # as create_default_context does, for Wireshark
    return context


def _unverified_context() -> ssl.SSLContext:
    context = _new_context()  # no CA is read: nothing will be checked against one
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _verifying_context() -> ssl.SSLContext:
    """The system's CAs, as OpenSSL finds them. Reading the whole bundle costs about 250 M
    instructions (40 ms here) in every run; where OpenSSL's hashed directory holds every CA
    of the bundle (Debian's update-ca-certificates writes both), only the directory is
    given, and OpenSSL reads the one CA a chain names. certifi's bundle only when the
    system has no CA at all."""
    context = _new_context()
    paths = ssl.get_default_verify_paths()
    if _directory_suffices(paths):
        context.load_verify_locations(capath=paths.capath)
        return context
    context.load_default_certs()  # the bundle and the directory, as create_default_context
    if context.cert_store_stats()["x509_ca"]:
        return context
    try:
        import certifi  # httpx's own CA bundle, for systems without ca-certificates

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError, ssl.SSLError):
        pass
    return context


def _directory_suffices(paths: ssl.DefaultVerifyPaths) -> bool:
    """True if the CA directory alone trusts what the bundle would: both are the system's
    (not ones SSL_CERT_FILE or SSL_CERT_DIR name), and the directory has at least as many
    hashed names as the bundle has certificates (a CA appended by hand makes it longer)."""
    try:
        if paths.capath is None or not _same(paths.capath, paths.openssl_capath) or (
                paths.cafile is not None and not _same(paths.cafile, paths.openssl_cafile)):
            return False
        hashed = sum(1 for name in os.listdir(paths.capath) if _hashed_name(name))
        if paths.cafile is None:
            return hashed > 0
        with open(paths.cafile, "rb") as bundle:
            in_bundle = bundle.read().count(b"-----BEGIN CERTIFICATE-----")
    except OSError:
        return False
    return 0 < in_bundle <= hashed


def _hashed_name(name: str) -> bool:
    """`5ad8a5d6.0`: a CA as `openssl rehash` names it (a regex would be compiled in every
    run, TLS or not)."""
    stem, dot, number = name.partition(".")
    return len(stem) == 8 and bool(dot) and number.isdigit() and all(
        c in "0123456789abcdef" for c in stem)


def _same(path: str, default: str) -> bool:
    return os.path.exists(default) and os.path.samefile(path, default)


def _load_dir(context: ssl.SSLContext, directory: Path, *, verify: bool) -> None:
    """docker's rules (daemon/pkg/registry ReadCertsDirectory): *.crt CAs, *.cert + *.key."""
    for path in sorted(directory.iterdir()):
        if path.suffix == ".crt" and verify:
            context.load_verify_locations(cafile=str(path))
        elif path.suffix == ".cert":
            key = path.with_suffix(".key")
            if not key.exists():
                raise UsageError(f"{path} has no matching {key.name} (client certificate "
                                 "and key come in pairs)")
            context.load_cert_chain(str(path), str(key))


class LazyTLSTransport(httpx.BaseTransport):
    """An HTTPS transport built on first use. Next to a plain-HTTP registry, HTTPS is only
    for a token server or a redirect to blob storage, and building a verifying SSL context
    costs tens of milliseconds of every run that never needs one."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._inner: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def certificate_names(host: str, context: ssl.SSLContext,
                      timeout: float = 5.0) -> list[str] | None:
    """The names (subjectAltName DNS/IP entries, else the subject CN) on the certificate
    `host` presents, read over a handshake that checks the chain but not the name; None when
    that fails too. Used only to explain a name mismatch. `context` is changed: give a
    context of its own (`ssl_context(..., shared=False)`)."""
    import socket

    from freight.transport.scheme import split_host

    name, port = split_host(host)
    context.check_hostname = False
    try:
        with socket.create_connection((name, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=name) as sock:
            cert = sock.getpeercert()
    except (OSError, ssl.SSLError, ValueError):
        return None
    if not cert:
        return None
    alt: Any = cert.get("subjectAltName", ())
    names = [str(value) for kind, value in alt if kind in ("DNS", "IP Address")]
    if names:
        return names
    subject: Any = cert.get("subject", ())
    return [str(v) for rdn in subject for (k, v) in rdn if k == "commonName"]
