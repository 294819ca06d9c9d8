"""TreeWalk.visit: a digest named several times in one tree is read once, counted each
time at the depth it is named, and each naming descriptor's platform wins over the one
read (an image's config)."""

from __future__ import annotations

import io

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import Descriptor, Platform
from freight.sources.model import MAX_INDEX_DEPTH, Blob, ImageNode, Node, TreeWalk

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")
DIGEST = Digest.of(b"manifest")


def _desc(platform: Platform | None) -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, DIGEST, 8, platform)


def _counting_reader(reads: list[int]) -> ImageNode:
    reads.append(1)
    config = Blob(mt.OCI_CONFIG, 2, lambda: io.BytesIO(b"{}"), Digest.of(b"{}"))
    return ImageNode(config, (), None, AMD64)  # AMD64: what its config says


@pytest.mark.parametrize("order", [(None, ARM64, None), (ARM64, None, ARM64)])
def test_each_naming_gives_the_platform_its_descriptor_says(
        order: tuple[Platform | None, ...]) -> None:
    walk, reads = TreeWalk("test", SourceError), list[int]()
    seen: list[Node] = [walk.visit(_desc(p), 1, lambda: _counting_reader(reads)) for p in order]
    assert [n.platform for n in seen if isinstance(n, ImageNode)] == [p or AMD64 for p in order]
    assert len(reads) == 1
    assert walk.nodes == len(order)


def test_a_tree_named_again_deeper_is_measured_at_its_new_depth() -> None:
    walk = TreeWalk("test", SourceError)

    def subtree() -> Node:  # an index chain reaching down to MAX_INDEX_DEPTH from depth 1
        walk.enter(MAX_INDEX_DEPTH)
        return _counting_reader([])

    walk.visit(_desc(None), 1, subtree)
    walk.visit(_desc(None), 1, subtree)  # named again at the same depth: fine
    with pytest.raises(SourceError, match=f"nested more than {MAX_INDEX_DEPTH} deep"):
        walk.visit(_desc(None), 2, subtree)  # one deeper: its bottom is past the bound
