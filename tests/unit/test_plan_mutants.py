"""The planner's walk of an image tree (src/freight/engine/plan.py): every image of a
nested index, in index order. The rest of the planner is tested in test_engine_mutants.py.
Written against mutation testing of the module."""

from __future__ import annotations

import io

from freight import mediatypes as mt
from freight.digest import Digest
from freight.engine import plan
from freight.manifest import Descriptor, Index
from freight.sources.model import Blob, ImageNode, IndexNode


def _image(name: bytes) -> ImageNode:
    return ImageNode(Blob(mt.OCI_CONFIG, len(name), lambda: io.BytesIO(name),
                          Digest.of(name)), ())


def test_images_in_walks_nested_indexes_in_order() -> None:
    a, b, c = _image(b"a"), _image(b"b"), _image(b"c")
    desc = Descriptor(mt.OCI_MANIFEST, Digest.of(b"m"), 1)
    inner = IndexNode(Index.build(mt.OCI_INDEX, []), ((desc, b), (desc, c)))
    outer = IndexNode(Index.build(mt.OCI_INDEX, []), ((desc, a), (desc, inner)))
    assert list(plan.images_in(outer)) == [a, b, c]
    assert list(plan.images_in(a)) == [a]
