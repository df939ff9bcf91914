"""Invite tokens: signed with ONBOARDING_TOKEN_SECRET, stored only as their SHA-256.

A token is itsdangerous' URL-safe signed form of `{"n": <random nonce>, "e": <expiry>}`.
The signature tells a tampered or made-up token (400) from one we issued; the nonce makes
each token unguessable and unique; the database keeps `sha256(token)` so a leaked table
holds no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Final

from itsdangerous import BadData, URLSafeSerializer

__all__ = ["MAX_TOKEN_LENGTH", "TokenInvalid", "check_token", "issue_token", "token_hash"]

_SALT: Final = "cortiware.onboarding.invite.v1"
MAX_TOKEN_LENGTH: Final = 512


class TokenInvalid(Exception):
    """The token is malformed or its signature does not match."""


def issue_token(secret: str, expires_at: datetime) -> str:
    """A new signed token for an invite expiring at `expires_at`."""
    serializer = URLSafeSerializer(secret, salt=_SALT)
    token = serializer.dumps({"n": secrets.token_urlsafe(24), "e": int(expires_at.timestamp())})
    return token if isinstance(token, str) else token.decode()


def check_token(secret: str, token: str) -> None:
    """Raise TokenInvalid unless `token` is well formed and signed with `secret`."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid
    try:
        payload = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except BadData as exc:
        raise TokenInvalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise TokenInvalid


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token: what the database stores and looks up."""
    return hashlib.sha256(token.encode()).hexdigest()
