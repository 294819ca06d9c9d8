"""The registry's own floor: curl uploads the loose layer files, no work on the client.

Also the venvs of the Python peers (one per tool, pinned, reused when present).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

PEERS = {"dockertarpush": "dockertarpush==0.17", "crpy": "crpy==0.4.0"}  # pinned: reproducible
PY_SPY = "py-spy==0.4.3"

FLOOR_SCRIPT = r"""
host=$1; shift
for spec in "$@"; do
  file=${spec%%=*}; digest=${spec#*=}
  (
    location=$(curl -sSf -i -X POST "http://$host/v2/bench/app/blobs/uploads/" \
      | tr -d '\r' | sed -n 's/^Location: //Ip')
    case $location in /*) location="http://$host$location" ;; esac  # relative (freight serve)
    case $location in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
      -T "$file" "$location${sep}digest=$digest"
  ) &
done
for job in $(jobs -p); do wait "$job" || exit 1; done
"""


# The read side of the floor: GET each blob to /dev/null, all at once (no client-side work).
GET_FLOOR_SCRIPT = r"""
host=$1; shift
for digest in "$@"; do
  curl -sSf -o /dev/null "http://$host/v2/bench/app/blobs/$digest" &
done
for job in $(jobs -p); do wait "$job" || exit 1; done
"""

# Registry to registry with no client-side work: each blob's GET piped into its PUT.
COPY_FLOOR_SCRIPT = r"""
src=$1; dst=$2; shift 2
for digest in "$@"; do
  (
    location=$(curl -sSf -i -X POST "http://$dst/v2/bench/app/blobs/uploads/" \
      | tr -d '\r' | sed -n 's/^Location: //Ip')
    case $location in /*) location="http://$dst$location" ;; esac
    case $location in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sSf "http://$src/v2/bench/app/blobs/$digest" \
      | curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
          -T - "$location${sep}digest=$digest"
  ) &
done
for job in $(jobs -p); do wait "$job" || exit 1; done
"""


def manifest_blobs(host: str, repository: str, tag: str) -> list[str]:
    """The config and layer digests of a (single-platform) manifest on a registry."""
    accept = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.oci.image.manifest.v1+json"])
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}",
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        manifest = json.load(response)
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def loose_layers(workdir: Path, archive: Path) -> list[tuple[Path, str]]:
    """The app image's layer tars as loose files (extracted once), with their digests."""
    target = workdir / "images" / "app-layers"
    index = target / "digests.json"
    if not index.exists():
        target.mkdir(parents=True, exist_ok=True)
        found: list[tuple[str, str]] = []
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.endswith("/layer.tar"):
                    path = target / f"{len(found)}.tar"
                    _copy_member(tar, member, path)
                    found.append((str(path), _sha256(path)))
        index.write_text(json.dumps(found))
    return [(Path(p), d) for p, d in json.loads(index.read_text())]


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    source = tar.extractfile(member)
    assert source is not None
    with source, path.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def has_blob(host: str, repository: str, digest: str) -> bool:
    """HEAD the blob: True when the registry has it."""
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status) == 200
    except urllib.error.HTTPError:
        return False


def install_peers(venvs: Path) -> dict[str, Path | str]:
    """One venv per peer (reused when already there); a failure is recorded, not raised."""
    found: dict[str, Path | str] = {}
    for name, requirement in PEERS.items():
        try:
            found[name] = venv_with(venvs / name, requirement)
        except subprocess.CalledProcessError as error:
            found[name] = f"pip install {requirement} failed: {error.stderr[-400:]!s}"
    return found


def venv_with(venv: Path, requirement: str) -> Path:
    bin_dir = venv / "bin"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == requirement:
        return bin_dir
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                   capture_output=True, text=True)
    subprocess.run([str(bin_dir / "pip"), "install", "-q", requirement], check=True,
                   capture_output=True, text=True)
    marker.write_text(requirement)
    return bin_dir
