"""`both_kinds`: run a test against distribution 2.8 (tag schema) and the embedded
registry (referrers API); the `make_registry` fixture (tests/sync/conftest.py) reads it."""

from __future__ import annotations

import pytest

KINDS = ("distribution", "embedded")
both_kinds = pytest.mark.parametrize("make_registry", KINDS, indirect=True)
