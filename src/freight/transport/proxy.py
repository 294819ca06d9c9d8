"""HTTP proxies from the environment, taken as docker, skopeo and curl take them.

`HTTPS_PROXY` carries https requests, `HTTP_PROXY` plain-http ones (either case; `ALL_PROXY`
for both when they are unset). `NO_PROXY` lists what goes direct: host names (`reg.corp`,
which covers its subdomains, as does `.corp`), IP addresses, CIDR ranges (`10.0.0.0/8`),
`host:port`, or `*` for everything. A loopback registry is always reached direct, as Go's
clients do. The choice is made for each request's host: a registry, its token server and
the blob storage it redirects to may each go their own way.
"""

from __future__ import annotations

import ipaddress
import threading
import urllib.request
from collections.abc import Callable, Mapping

import httpx

from freight.reference import is_loopback

# (proxy URL or None for direct) -> the transport for it
TransportFor = Callable[[str | None], httpx.BaseTransport]


def environment_proxies() -> dict[str, str]:
    """`{"http": URL, "https": URL, "no": LIST}`, as set in this process's environment."""
    found = urllib.request.getproxies_environment()
    every = found.pop("all", None)
    if every:
        found.setdefault("http", every)
        found.setdefault("https", every)
    return {key: value for key, value in found.items() if key in ("http", "https", "no")}


def proxy_for(scheme: str, host: str, port: int | None,
              proxies: Mapping[str, str]) -> str | None:
    """The proxy URL for a request to `scheme://host:port`, or None to go direct."""
    proxy = proxies.get(scheme)
    if not proxy or is_loopback(host):
        return None
    entries = [e.strip().lower() for e in proxies.get("no", "").split(",") if e.strip()]
    return None if any(_bypassed(host.lower().strip("[]"), port, e) for e in entries) \
        else proxy


def _bypassed(host: str, port: int | None, entry: str) -> bool:
    """Whether the NO_PROXY `entry` covers `host:port`."""
    if entry == "*":
        return True
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass  # not an address and a range: compare names
    name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
    if wanted and (not wanted.isdigit() or port != int(wanted)):
        return False
    name = name.removeprefix("*").removeprefix(".")
    return host == name or host.endswith(f".{name}")


def routed(build: TransportFor, proxies: Mapping[str, str] | None = None) -> httpx.BaseTransport:
    """`build(None)` when the environment names no proxy (nothing in between); else a
    transport that sends each request direct or through its proxy."""
    proxies = environment_proxies() if proxies is None else proxies
    if not proxies.get("http") and not proxies.get("https"):
        return build(None)
    return ProxyRouter(build, proxies)


class ProxyRouter(httpx.BaseTransport):
    """One transport per route (direct, or each proxy), built on first use."""

    def __init__(self, build: TransportFor, proxies: Mapping[str, str]) -> None:
        self._build, self._proxies = build, dict(proxies)
        self._routes: dict[str | None, httpx.BaseTransport] = {}
        self._lock = threading.Lock()

    def proxy(self, url: httpx.URL) -> str | None:
        return proxy_for(url.scheme, url.host, url.port, self._proxies)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        route = self.proxy(request.url)
        with self._lock:
            transport = self._routes.get(route)
            if transport is None:
                transport = self._routes[route] = self._build(route)
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            routes, self._routes = list(self._routes.values()), {}
        for transport in routes:
            transport.close()
