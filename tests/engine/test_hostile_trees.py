"""Index trees no real image has: indexes nested ever deeper, and an index that names one
sub-index hundreds of times over (each naming an image hundreds of times: a "billion
laughs" of manifests). From a layout or from a registry, each ends in one error with the
source's exit code, before any recursion limit or a walk without end."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.errors import RegistryError, SourceError
from freight.sources.model import MAX_INDEX_DEPTH, MAX_TREE_NODES
from support.fixtures import module_registry, own_cache
from support.synthreg import push_blob, push_manifest

from .test_attestations import Layout

registry = module_registry("hostile-trees-registry")
_own_cache = own_cache()

FAN_OUT = 120  # FAN_OUT² manifests under the root: past MAX_TREE_NODES
assert FAN_OUT * FAN_OUT > MAX_TREE_NODES


def _index_entry(layout: Layout, entries: list[dict[str, object]]) -> dict[str, object]:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                      "manifests": entries}).encode()
    return {"mediaType": mt.OCI_INDEX, **layout.blob(raw)}


def _nested(layout: Layout, levels: int) -> dict[str, object]:
    entry = layout.image("amd64", gzipped=True)
    for _ in range(levels):
        entry = _index_entry(layout, [entry])
    return entry


def _laughs(layout: Layout) -> dict[str, object]:
    image = layout.image("amd64", gzipped=True)
    middle = _index_entry(layout, [image] * FAN_OUT)
    return _index_entry(layout, [middle] * FAN_OUT)


def _reused_deeper(layout: Layout) -> dict[str, object]:
    """A sub-tree as deep as allowed where it is first named, and named again one index
    further down, where it is too deep: read once, it must still be measured twice."""
    shared = _nested(layout, MAX_INDEX_DEPTH - 1)
    return _index_entry(layout, [shared, _index_entry(layout, [shared])])


SHAPES = {"deep": lambda layout: _nested(layout, MAX_INDEX_DEPTH + 2),
          "reused deeper": _reused_deeper}


def _root(layout: Layout, entry: dict[str, object]) -> None:
    """Make `entry` (an index) the layout's one image, tagged v1."""
    root = {**entry, "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (layout.root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [root]}))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_layout_nested_too_deep_is_bad_input(tmp_path: Path, shape: str) -> None:
    layout = Layout(tmp_path / "tree")
    _root(layout, SHAPES[shape](layout))
    with pytest.raises(SourceError, match=rf"indexes nested more than {MAX_INDEX_DEPTH} deep"):
        freight.copy(f"oci:{layout.root}", f"oci:{tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()


def test_a_layout_nested_as_deep_as_real_ones_copies(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "ok")
    _root(layout, _nested(layout, 2))
    (result,) = freight.copy(f"oci:{layout.root}", f"oci:{tmp_path / 'out'}")
    assert result.digest is not None


def test_a_layout_of_a_billion_laughs_is_bad_input(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "laughs")
    _root(layout, _laughs(layout))
    with pytest.raises(SourceError, match=rf"more than {MAX_TREE_NODES} manifests"):
        freight.copy(f"oci:{layout.root}", f"oci:{tmp_path / 'out'}")


def _push_tree(registry: str, repository: str, layout: Layout, top: dict[str, object]) -> None:
    """Store every blob of `layout` and then its manifests and indexes, children first."""
    blobs = layout.root / "blobs" / "sha256"
    with httpx.Client(base_url=f"http://{registry}") as http:
        def put(entry: dict[str, object], ref: str) -> None:
            raw = (blobs / str(entry["digest"])[7:]).read_bytes()
            document = json.loads(raw)
            for child in {c["digest"]: c for c in document.get("manifests", [])}.values():
                put(child, child["digest"])
            for desc in (document.get("config"), *document.get("layers", [])):
                if desc is not None:
                    push_blob(http, repository, (blobs / desc["digest"][7:]).read_bytes())
            push_manifest(http, repository, ref, raw, str(entry["mediaType"]))
        put(top, "v1")


@pytest.mark.parametrize("shape", [*sorted(SHAPES), "laughs"])
def test_a_registry_tree_like_that_is_a_registry_error(registry: str, tmp_path: Path,
                                                       shape: str) -> None:
    layout = Layout(tmp_path / "tree")
    top = _laughs(layout) if shape == "laughs" else SHAPES[shape](layout)
    repository = f"hostile/{shape.replace(' ', '-')}"
    _push_tree(registry, repository, layout, top)
    message = "manifests and indexes under one" if shape == "laughs" else "nested more than"
    with pytest.raises(RegistryError, match=message):
        freight.pull(f"{registry}/{repository}:v1", f"oci:{tmp_path / 'out'}",
                     all_platforms=True)
    assert not (tmp_path / "out").exists()
