"""The lean GET/HEAD path of the S3 backend (s3_direct.py) against SeaweedFS: the same
answers as boto3 for present, absent and oddly named keys, and boto3's failures (never an
"absent") for wrong credentials and a missing bucket."""

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


def test_missing_bucket_is_an_error_not_an_absent_key(seaweed: Seaweed) -> None:
    objects = S3Objects(S3Location.parse("s3://no-such-bucket-here/p"))
    with pytest.raises(objects.ClientError):
        objects.get("tag")
