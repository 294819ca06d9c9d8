#!/usr/bin/env bash
# freight's main job in one command: start the embedded registry on a temporary root, push a
# real `docker save` archive to it, pull it back, and show what the registry holds.
#   bash examples/quickstart.sh [ARCHIVE]     (default: a generated sample archive)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python -c 'import freight' 2>/dev/null || python -m pip install -q -e "$here"

work=$(mktemp -d)
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

archive=${1:-$work/sample.tar}
[ -n "${1:-}" ] || python "$here/examples/sample_archive.py" "$archive"
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

freight serve --root "$work/registry" --address "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do
  python -c "import httpx,sys; httpx.get('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
  sleep 0.1
done

echo "== freight push $(basename "$archive") 127.0.0.1:$port"
FREIGHT_CACHE_DIR="$work/cache" freight push "$archive" "127.0.0.1:$port"
echo "== the same push again (nothing to upload)"
FREIGHT_CACHE_DIR="$work/cache" freight push "$archive" "127.0.0.1:$port" --json
echo "== what the registry holds"
freight catalog "127.0.0.1:$port"
for repo in $(freight catalog "127.0.0.1:$port"); do
  freight tags "127.0.0.1:$port/$repo"
  first=$(freight tags "127.0.0.1:$port/$repo" | head -1)
  freight manifest "127.0.0.1:$port/$repo:$first"
  echo "== freight pull 127.0.0.1:$port/$repo:$first pulled.tar (docker load takes it)"
  freight pull -q "127.0.0.1:$port/$repo:$first" "$work/pulled.tar"
  tar -tvf "$work/pulled.tar"
done
