"""JSON that comes from outside freight: registries, archives, layouts, bundles,
credential helpers, config and journal files."""

from __future__ import annotations

import json
from typing import Any


def parse(text: bytes | str) -> Any:
    """`json.loads`, except that JSON nested too deeply for Python's parser (a thousand
    levels of `[`) is a ValueError like any other malformed JSON. Every caller turns a
    ValueError into its own one-line error; a RecursionError reached users as an
    "internal error" (a registry's listing, a manifest, a token reply)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
