"""Signature checks: Stripe's (through the SDK) and Standard Webhooks (federation)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import stripe

from cortiware.webhooks import federation, standard, stripe_events

SECRETS = ("whsec_test_primary", "whsec_test_secondary")
KEY = b"federation-key-0123456789abcdef"


def _payload() -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": 1_770_000_000,
            "data": {"object": {"id": "sub_1"}},
        }
    ).encode()


def test_sdk_signature_helper_exists_in_this_stripe_version() -> None:
    """stripe 16.x ships `WebhookSignature.generate_signature_header` for offline tests."""
    header = stripe.WebhookSignature.generate_signature_header("{}", "whsec_x", 1)
    assert header.startswith("t=1,v1=")


def test_stripe_signature_with_either_secret_verifies() -> None:
    """A body signed with the first or the second configured secret is accepted."""
    body = _payload()
    for secret in SECRETS:
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
        stripe_events.verify_signature(body, header, SECRETS)


@pytest.mark.parametrize(
    ("header_of", "body_change"),
    [
        (lambda b: None, b""),
        (lambda b: stripe.WebhookSignature.generate_signature_header(b, "whsec_other"), b""),
        (
            lambda b: stripe.WebhookSignature.generate_signature_header(
                b, SECRETS[0], int(time.time()) - 301
            ),
            b"",
        ),
        (lambda b: stripe.WebhookSignature.generate_signature_header(b, SECRETS[0]), b" "),
        (lambda b: "garbage", b""),
    ],
    ids=["missing", "wrong-secret", "stale", "altered-body", "malformed"],
)
def test_stripe_signature_failures_raise_invalid_event(
    header_of: object, body_change: bytes
) -> None:
    """Missing, wrong, stale, malformed headers and altered bodies are all refused."""
    body = _payload()
    header = header_of(body.decode())  # type: ignore[operator]
    with pytest.raises(stripe_events.InvalidEvent):
        stripe_events.verify_signature(body + body_change, header, SECRETS)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"object": "event"}', b'{"object":"event","id":"e","type":"t"}'],
)
def test_parse_event_refuses_what_is_not_a_stripe_event(body: bytes) -> None:
    """A verified body that is not a Stripe event with id, type, created and data is refused."""
    with pytest.raises(stripe_events.InvalidEvent):
        stripe_events.parse_event(body)


def test_parse_event_keeps_id_type_and_created() -> None:
    """A well-formed event is parsed into its stored form."""
    event = stripe_events.parse_event(_payload())
    assert (event.source, event.event_id, event.type, event.created) == (
        "stripe",
        "evt_1",
        "customer.subscription.updated",
        1_770_000_000,
    )


def _headers(body: bytes, key: bytes = KEY, over: dict[str, str] | None = None) -> dict[str, str]:
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": standard.sign(key, "msg_1", now, body),
    }
    headers.update(over or {})
    return headers


def test_standard_webhooks_valid_signature_verifies() -> None:
    """A Standard Webhooks signature over id.timestamp.body verifies."""
    message = standard.verify([KEY], _headers(b"{}"), b"{}")
    assert message.message_id == "msg_1"


def test_standard_webhooks_matches_the_spec_example() -> None:
    """The signature equals the Standard Webhooks reference vector."""
    key = standard.decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    signature = standard.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_rotation_several_signatures_and_keys() -> None:
    """Any listed signature matching any configured key verifies (rotation on both sides)."""
    body = b"{}"
    other = standard.sign(b"other", "msg_1", int(time.time()), body)
    good = _headers(body, KEY)["webhook-signature"]
    headers = _headers(body, KEY, {"webhook-signature": f"{other} {good}"})
    standard.verify([b"unrelated", KEY], headers, body)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (_headers(b"{}"), b'{"x":1}'),
        (_headers(b"{}", b"wrong-key"), b"{}"),
        ({"webhook-id": "msg_1", "webhook-timestamp": "1"}, b"{}"),
        (_headers(b"{}", KEY, {"webhook-timestamp": str(int(time.time()) - 301)}), b"{}"),
        (_headers(b"{}", KEY, {"webhook-timestamp": "soon"}), b"{}"),
        (_headers(b"{}", KEY, {"webhook-signature": "v2,abc"}), b"{}"),
    ],
    ids=["tampered", "wrong-key", "missing-signature", "stale", "bad-timestamp", "no-v1"],
)
def test_standard_webhooks_failures_raise(headers: dict[str, str], body: bytes) -> None:
    """Tampered, unsigned, stale and malformed deliveries are refused."""
    with pytest.raises(standard.SignatureError):
        standard.verify([KEY], headers, body)


def test_decode_secret_requires_whsec_and_base64() -> None:
    """Secrets are `whsec_` + base64; anything else is a configuration error."""
    assert standard.decode_secret("whsec_" + base64.b64encode(b"k").decode()) == b"k"
    with pytest.raises(ValueError, match="whsec_"):
        standard.decode_secret("k")
    with pytest.raises(ValueError, match="base64"):
        standard.decode_secret("whsec_***")


def test_federation_verifier_parses_type_and_id() -> None:
    """A verified federation delivery becomes an event keyed by its webhook-id."""
    body = json.dumps({"type": "org.updated", "data": {}}).encode()
    verifier = federation.Verifier(["whsec_" + base64.b64encode(KEY).decode()])
    event = verifier.event(_headers(body), body)
    assert (event.source, event.event_id, event.type) == ("federation", "msg_1", "org.updated")
    with pytest.raises(federation.InvalidDelivery):
        verifier.event(_headers(b"[1]"), b"[1]")
