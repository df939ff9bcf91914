"""Invite tokens: signed with ONBOARDING_TOKEN_SECRET, stored only as their SHA-256.

A token is itsdangerous' URL-safe signed form of `{"n": <random nonce>, "e": <expiry>}`.
The signature tells a tampered or made-up token (400) from one we issued; the nonce makes
each token unguessable and unique; the database keeps `sha256(token)` so a leaked table
holds no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from itsdangerous import BadData, URLSafeSerializer

__all__ = [
    "MAX_TOKEN_LENGTH",
    "SecretKeys",
    "TokenInvalid",
    "check_token",
    "issue_token",
    "token_hash",
]

_SALT: Final = "cortiware.onboarding.invite.v1"
MAX_TOKEN_LENGTH: Final = 512

SecretKeys = str | Sequence[str]
"""One secret, or several newest first while rotating: the newest signs, any verifies."""


class TokenInvalid(Exception):
    """The token is malformed or its signature does not match."""


def _serializer(secret: SecretKeys) -> URLSafeSerializer:
    # itsdangerous takes a list of keys oldest first: it signs with the last, verifies with any.
    keys = secret if isinstance(secret, str) else list(reversed(secret))
    return URLSafeSerializer(keys, salt=_SALT)


def issue_token(secret: SecretKeys, expires_at: datetime) -> str:
    """A new signed token for an invite expiring at `expires_at`."""
    serializer = _serializer(secret)
    token = serializer.dumps({"n": secrets.token_urlsafe(24), "e": int(expires_at.timestamp())})
    return token if isinstance(token, str) else token.decode()


def check_token(secret: SecretKeys, token: str) -> None:
    """Raise TokenInvalid unless `token` is well formed and signed with (one of) `secret`."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid
    try:
        payload = _serializer(secret).loads(token)
    except BadData as exc:
        raise TokenInvalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise TokenInvalid


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token: what the database stores and looks up."""
    return hashlib.sha256(token.encode()).hexdigest()
