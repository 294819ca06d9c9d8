"""A private Docker engine (dockerd on vfs, no networking) and its CLI."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from .env import require_binary, require_root
from .procs import Service, wait_until

CLI_TIMEOUT_SECONDS = 300  # a docker build or pull on vfs copies whole rootfs trees
# The CLI shipped with the daemon (docker.io); a newer CLI elsewhere on PATH may default to
# BuildKit/buildx, which this daemon setup does not run.
PREFERRED_CLI = ("/usr/bin/docker",)


class DockerError(RuntimeError):
    """A docker CLI command failed; carries its output for the test report."""


@dataclass
class DockerEngine:
    """A running dockerd; ``run`` calls its CLI with the right DOCKER_HOST."""

    socket: Path
    cli: str
    service: Service

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "0",  # the classic builder; no BuildKit daemon here
            "DOCKER_CONFIG": str(self.socket.parent / "cli-config"),  # no host credentials
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS``; raise DockerError with stderr when it fails and ``check``."""
        done = subprocess.run(
            [self.cli, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise DockerError(
                f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
            )
        return done

    def image_id(self, reference: str) -> str:
        return self.run("inspect", "-f", "{{.Id}}", reference).stdout.strip()

    def run_image(self, reference: str) -> str:
        """Run the image's default command without a network; return its stdout."""
        return self.run("run", "--rm", "--network", "none", reference).stdout

    def remove_images(self, *references: str) -> None:
        self.run("rmi", "--force", *references, check=False)

    def stop(self) -> None:
        self.service.stop()


def _daemon_argv(dockerd: str, root: Path) -> list[str]:
    return [
        dockerd,
        f"--config-file={root / 'daemon.json'}",  # never read the host's /etc/docker
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--ip-masq=false",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--host=unix://{root / 'docker.sock'}",
        f"--pidfile={root / 'docker.pid'}",
    ]


def start_docker(root: Path) -> DockerEngine:
    """Start dockerd with all state under ``root``.

    Loopback registries need no ``insecure-registries`` entry: docker treats 127.0.0.0/8
    as insecure by default, so plain-HTTP push and pull to 127.0.0.1:PORT work.
    """
    require_root("dockerd")
    dockerd = require_binary("dockerd", package="docker.io")
    cli = require_binary("docker", package="docker.io", prefer=PREFERRED_CLI)
    root.mkdir(parents=True, exist_ok=True)
    (root / "daemon.json").write_text(json.dumps({}))
    (root / "cli-config").mkdir(exist_ok=True)
    socket = root / "docker.sock"
    service = Service(_daemon_argv(dockerd, root), log=root / "dockerd.log")
    engine = DockerEngine(socket, cli, service)
    try:
        wait_until(lambda: _pings(service, socket), what=f"dockerd at {socket}")
    except (TimeoutError, RuntimeError):
        service.stop()
        raise
    return engine


def _pings(service: Service, socket: Path) -> bool:
    service.check_alive()
    transport = httpx.HTTPTransport(uds=str(socket))
    with httpx.Client(transport=transport, timeout=2) as client:
        return client.get("http://docker/_ping").text == "OK"
