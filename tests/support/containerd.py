"""A private containerd for ``ctr images import/export`` (no CRI, no unpacking)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .env import require_binary, require_root
from .procs import Service, wait_until

CTR_TIMEOUT_SECONDS = 120
NAMESPACE = "freight-tests"
# Only the content store and metadata are needed; CRI and exotic snapshotters only slow
# start-up and log errors on machines without their kernel support.
DISABLED_PLUGINS = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
]


@dataclass
class Containerd:
    socket: Path
    ctr: str
    service: Service

    def ctr_run(self, *args: str, namespace: str = NAMESPACE) -> str:
        done = subprocess.run(
            [self.ctr, "--address", str(self.socket), "--namespace", namespace, *args],
            capture_output=True,
            text=True,
            timeout=CTR_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def reexport(self, archive: Path, out: Path, refs: list[str], *, compress: bool) -> Path:
        """Import a ``docker save`` archive and export it as an OCI-layout archive.

        ``compress`` gzips layers on import (``--compress-blobs``), like the containerd image
        store holds pulled images; without it the layers stay uncompressed tars.
        A separate namespace per variant keeps the two kinds of blobs apart.
        """
        namespace = f"{NAMESPACE}-{'gzip' if compress else 'plain'}"
        flags = ["--no-unpack", *(["--compress-blobs"] if compress else [])]
        self.ctr_run("images", "import", *flags, str(archive), namespace=namespace)
        self.ctr_run("images", "export", str(out), *refs, namespace=namespace)
        return out

    def stop(self) -> None:
        self.service.stop()


def _config(root: Path, socket: Path) -> str:
    plugins = ", ".join(f'"{name}"' for name in DISABLED_PLUGINS)
    return "\n".join(
        [
            "version = 2",
            f'root = "{root / "root"}"',
            f'state = "{root / "state"}"',
            f"disabled_plugins = [{plugins}]",
            "[grpc]",
            f'  address = "{socket}"',
            "[ttrpc]",
            f'  address = "{socket}.ttrpc"',
            "[debug]",
            '  address = ""',
            "[metrics]",
            '  address = ""',
            "",
        ]
    )


def start_containerd(root: Path) -> Containerd:
    require_root("containerd")
    binary = require_binary("containerd", package="containerd")
    ctr = require_binary("ctr", package="containerd")
    root.mkdir(parents=True, exist_ok=True)
    socket = root / "containerd.sock"
    config = root / "config.toml"
    config.write_text(_config(root, socket))
    service = Service([binary, "--config", str(config)], log=root / "containerd.log")
    daemon = Containerd(socket, ctr, service)

    def ready() -> bool:
        service.check_alive()
        daemon.ctr_run("version")
        return True

    try:
        wait_until(ready, what=f"containerd at {socket}")
    except (TimeoutError, RuntimeError):
        service.stop()
        raise
    return daemon
