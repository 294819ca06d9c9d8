"""What --verbose/--debug print never holds a secret (the CLI test is in test_fail_fast)."""

from __future__ import annotations

from freight.transport.log import redact_header, redact_url


def test_url_secrets_are_redacted_and_upload_state_kept() -> None:
    url = ("https://user:pw@s3.example/blob?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
           "&_state=keep-me&access_token=t0k3n&n=10")
    shown = redact_url(url)
    for secret in ("abc123", "AKIA", "t0k3n", "user", "pw@"):
        assert secret not in shown, shown
    assert "_state=keep-me" in shown and "n=10" in shown


def test_header_secrets_are_redacted() -> None:
    assert redact_header("Authorization", "Bearer eyJhbGci") == "Bearer <redacted>"
    assert redact_header("Cookie", "session=1") == "<redacted>"
    assert redact_header("Location", "/v2/x/blobs/uploads/1?_state=s") == \
        "/v2/x/blobs/uploads/1?_state=s"
