"""Invite tokens: signed, tamper-evident, stored only as a hash."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from cortiware.onboarding.errors import (
    InviteExpired,
    InviteTokenInvalid,
    InviteUnknown,
    InviteUsed,
    OwnerExists,
)
from cortiware.onboarding.tokens import TokenInvalid, check_token, issue_token, token_hash

SECRET = "k" * 64
LATER = datetime.now(UTC) + timedelta(hours=72)


def test_issued_token_checks_and_is_unique() -> None:
    """A token checks with its secret, and two tokens for one expiry differ."""
    first = issue_token(SECRET, LATER)
    check_token(SECRET, first)
    assert issue_token(SECRET, LATER) != first


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "x" * 600, issue_token("z" * 64, LATER)],
    ids=["empty", "garbage", "dotted", "too-long", "other-secret"],
)
def test_malformed_or_foreign_tokens_are_invalid(token: str) -> None:
    """Empty, garbage, oversize and foreign-secret tokens raise TokenInvalid."""
    with pytest.raises(TokenInvalid):
        check_token(SECRET, token)


def test_any_changed_character_is_detected() -> None:
    """Changing any one character of a token makes it invalid."""
    token = issue_token(SECRET, LATER)
    for i in range(0, len(token), 7):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(TokenInvalid):
            check_token(SECRET, changed)


def test_hash_is_sha256_hex() -> None:
    """The stored hash is the SHA-256 hex digest, never the token itself."""
    token = issue_token(SECRET, LATER)
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in token_hash(token)


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (InviteTokenInvalid, 400, "invalid"),
        (InviteUnknown, 404, "unknown"),
        (InviteUsed, 409, "used"),
        (InviteExpired, 410, "expired"),
        (OwnerExists, 409, "email_taken"),
    ],
)
def test_errors_carry_status_and_reason(error: type[InviteUsed], status: int, reason: str) -> None:
    """Each onboarding error maps to the contract's status and names its funnel reason."""
    assert error.status_code == status
    assert error.reason == reason
