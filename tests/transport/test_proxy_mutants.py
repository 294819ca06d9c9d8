"""Proxies in process (src/freight/transport/proxy.py): a registry client reaches a registry
that only the proxy knows by name, NO_PROXY sends a host direct, each scheme takes its own
variable, and the router builds one transport per route and closes them all. The
subprocess pushes and pulls through a proxy are in test_proxy.py. Written against
mutation testing of the module."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from freight.errors import NetworkError
from freight.testing import Registry, serve_in_thread
from freight.transport.client import RegistryClient
from freight.transport.proxy import ProxyRouter, environment_proxies, proxy_for, routed
from support.forward_proxy import ForwardProxy

pytestmark = pytest.mark.timeout(20)

VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
             "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy({}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with serve_in_thread() as live:
        yield live


def _named(registry: Registry, proxy: ForwardProxy) -> str:
    port = registry.host.rsplit(":", 1)[1]
    name = f"registry.test:{port}"  # resolves nowhere: only the proxy knows the way
    proxy.routes[name] = ("127.0.0.1", int(port))
    return name


def _ping(name: str) -> None:
    """Ping `name` through the proxy, which passes the absolute-form request line on
    (`GET http://host/v2/`): the embedded registry answers it as HTTP/1.1 says it must."""
    client = RegistryClient(name, plain_http=True)
    try:
        client.ping()
    finally:
        client.close()


def test_a_client_reaches_a_registry_through_the_proxy(
        registry: Registry, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _named(registry, proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "other.test, .elsewhere")
    _ping(name)
    assert f"GET http://{name}/v2/ HTTP/1.1" in proxy.seen


def test_all_proxy_carries_plain_http_too(registry: Registry, proxy: ForwardProxy,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    name = _named(registry, proxy)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    _ping(name)
    assert f"GET http://{name}/v2/ HTTP/1.1" in proxy.seen


@pytest.mark.parametrize("no_proxy", ["registry.test", "*", ".test"])
def test_no_proxy_sends_the_host_direct(registry: Registry, proxy: ForwardProxy,
                                        monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    name = _named(registry, proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    client = RegistryClient(name, plain_http=True)
    try:
        with pytest.raises(NetworkError):
            client.ping()  # direct: the name resolves nowhere
    finally:
        client.close()
    assert proxy.seen == []


def test_an_https_proxy_does_not_carry_plain_http(registry: Registry, proxy: ForwardProxy,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    name = _named(registry, proxy)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = RegistryClient(name, plain_http=True)
    try:
        with pytest.raises(NetworkError):
            client.ping()
    finally:
        client.close()
    assert proxy.seen == []


def test_environment_proxies_keeps_only_what_freight_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_proxies() == {}
    monkeypatch.setenv("ALL_PROXY", "http://every:2")
    monkeypatch.setenv("NO_PROXY", "a,b")
    monkeypatch.setenv("FTP_PROXY", "http://ftp:3")
    assert environment_proxies() == {"http": "http://every:2", "https": "http://every:2",
                                     "no": "a,b"}
    monkeypatch.setenv("HTTP_PROXY", "http://plain:1")
    assert environment_proxies()["http"] == "http://plain:1"
    assert environment_proxies()["https"] == "http://every:2"


@pytest.mark.parametrize(("host", "port", "entry", "proxied"), [
    ("reg.corp", None, "reg.corp:5000", True),  # a port in the entry needs that port
    ("reg.corp", 5000, "reg.corp:x", True),  # a port that is no number covers nothing
    ("reg.corp", 5000, "*.reg.corp:5000", False),
    ("reg.corp", 5001, "*.reg.corp:5000", True),
    ("a.reg.corp", 5000, "*.reg.corp:5000", False),
    ("reg.corp", 5000, "REG.CORP", False),
    ("[fd00::5]", None, "fd00::5", False),
    ("fd00::5", None, "fd00::/8", False),
    ("fd00::5", None, "fd01::/16", True),
    ("10.0.0.1", None, "10.0.0.1", False),
    ("10.0.0.1", None, "10.0.0.10", True),
    ("registry.test", None, ",,", True),
    ("xreg.corp", None, "reg.corp", True),
    ("b.corp", None, "a.corp,b.corp", False),  # commas alone separate entries
    ("10.9.9.9", None, "10.1.2.3/8", False),  # a range written with host bits set
])
def test_no_proxy_entries(host: str, port: int | None, entry: str, proxied: bool) -> None:
    proxies = {"https": "http://proxy:1", "no": entry}
    assert (proxy_for("https", host, port, proxies) is not None) is proxied
    if proxied:
        assert proxy_for("https", host, port, proxies) == "http://proxy:1"


def test_without_no_proxy_every_other_host_is_proxied() -> None:
    for host in ("xxxx", "reg.io", ""):
        assert proxy_for("https", host, None, {"https": "http://p:1"}) == "http://p:1"


def test_the_router_checks_no_proxy_with_the_port_of_the_url() -> None:
    router = ProxyRouter(lambda route: httpx.HTTPTransport(),
                         {"http": "http://p:1", "no": "reg.example:5000"})
    assert router.proxy(httpx.URL("http://reg.example:5000/v2/")) is None
    assert router.proxy(httpx.URL("http://reg.example:5001/v2/")) == "http://p:1"


def test_the_router_builds_a_proxied_route_once(registry: Registry,
                                               proxy: ForwardProxy) -> None:
    name = _named(registry, proxy)
    log: list[str] = []
    router = ProxyRouter(lambda route: _Recorded(route, log), {"http": proxy.url})
    with httpx.Client(transport=router) as client:
        for _ in range(2):
            assert client.get(f"http://{name}/v2/").status_code == 200  # absolute form
    assert log == [f"built {proxy.url}", f"closed {proxy.url}"]
    assert proxy.seen == [f"GET http://{name}/v2/ HTTP/1.1"]  # one connection, kept alive


def test_no_proxy_set_is_direct_for_a_scheme_without_proxy() -> None:
    assert proxy_for("https", "reg.io", None, {"http": "http://p:1"}) is None
    assert proxy_for("https", "reg.io", None, {"https": ""}) is None


class _Recorded(httpx.BaseTransport):
    """A real transport that notes its route and whether it was closed."""

    def __init__(self, route: str | None, log: list[str]) -> None:
        self._inner = httpx.HTTPTransport(proxy=route)
        self.route, self.log = route, log
        log.append(f"built {route}")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        self.log.append(f"closed {self.route}")
        self._inner.close()


def test_routed_builds_one_direct_transport_when_no_proxy_is_set() -> None:
    log: list[str] = []
    transport = routed(lambda route: _Recorded(route, log), {"no": "x"})
    assert isinstance(transport, _Recorded) and log == ["built None"]
    transport.close()


@pytest.mark.parametrize("proxies", [{"http": "http://p:1"}, {"https": "http://p:1"}])
def test_routed_routes_when_any_proxy_is_set(proxies: dict[str, str]) -> None:
    assert isinstance(routed(lambda route: httpx.HTTPTransport(), proxies), ProxyRouter)


def test_routed_reads_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://p:1")
    assert isinstance(routed(lambda route: httpx.HTTPTransport()), ProxyRouter)


def test_the_router_builds_each_route_once_and_closes_them_all(registry: Registry) -> None:
    log: list[str] = []
    router = ProxyRouter(lambda route: _Recorded(route, log),
                         {"http": "http://proxy.test:1", "no": "127.0.0.1"})
    with httpx.Client(transport=router) as client:
        for _ in range(2):
            assert client.get(f"{registry.url}/v2/").status_code == 200
    assert log == ["built None", "closed None"]
    assert router.proxy(httpx.URL("http://reg.example:5000/v2/")) == "http://proxy.test:1"
    assert router.proxy(httpx.URL("https://reg.example/v2/")) is None
    router.close()
    assert log == ["built None", "closed None"]  # closed once
