"""Paginated listings (sources/listing.py: tags and catalog) against a scripted registry:
every page followed, limits kept, and a registry's bad pages or links refused in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from freight.errors import NotFound, RegistryError, UsageError
from freight.sources.listing import list_all
from freight.transport.client import RegistryClient

from .stubregistry import Answer, Seen, StubRegistry, error

pytestmark = pytest.mark.timeout(20)
PATH = "/v2/app/tags/list"
TAGS = [f"t{i}" for i in range(7)]


def _pages(items: list[str], *, link: Callable[[str, str], str] | None = None,
           key: str = "tags") -> Callable[[Seen], Answer | None]:
    """A registry that serves `items` `n` at a time, after `last`, with distribution's Link."""
    def script(seen: Seen) -> Answer | None:
        parts = urlsplit(seen.path)
        if parts.path != PATH:
            return None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        n = int(query.get("n", "100"))
        start = items.index(query["last"]) + 1 if "last" in query else 0
        page = items[start:start + n]
        headers = {"Content-Type": "application/json"}
        if start + n < len(items):
            target = f"{PATH}?n={n}&last={page[-1]}"
            headers["Link"] = (link or (lambda t, h: f'<{t}>; rel="next"'))(target, seen.path)
        return 200, headers, json.dumps({"name": "app", key: page}).encode()
    return script


def _list(client: RegistryClient, *, limit: int | None = None, page_size: int = 3,
          key: str = "tags") -> tuple[tuple[str, ...], bool]:
    return list_all(client, PATH, key, limit=limit, page_size=page_size, what="tags of app")


def _queries(stub: StubRegistry) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(urlsplit(s.path).query).items()}
            for s in stub.requests("GET", "/tags/list")]


def test_every_page_is_followed_to_the_end(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(_pages(TAGS))
    assert _list(client_for(stub)) == (tuple(TAGS), True)
    assert [q.get("last") for q in _queries(stub)] == [None, "t2", "t5"]
    assert all(q["n"] == "3" for q in _queries(stub))


@pytest.mark.parametrize(("limit", "page_size", "expected", "complete", "asked"), [
    (4, 3, TAGS[:4], False, ["3", "3"]),   # stops once the limit is reached
    (2, 3, TAGS[:2], False, ["2"]),        # a limit under the page size asks for no more
    (7, 3, TAGS, True, ["3", "3", "3"]),   # exactly everything: complete
    (10, 3, TAGS, True, ["3", "3", "3"]),
    (1, 1, TAGS[:1], False, ["1"]),
])
def test_a_limit_is_kept_and_says_whether_that_was_all(  # type: ignore[no-untyped-def]
        stubs, client_for, limit: int, page_size: int, expected: list[str], complete: bool,
        asked: list[str]) -> None:
    stub = stubs()
    stub.script.append(_pages(TAGS))
    assert _list(client_for(stub), limit=limit, page_size=page_size) == \
        (tuple(expected), complete)
    assert [q["n"] for q in _queries(stub)] == asked


def test_a_limit_inside_a_page_is_not_complete_even_on_the_last_page(  # type: ignore[no-untyped-def]
        stubs, client_for) -> None:
    stub = stubs()
    stub.script.append(_pages(TAGS[:3]))
    assert _list(client_for(stub), limit=2, page_size=5) == (("t0", "t1"), False)


@pytest.mark.parametrize(("limit", "page_size", "message"), [
    (0, 10, "the limit must be at least 1"),
    (-1, 10, "the limit must be at least 1"),
    (None, 0, "the page size must be at least 1"),
    (5, 0, "the page size must be at least 1"),
])
def test_counts_below_one_are_usage_errors_before_any_request(  # type: ignore[no-untyped-def]
        stubs, client_for, limit: int | None, page_size: int, message: str) -> None:
    stub = stubs()
    with pytest.raises(UsageError) as caught:
        _list(client_for(stub), limit=limit, page_size=page_size)
    assert str(caught.value) == message
    assert stub.seen == []


def test_a_limit_of_one_and_a_page_of_one_are_fine(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(_pages(TAGS[:2]))
    assert _list(client_for(stub), page_size=1) == (("t0", "t1"), True)


@pytest.mark.parametrize("body", [b'{"name": "app", "tags": null}', b'{"name": "app"}'])
def test_a_repository_without_tags_lists_nothing(stubs, client_for, body: bytes) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(lambda seen: (200, {"Content-Type": "application/json"}, body))
    assert _list(client_for(stub)) == ((), True)


def test_another_key_is_read_for_the_catalog(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(_pages(["a/b", "c"], key="repositories"))
    assert _list(client_for(stub), key="repositories") == (("a/b", "c"), True)


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>proxy error</html>", "sent a listing that is not JSON"),
    (b'{"tags": "v1"}', "sent a listing without a list of 'tags'"),
    (b'{"tags": ["v1", 2]}', "sent a listing without a list of 'tags'"),
    (b'["v1"]', "sent a listing without a list of 'tags'"),
])
def test_a_page_that_is_not_a_listing_is_a_registry_error(  # type: ignore[no-untyped-def]
        stubs, client_for, body: bytes, message: str) -> None:
    stub = stubs()
    stub.script.append(lambda seen: (200, {"Content-Type": "application/json"}, body))
    with pytest.raises(RegistryError) as caught:
        _list(client_for(stub))
    assert str(caught.value) == f"{stub.host} {message}"


def test_a_link_to_another_host_is_not_followed(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub, other = stubs(), stubs()
    stub.script.append(_pages(TAGS, link=lambda t, h: f'<http://{other.host}{t}>; rel="next"'))
    with pytest.raises(RegistryError) as caught:
        _list(client_for(stub))
    assert str(caught.value).startswith(
        f"{stub.host} sent a next-page link to another host (http://{other.host}{PATH}")
    assert str(caught.value).endswith("); not following it with your credentials")
    assert other.seen == []


def test_an_absolute_link_to_the_same_registry_is_followed(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(_pages(TAGS, link=lambda t, h: f'<http://{stub.host}{t}>; rel="next"'))
    assert _list(client_for(stub)) == (tuple(TAGS), True)


def test_a_link_back_to_a_page_already_read_ends_with_an_error(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(_pages(TAGS, link=lambda t, h: f'<{h}>; rel="next"'))
    with pytest.raises(RegistryError) as caught:
        _list(client_for(stub))
    assert str(caught.value) == \
        f"{stub.host} sent the same next-page link twice ({PATH}?n=3)"
    assert len(stub.requests("GET", "/tags/list")) == 1


def test_a_refused_listing_says_what_was_being_listed(stubs, client_for) -> None:  # type: ignore[no-untyped-def]
    stub = stubs()
    stub.script.append(lambda seen: error(404, "NAME_UNKNOWN"))
    with pytest.raises(NotFound) as caught:
        _list(client_for(stub))
    assert "while tags of app (NAME_UNKNOWN" in str(caught.value)
