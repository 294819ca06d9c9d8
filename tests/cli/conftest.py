"""The CLI as a user meets it: the embedded registry in a thread (plain HTTP or HTTPS with
trustme certificates), images pushed into it, and `freight` run through click's CliRunner.

Process-wide state the CLI sets (the remembered scheme per host, the --verbose level) is
reset around every test.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from click.testing import CliRunner, Result

from freight.cli import main
from freight.server import FilesystemStorage, make_app
from freight.server.runner import listen
from freight.testing import ImageSpec, write_images
from freight.transport import log, scheme
from support.samples import sample_layers


@dataclass(frozen=True)
class Certs:
    ca: Path  # what a client must trust
    cert: Path
    key: Path


@dataclass(frozen=True)
class Served:
    """A running embedded registry: `host` (127.0.0.1:PORT) and whether it speaks TLS."""

    host: str
    tls: Certs | None

    def http(self) -> httpx.Client:
        if self.tls is None:
            return httpx.Client(base_url=f"http://{self.host}", timeout=30)
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        return httpx.Client(base_url=f"https://{self.host}", verify=context, timeout=30)


def make_certs(directory: Path, *names: str) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    certs = Certs(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(certs.ca))
    issued.cert_chain_pems[0].write_to_path(str(certs.cert))
    issued.private_key_pem.write_to_path(str(certs.key))
    return certs


@contextmanager
def serving(root: Path, tls: Certs | None = None, **options: object) -> Iterator[Served]:
    """The embedded registry on a free loopback port, in a thread, for the duration."""
    app = make_app(FilesystemStorage(root), **options)
    sock = listen("127.0.0.1", 0)
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                            ssl_certfile=str(tls.cert) if tls else None,
                            ssl_keyfile=str(tls.key) if tls else None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    served = Served(f"127.0.0.1:{sock.getsockname()[1]}", tls)
    try:
        _wait_started(server)
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_started(server: uvicorn.Server) -> None:
    done = threading.Event()
    for _ in range(3000):  # bounded: at most ~30 s
        if server.started:
            return
        done.wait(0.01)
    raise AssertionError("the embedded registry did not start")


@pytest.fixture(autouse=True)
def _clean_process_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    scheme.forget_all()
    for name in ("DOCKER_AUTH_CONFIG", "REGISTRY_AUTH_FILE", "FREIGHT_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", "")
    yield
    scheme.forget_all()
    log.set_level(log.QUIET)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path / "plain-root") as served:
        yield served


@pytest.fixture
def secure(tmp_path: Path, certs: Certs) -> Iterator[Served]:
    with serving(tmp_path / "tls-root", certs) as served:
        yield served


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy `docker save` archive of one two-layer image named app:1 and app:2."""
    path = tmp_path_factory.mktemp("archive") / "app.tar"
    write_images(path, [ImageSpec(sample_layers(), ("app:1", "app:2"))])
    return path


Run = Callable[..., Result]


@pytest.fixture
def freight() -> Run:
    """`freight(*args, input=...)`: the CLI in-process; stdout and stderr apart."""
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return run


def pushed(served: Served, archive: Path, ref: str, *extra: str) -> str:
    """`freight push` the archive to `served` as `ref` (REPO:TAG); returns the reference."""
    full = f"{served.host}/{ref}"
    ca = ["--ca-cert", str(served.tls.ca)] if served.tls else []
    result = CliRunner().invoke(main, ["push", str(archive), full, *ca, *extra],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return full


def one_error_line(result: Result, code: int, *words: str) -> str:
    """The run failed with `code` and one line on stderr holding each of `words`."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("freight: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def seed(served: Served, repo: str, tag: str, *, arch: str = "amd64",
         layer: bytes = b"layer bytes") -> str:
    """A one-layer linux/`arch` image put with plain HTTP requests (no freight code);
    returns the manifest digest."""
    import hashlib
    import json

    def sha(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    with served.http() as client:
        for blob in (config, layer):
            started = client.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            done = client.put(started.headers["location"], params={"digest": sha(blob)},
                              content=blob)
            assert done.status_code == 201, done.text
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha(layer), "size": len(layer)}]}).encode()
        reply = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                           headers={"Content-Type": OCI_MANIFEST})
        assert reply.status_code == 201, reply.text
    return sha(manifest)


def src_env() -> dict[str, str]:
    """The environment for `python -m freight` in a subprocess, running this tree's code."""
    import os

    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src}
