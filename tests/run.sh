#!/usr/bin/env bash
# The test command (README, .ci/run): installs freight with its test extras, checks the
# tree with ruff and mypy --strict, then runs pytest with any arguments given
# (`bash tests/run.sh tests/unit -x`). Tests needing real components (distribution,
# docker, skopeo, containerd, tmux, SeaweedFS, HAProxy) skip when one is missing, except
# with CI=true, where they fail: `.ci/run` installs them first, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q -e '.[test]'
echo "--- ruff check"
python -m ruff check src tests
echo "--- mypy (strict)"
python -m mypy
echo "--- pytest"
exec python -m pytest -q "$@"
