"""Deciding whether a missing component skips a test or fails it.

On a developer machine a missing dockerd is a reason to skip; in CI (``CI=true``) every
component is installed by ``.ci/run``, so anything missing is a broken setup and must fail.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running under CI, where missing components are failures."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip (developer machine) or fail (CI) with a reason a person can act on."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_root(what: str) -> None:
    """Docker and containerd need root here (no rootless setup)."""
    if os.geteuid() != 0:
        unavailable(f"{what} needs root")


def require_binary(name: str, *, package: str, prefer: tuple[str, ...] = ()) -> str:
    """Path of ``name`` (first existing of ``prefer``, else on PATH), or skip/fail."""
    for candidate in prefer:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found (apt-get install {package})")
    return found
