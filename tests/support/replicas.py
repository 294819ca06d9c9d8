"""Several `freight serve --storage s3://...` processes on one bucket, and HAProxy (Debian)
balancing round robin over them: the stateless-replica setup of issue 13."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.env import require_binary
from support.procs import Service, free_port, wait_until

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Replica:
    service: Service
    url: str

    def kill(self) -> None:
        """kill -9: no graceful shutdown, whatever was in flight is cut."""
        self.service.process.kill()
        self.service.process.wait()

    def stop(self) -> None:
        self.service.stop()


def start_replica(storage_url: str, workdir: Path, env: dict[str, str], *extra: str) -> Replica:
    port = free_port()
    argv = [sys.executable, "-m", "freight", "serve", "--storage", storage_url,
            "--address", f"127.0.0.1:{port}", *extra]
    child_env = {**env, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get(
        "PYTHONPATH", "")])}
    service = Service(argv, log=workdir / f"replica-{port}.log", env=child_env)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        service.check_alive()
        return httpx.get(f"{url}/v2/", timeout=2).status_code == 200

    wait_until(ready, what=f"freight serve on port {port}")
    return Replica(service, url)


@dataclass
class Balancer:
    service: Service
    url: str
    replicas: list[Replica] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def stop(self) -> None:
        self.service.stop()


HAPROXY_CONFIG = """\
global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout check 5s
    retries 3
    option redispatch
backend_placeholder
"""


def start_balancer(replicas: list[Replica] | list[str], workdir: Path) -> Balancer:
    """HAProxy round robin over `replicas` (or their URLs), health-checked every 500 ms
    (a busy machine answers a check late: three misses mark a replica down)."""
    haproxy = require_binary("haproxy", package="haproxy", prefer=("/usr/sbin/haproxy",))
    port = free_port()
    urls = [r if isinstance(r, str) else r.url for r in replicas]
    servers = "\n".join(f"    server r{n} {url.removeprefix('http://')} check"
                        for n, url in enumerate(urls))
    config = HAPROXY_CONFIG.replace("backend_placeholder\n", f"""\
frontend registry
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /v2/
    default-server inter 500ms fall 3 rise 1
{servers}
""")
    path = workdir / f"haproxy-{port}.cfg"
    path.write_text(config)
    service = Service([haproxy, "-db", "-f", str(path)], log=workdir / "haproxy.log")
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        service.check_alive()
        return httpx.get(f"{url}/v2/", timeout=2).status_code == 200

    wait_until(ready, what="haproxy")
    return Balancer(service, url, [r for r in replicas if isinstance(r, Replica)])
