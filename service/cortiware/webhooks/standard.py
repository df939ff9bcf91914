"""Standard Webhooks signatures (https://www.standardwebhooks.com), verified in constant time.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; `webhook-signature` holds
one or more space-separated `v1,<base64 HMAC-SHA256>` entries (several during rotation);
each secret is `whsec_` + base64 of the key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from cortiware.settings import whsec_key as decode_secret  # settings validates with it too

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SignatureError",
    "VerifiedMessage",
    "decode_secret",
    "sign",
    "verify",
]

DEFAULT_TOLERANCE_SECONDS: Final = 300
_MAX_ID_LENGTH: Final = 255
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,12}")


class SignatureError(ValueError):
    """The message is not authentic or not fresh; the message says which check failed."""


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """An authentic message: its id and timestamp from the headers."""

    message_id: str
    timestamp: int


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of `body` (what a sender puts in `webhook-signature`)."""
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(
    keys: Iterable[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> VerifiedMessage:
    """Check the headers' signature over `body` against every key.

    Raises:
        SignatureError: a header is missing or malformed, the timestamp is outside
            `tolerance` seconds of now (either way), or no signature matches any key.
    """
    message_id = headers.get("webhook-id", "")
    raw_timestamp = headers.get("webhook-timestamp", "")
    raw_signatures = headers.get("webhook-signature", "")
    if not message_id or not raw_timestamp or not raw_signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(message_id) > _MAX_ID_LENGTH:
        raise SignatureError("webhook-id is too long")
    if not _UNIX_SECONDS.fullmatch(raw_timestamp):  # ASCII digits only: "²".isdigit()
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if abs(math.floor(current) - timestamp) > tolerance:  # ints: no float overflow
        raise SignatureError("webhook-timestamp is outside the tolerance window")
    offered = [
        entry.split(",", 1)[1].encode()
        for entry in raw_signatures.split(" ")
        if entry.startswith("v1,")
    ]
    if not offered:
        raise SignatureError("no v1 signature in webhook-signature")
    matched = False
    for key in keys:
        expected = sign(key, message_id, timestamp, body)[3:].encode()
        for candidate in offered:
            # Every comparison runs (no early exit), each in constant time.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches")
    return VerifiedMessage(message_id=message_id, timestamp=timestamp)
