"""Background processes for the push benchmark: a private dockerd and throwaway registries.

Everything started here is registered and stopped at exit (or by `stop_all`), so a failed
benchmark run leaves no daemon or registry behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_SECONDS = 20  # dockerd needs a few seconds to stop its containerd
READY_TIMEOUT_SECONDS = 60  # a cold dockerd on vfs can take several seconds
DOCKER_CLI = "/usr/bin/docker"  # the CLI shipped with the daemon; newer ones default to BuildKit

_running: list[Service] = []


class BenchError(RuntimeError):
    """Something the benchmark needs did not work; the message says what."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], *, what: str,
               timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll `ready` until it returns True; raise BenchError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise BenchError(f"{what} not ready after {timeout:.0f}s")


class Service:
    """One background process with its output in `log`; stopped at the latest at exit."""

    def __init__(self, argv: Sequence[str], *, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C must reach us first, so we can stop it
                env=env,
            )
        _running.append(self)

    def check_alive(self) -> None:
        """Raise with the log tail when the process has died."""
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-20:]
            raise BenchError(f"{self.argv[0]} exited {self.process.returncode}:\n"
                             + "\n".join(tail))

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        if self in _running:
            _running.remove(self)
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_GRACE_SECONDS)


@atexit.register
def stop_all() -> None:
    """Stop every service still running, newest first."""
    for service in list(reversed(_running)):
        with contextlib.suppress(Exception):
            service.stop()


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@dataclass
class Registry:
    """A running CNCF distribution registry; `host` goes into image references."""

    host: str
    storage: Path
    pid: int | None = None  # the server process, for its RSS and CPU (see ProcStats)

    def has_manifest(self, repository: str, tag: str) -> bool:
        """True when the tag resolves (GET with the manifest types every pusher here uses)."""
        accept = ", ".join([
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ])
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status) == 200
        except urllib.error.HTTPError:
            return False


def _registry_config(port: int, storage: Path) -> str:
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    return json.dumps(config, indent=2)  # JSON is YAML too


@contextlib.contextmanager
def fresh_registry(parent: Path) -> Iterator[Registry]:
    """A registry with brand-new, empty storage; stopped and deleted on exit."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise BenchError("docker-registry not found: apt-get install docker-registry")
    workdir = Path(tempfile.mkdtemp(prefix="registry-", dir=parent))
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(_registry_config(port, workdir / "storage"))
    service = Service([binary, "serve", str(config)], log=workdir / "registry.log")
    yield from _serving(service, f"127.0.0.1:{port}", workdir, "registry")


@contextlib.contextmanager
def fresh_freight_serve(parent: Path, freight: Sequence[str],
                        env: dict[str, str] | None = None) -> Iterator[Registry]:
    """`freight serve` with a brand-new, empty root under `parent`; stopped and deleted on
    exit. `freight` is the argv that runs freight (e.g. push_bench.freight_snapshot's)."""
    workdir = Path(tempfile.mkdtemp(prefix="freight-serve-", dir=parent))
    port = free_port()
    host = f"127.0.0.1:{port}"
    service = Service([*freight, "serve", "--root", str(workdir / "storage"),
                       "--address", host], log=workdir / "serve.log", env=env)
    yield from _serving(service, host, workdir, "freight serve")


def _serving(service: Service, host: str, workdir: Path, what: str) -> Iterator[Registry]:
    """Wait until `service` answers on `host`, yield it, then stop it and delete `workdir`
    (its storage is `workdir/storage`)."""
    try:
        wait_until(lambda: _ready(service, host), what=f"{what} on {host}", timeout=20)
        yield Registry(host, workdir / "storage", service.process.pid)
    finally:
        service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class ProcStats:
    """Peak RSS and CPU time of a running process (a registry, dockerd) over one step.

    `start()` resets the kernel's high-water mark (`/proc/PID/clear_refs` = 5), so the
    peak read by `stop()` is the peak *during* the step; where the reset is refused, the
    peak since the process started (idle start-up included) is reported instead."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = 0.0
        self.reset = False

    def start(self) -> ProcStats:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.cpu0 = self.cpu_seconds()
        return self

    def stop(self) -> tuple[float | None, float | None]:
        """(peak RSS in MB, CPU seconds) since `start()`; None where unreadable."""
        cpu = self.cpu_seconds()
        return self.peak_rss_mb(), (None if cpu < 0 else round(cpu - self.cpu0, 3))

    def peak_rss_mb(self) -> float | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads), or -1 when it is gone."""
        try:
            text = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return -1.0
        fields = text.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ready(service: Service, host: str) -> bool:
    service.check_alive()
    return _http_status(f"http://{host}/v2/") == 200


@dataclass
class Docker:
    """A private dockerd; `run` calls the daemon's own CLI against it."""

    socket: Path
    service: Service

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_BUILDKIT": "0",  # the classic builder; no BuildKit here
                "DOCKER_CONFIG": str(self.socket.parent / "cli-config")}  # no host credentials

    def run(self, *args: str, check: bool = True, cwd: Path | None = None,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        """Run `docker ARGS`; raise BenchError with its output when it fails and `check`."""
        done = subprocess.run([DOCKER_CLI, *args], env=self.env, capture_output=True, text=True,
                              cwd=cwd, stdin=stdin)
        if check and done.returncode != 0:
            raise BenchError(f"docker {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stderr[-2000:]}{done.stdout[-2000:]}")
        return done


def _dockerd_argv(data_root: Path, short: Path) -> list[str]:
    return [
        "dockerd", f"--config-file={short / 'daemon.json'}",  # never the host's /etc/docker
        "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--ip-masq=false", f"--data-root={data_root}", f"--exec-root={short / 'exec'}",
        f"--host=unix://{short / 'd.sock'}", f"--pidfile={short / 'd.pid'}",
    ]


@contextlib.contextmanager
def private_docker(data_root: Path) -> Iterator[Docker]:
    """Our own dockerd: images persist in `data_root`; socket and exec-root in a short /tmp
    dir (unix socket paths are limited to 108 bytes); stopped on exit."""
    if shutil.which("dockerd") is None or not Path(DOCKER_CLI).exists():
        raise BenchError("dockerd or /usr/bin/docker not found: apt-get install docker.io")
    data_root.mkdir(parents=True, exist_ok=True)
    short = Path(tempfile.mkdtemp(prefix="fbd-", dir="/tmp"))
    (short / "daemon.json").write_text("{}")
    (short / "cli-config").mkdir()
    service = Service(_dockerd_argv(data_root, short), log=data_root.parent / "dockerd.log")
    docker = Docker(short / "d.sock", service)
    try:
        wait_until(lambda: _docker_ready(docker), what="dockerd")
        yield docker
    finally:
        service.stop()
        shutil.rmtree(short, ignore_errors=True)


def _docker_ready(docker: Docker) -> bool:
    docker.service.check_alive()
    return docker.run("version", check=False).returncode == 0


def background_cpu(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes while this benchmark sits idle (0..ncpu)."""
    def busy_total() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = busy_total()
    time.sleep(seconds)
    busy1, total1 = busy_total()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(max_busy: float, patience: float) -> float:
    """Wait (up to `patience` s) until others keep fewer than `max_busy` cores busy.

    This machine is shared: other sessions' test suites can keep both cores busy, which
    slows every tool, multi-threaded ones most. Returns the last background reading."""
    deadline = time.monotonic() + patience
    busy = background_cpu()
    while busy >= max_busy and time.monotonic() < deadline:
        busy = background_cpu()
    return busy
