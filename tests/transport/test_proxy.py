"""HTTP(S)_PROXY and NO_PROXY, as docker, skopeo and curl read them: which requests go
through the proxy, and a real push and pull through one (plain HTTP forwarded, HTTPS
tunnelled with CONNECT) to a registry that only the proxy can reach by its name."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.testing import random_image
from freight.transport.proxy import environment_proxies, proxy_for
from support.forward_proxy import ForwardProxy
from support.freightcli import UserDirs, freight_argv
from support.registry import Registry
from support.secureregistry import make_tls, start_secure_registry

PROXY = "http://proxy.corp:3128"
ALL = {"http": PROXY, "https": PROXY}


@pytest.mark.parametrize(("host", "port", "no_proxy", "proxied"), [
    ("registry.example.com", None, "", True),
    ("registry.example.com", None, "example.com", False),  # a domain covers its hosts
    ("registry.example.com", None, ".example.com", False),
    ("registry.example.com", None, "*.example.com", False),
    ("example.com", None, ".example.com", False),
    ("notexample.com", None, "example.com", True),  # a suffix, not a substring
    ("Registry.Example.COM", None, "example.com", False),  # names are case-insensitive
    ("reg.corp", 5000, "reg.corp:5000", False),
    ("reg.corp", 443, "reg.corp:5000", True),  # that port only
    ("10.1.2.3", None, "10.0.0.0/8", False),
    ("11.1.2.3", None, "10.0.0.0/8", True),
    ("fd00::5", None, "fd00::/8", False),
    ("1.2.3.4", None, " 1.2.3.4 , other", False),  # spaces around entries
    ("anything.io", None, "*", False),
    ("127.0.0.1", 5000, "", False),  # loopback always goes direct
    ("localhost", 5000, "", False),
    ("::1", 5000, "", False),
])
def test_which_hosts_go_through_the_proxy(host: str, port: int | None, no_proxy: str,
                                          proxied: bool) -> None:
    proxies = {**ALL, "no": no_proxy} if no_proxy else ALL
    assert (proxy_for("https", host, port, proxies) is not None) == proxied


def test_each_scheme_takes_its_own_variable_and_all_proxy_fills_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:1")
    monkeypatch.setenv("ALL_PROXY", "http://every:2")
    found = environment_proxies()
    assert found == {"https": "http://secure:1", "http": "http://every:2"}
    assert proxy_for("http", "reg.io", None, found) == "http://every:2"
    assert proxy_for("ftp", "reg.io", None, found) is None


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy({}).start()
    yield running
    running.stop()


def _freight(proxy_url: str, dirs: UserDirs, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(dirs.env(), HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url)
    return subprocess.run([*freight_argv(), *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.integration
def test_push_and_pull_through_a_proxy_over_plain_http(registry: Registry, proxy: ForwardProxy,
                                                       tmp_path: Path) -> None:
    port = registry.host.rsplit(":", 1)[1]
    name = f"registry.test:{port}"  # resolves nowhere: only the proxy knows the way
    proxy.routes[name] = ("127.0.0.1", int(port))
    archive = tmp_path / "image.tar"
    random_image(archive, layers=2, seed=21)
    dirs = UserDirs.under(tmp_path)
    pushed = _freight(proxy.url, dirs, "push", "-q", "--plain-http", str(archive),
                      f"{name}/proxied/app:1")
    assert pushed.returncode == 0, pushed.stderr
    pulled = _freight(proxy.url, dirs, "pull", "-q", "--plain-http", f"{name}/proxied/app:1",
                      str(tmp_path / "out.tar"))
    assert pulled.returncode == 0, pulled.stderr
    assert any(f"http://{name}/v2/" in line for line in proxy.seen), proxy.seen
    assert dirs.leftovers() == []


@pytest.mark.integration
def test_push_through_a_proxy_over_https_with_connect(proxy: ForwardProxy,
                                                      tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls", names=("registry.test",))
    secure = start_secure_registry(tmp_path / "registry", tls=tls)
    try:
        port = secure.host.rsplit(":", 1)[1]
        name = f"registry.test:{port}"
        proxy.routes[name] = ("127.0.0.1", int(port))
        archive = tmp_path / "image.tar"
        random_image(archive, layers=1, seed=22)
        done = _freight(proxy.url, UserDirs.under(tmp_path), "push", "-q", "--ca-cert",
                        str(tls.ca_cert), str(archive), f"{name}/tunnelled/app:1")
        assert done.returncode == 0, done.stderr
        assert f"CONNECT {name} HTTP/1.1" in proxy.seen, proxy.seen
    finally:
        secure.service.stop()


@pytest.mark.integration
def test_a_proxy_that_is_down_is_named_in_the_error(tmp_path: Path) -> None:
    from support.procs import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    done = _freight(dead, UserDirs.under(tmp_path), "tags", "registry.test:5000/app")
    assert done.returncode == 5, done.stderr
    assert "through the proxy" in done.stderr and "NO_PROXY" in done.stderr, done.stderr
