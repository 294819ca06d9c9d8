"""HTTPS on loopback: probed like docker does for an insecure registry (HTTPS if the
registry speaks it, else plain HTTP, decided once per host per process), flags to force
either, `--tls-verify=false`, and certificate errors that say what is wrong."""

from __future__ import annotations

import ssl
from pathlib import Path

from freight.errors import EXIT_NETWORK

from .conftest import Run, Served, make_certs, one_error_line, seed, serving


def test_https_registry_on_loopback_is_reached(freight: Run, secure: Served) -> None:
    digest = seed(secure, "team/app", "1")
    result = freight("digest", f"{secure.host}/team/app:1", "--ca-cert", str(secure.tls.ca))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == digest


def test_plain_http_loopback_is_probed_once_per_process(freight: Run, plain: Served) -> None:
    seed(plain, "team/app", "1")
    first = freight("-v", "tags", f"{plain.host}/team/app")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.split() == ["1"]
    assert f"{plain.host} speaks plain HTTP" in first.stderr
    assert f"GET http://{plain.host}/v2/team/app/tags/list" in first.stderr
    again = freight("-v", "digest", f"{plain.host}/team/app:1")
    assert again.exit_code == 0, again.stderr
    assert "speaks" not in again.stderr  # remembered: no second probe


def test_https_flag_never_falls_back(freight: Run, plain: Served) -> None:
    one_error_line(freight("tags", f"{plain.host}/team/app", "--https"), EXIT_NETWORK,
                   "speaks plain HTTP", "--plain-http")


def test_plain_http_flag_against_https(freight: Run, secure: Served) -> None:
    one_error_line(freight("tags", f"{secure.host}/team/app", "--plain-http"), EXIT_NETWORK,
                   "drop --plain-http")


def test_untrusted_certificate_and_tls_verify_false(freight: Run, secure: Served) -> None:
    seed(secure, "team/app", "1")
    one_error_line(freight("tags", f"{secure.host}/team/app"), EXIT_NETWORK,
                   "not trusted", "--ca-cert", "--tls-verify=false")
    skipped = freight("tags", f"{secure.host}/team/app", "--tls-verify=false")
    assert skipped.exit_code == 0, skipped.stderr
    assert skipped.stdout.split() == ["1"]


def test_certificate_for_another_name_says_which(freight: Run, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "other", "registry.example", "mirror.example")
    with serving(tmp_path / "root", certs) as served:
        line = one_error_line(freight("tags", f"{served.host}/team/app", "--ca-cert",
                                      str(certs.ca)), EXIT_NETWORK,
                              "registry.example, mirror.example", "not 127.0.0.1")
    assert "not trusted" not in line and "--ca-cert" not in line


def test_login_over_https_loopback(freight: Run, tmp_path: Path, certs: object) -> None:
    import bcrypt

    from freight.server.auth import BasicAuth

    from .conftest import Certs

    assert isinstance(certs, Certs)
    users = {"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))}
    with serving(tmp_path / "root", certs, auth=BasicAuth(users)) as served:
        authfile = tmp_path / "auth.json"
        ok = freight("login", served.host, "-u", "alice", "--password-stdin", "--ca-cert",
                     str(certs.ca), "--authfile", str(authfile), input="secret\n")
        assert ok.exit_code == 0, ok.stderr
        assert served.host in authfile.read_text()


def test_push_to_freight_serve_with_tls(tmp_path: Path, archive: Path) -> None:
    """The issue's case, as a user runs it: `freight serve --tls-cert …`, then push."""
    import subprocess
    import sys

    import httpx

    from support.procs import free_port, wait_until

    from .conftest import make_certs, src_env

    certs = make_certs(tmp_path / "certs")
    port = free_port()
    env = src_env()
    serve = subprocess.Popen(
        [sys.executable, "-m", "freight", "serve", "--root", str(tmp_path / "root"),
         "--address", f"127.0.0.1:{port}", "--tls-cert", str(certs.cert), "--tls-key",
         str(certs.key)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        context = ssl_context(certs.ca)
        wait_until(lambda: httpx.get(f"https://127.0.0.1:{port}/v2/", verify=context,
                                     timeout=1).status_code == 200,
                   what="freight serve with TLS", timeout=30)
        done = subprocess.run(
            [sys.executable, "-m", "freight", "push", str(archive), f"127.0.0.1:{port}/tls/app:1",
             "--ca-cert", str(certs.ca), "--quiet"],
            env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        serve.terminate()
        serve.wait(30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"127.0.0.1:{port}/tls/app:1@sha256:")


def ssl_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))
