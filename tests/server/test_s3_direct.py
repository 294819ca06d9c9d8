"""The lean GET/HEAD/PUT/DELETE path of the S3 backend (s3_direct.py) against SeaweedFS:
the same answers as boto3 for present, absent and oddly named keys, conditional writes, and
boto3's failures (never an "absent") for wrong credentials and a missing bucket."""

from __future__ import annotations

import pytest

from freight.server.storage.s3_objects import S3Location, S3Objects
from support.seaweed import Seaweed

pytestmark = pytest.mark.integration
KEYS = ["plain", "with space/and+plus~tilde", "ünïcode/ключ", "deep/a/b/c/d"]


def boto3_get(objects: S3Objects, key: str) -> bytes | None:
    try:
        reply = objects.client.get_object(Bucket=objects.bucket, Key=objects.full(key))
    except objects.ClientError:
        return None
    data: bytes = reply["Body"].read()
    return data


def test_same_answers_as_boto3(seaweed: Seaweed) -> None:
    objects = S3Objects(S3Location.parse(seaweed.url()))
    assert objects.direct is not None  # credentials in the environment: the lean path is on
    for n, key in enumerate(KEYS):
        objects.put(key, f"value {n}".encode())
    for n, key in enumerate(KEYS):
        assert objects.get(key) == boto3_get(objects, key) == f"value {n}".encode()
        found = objects.head(key)
        listed = next(item for item in objects.list(key) if item.key == key)
        assert found is not None and (found.key, found.size) == (key, listed.size)
        assert abs(found.mtime - listed.mtime) < 1  # listing times are whole seconds
        assert objects.get(key, byte_range="bytes=2-4") == f"value {n}".encode()[2:5]
    assert objects.get("absent") is None and boto3_get(objects, "absent") is None
    assert objects.head("absent") is None


def test_writes_conditional_puts_and_deletes(seaweed: Seaweed) -> None:
    objects = S3Objects(S3Location.parse(seaweed.url()))
    for key in KEYS:
        assert objects.put(key, b"first", exclusive=True) is True
        assert objects.put(key, b"second", exclusive=True) is False  # 412: kept the first
        assert boto3_get(objects, key) == b"first"
        assert objects.put(key, b"third") is True
        assert boto3_get(objects, key) == b"third"
        objects.delete(key)
        assert boto3_get(objects, key) is None
        objects.delete(key)  # absent: as boto3's delete_object, no error
    big = bytes(range(256)) * 4096  # a body of a MiB, signed as boto3 signs it
    assert objects.put("big", big, exclusive=True) is True
    assert boto3_get(objects, "big") == big


def test_wrong_credentials_fail_as_boto3_does(seaweed: Seaweed,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    good = S3Objects(S3Location.parse(seaweed.url()))
    good.put("tag", b"present")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    bad = S3Objects(S3Location.parse(good.location.__str__()))
    assert bad.direct is not None
    with pytest.raises(bad.ClientError):  # a 403, never taken for an absent key
        bad.get("tag")
    with pytest.raises(bad.ClientError):
        bad.head("tag")
    with pytest.raises(bad.ClientError):
        bad.put("other", b"x", exclusive=True)
    with pytest.raises(bad.ClientError):
        bad.delete("tag")
    assert good.get("tag") == b"present" and good.get("other") is None


def test_missing_bucket_is_an_error_not_an_absent_key(seaweed: Seaweed) -> None:
    objects = S3Objects(S3Location.parse("s3://no-such-bucket-here/p"))
    with pytest.raises(objects.ClientError):
        objects.get("tag")


def test_a_proxy_in_the_environment_carries_every_store_request(
        seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    """As botocore does: HTTP_PROXY for a plain-http store (and no event-loop reads, which
    would connect to the store itself); NO_PROXY naming the store turns both back."""
    from urllib.parse import urlsplit

    from support.forward_proxy import ForwardProxy

    store = urlsplit(seaweed.endpoint)
    assert store.hostname is not None and store.port is not None
    proxy = ForwardProxy({store.netloc: (store.hostname, store.port)}).start()
    try:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        objects = S3Objects(S3Location.parse(seaweed.url()))
        monkeypatch.delenv("HTTP_PROXY")
        assert objects.direct is not None and objects.loop_reads is None
        objects.put("through", b"the proxy")
        assert objects.get("through") == b"the proxy"
        assert objects.head("through") is not None
        seen = len(proxy.seen)
        assert seen >= 1 and all(store.netloc in line for line in proxy.seen)

        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", store.hostname)
        bypassing = S3Objects(S3Location.parse(seaweed.url()))
        assert bypassing.direct is not None and bypassing.loop_reads is not None
        bypassing.put("around", b"it")
        assert bypassing.get("around") == b"it"
        assert len(proxy.seen) == seen
    finally:
        proxy.stop()
