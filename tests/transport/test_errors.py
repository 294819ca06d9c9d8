"""What a registry says when it refuses reaches the user: its code, message and detail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from freight.errors import RegistryError
from freight.transport.client import RegistryClient

from .conftest import StubFactory

ClientFor = Callable[..., RegistryClient]


def _refusing(stubs: StubFactory, body: bytes, status: int = 400) -> Any:
    stub = stubs()
    stub.script.append(lambda seen: (status, {"Content-Type": "application/json"}, body)
                       if seen.path == "/v2/" else None)
    return stub


def _error(stubs: StubFactory, client_for: ClientFor, body: bytes) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        client_for(_refusing(stubs, body)).ping()
    return caught.value


def test_the_registry_code_message_and_detail_are_kept(stubs: StubFactory,
                                                       client_for: ClientFor) -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "quota exceeded for team",
                                   "detail": {"limit": 10}}]}).encode()
    error = _error(stubs, client_for, body)
    assert "DENIED: quota exceeded for team" in str(error)
    assert (error.code, error.detail, error.status) == ("DENIED", {"limit": 10}, 400)


def test_entries_not_in_the_spec_shape_are_skipped(stubs: StubFactory,
                                                   client_for: ClientFor) -> None:
    body = json.dumps({"errors": ["text", {"code": 7}, {"code": "SIZE_INVALID"}]}).encode()
    error = _error(stubs, client_for, body)
    assert error.code == "SIZE_INVALID" and error.detail is None
    assert "SIZE_INVALID: )" in str(error)  # no message given: none invented


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"errors": "all of them"}', b"<html>busy</html>",
                                  b'{"errors": {"code": "X"}}', b"\xff\xfe"])
def test_a_body_that_is_not_an_error_list_is_shown_as_it_is(
        stubs: StubFactory, client_for: ClientFor, body: bytes) -> None:
    error = _error(stubs, client_for, body)
    assert error.code is None and "HTTP 400" in str(error)
