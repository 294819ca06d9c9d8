"""Two small layers with known content, for tests that look inside them (built with
freight.testing; random layers from `freight.testing.random_layer` have no known bytes)."""

from __future__ import annotations

from freight.testing import layer_tar


def sample_layers() -> list[bytes]:
    """`bin/hello` (compressible, a known run of `hello\\n`) and `data/x` (larger)."""
    return [layer_tar({"bin/hello": b"hello\n" * 5000}),
            layer_tar({"data/x": bytes(range(256)) * 400})]
