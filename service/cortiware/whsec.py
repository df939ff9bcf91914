"""The `whsec_<base64>` secret format of Standard Webhooks (https://www.standardwebhooks.com).

Foundation, so `settings` can refuse a malformed `FEDERATION_WEBHOOK_SECRETS` at start-up
with the same decoding the verifier (`cortiware.webhooks.standard`) uses.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

__all__ = ["PREFIX", "decode_secret"]

PREFIX: Final = "whsec_"


def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; raise ValueError when malformed."""
    if not secret.startswith(PREFIX):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    try:
        return base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a Standard Webhooks secret is whsec_ + base64") from exc
