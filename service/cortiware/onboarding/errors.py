"""Why an invite cannot be verified or accepted; each error carries its funnel `reason`.

InviteError
├── InviteTokenInvalid (400, "invalid")   malformed or tampered token
├── InviteUnknown      (404, "unknown")   well signed, but no such invite
├── InviteUsed         (409, "used")      accepted already
├── InviteExpired      (410, "expired")   past its expiry
├── InviteRevoked      (410, "revoked")   withdrawn by the provider
└── OwnerExists        (409, "email_taken") an owner already has this email
"""

from __future__ import annotations

from typing import ClassVar

from cortiware.errors import BadRequest, Conflict, CortiwareError, Gone, NotFound

__all__ = [
    "InviteError",
    "InviteExpired",
    "InviteRevoked",
    "InviteTokenInvalid",
    "InviteUnknown",
    "InviteUsed",
    "OwnerExists",
]


class InviteError(CortiwareError):
    """Base of onboarding failures; `reason` names the failure in funnel events."""

    reason: ClassVar[str] = "error"


class InviteTokenInvalid(InviteError, BadRequest):
    """The token is malformed or its signature does not match."""

    reason = "invalid"


class InviteUnknown(InviteError, NotFound):
    """No invite has this token."""

    reason = "unknown"


class InviteUsed(InviteError, Conflict):
    """The invite was accepted already."""

    reason = "used"


class InviteExpired(InviteError, Gone):
    """The invite expired."""

    reason = "expired"


class InviteRevoked(InviteError, Gone):
    """The provider revoked the invite."""

    reason = "revoked"


class OwnerExists(InviteError, Conflict):
    """An owner with the invite's email exists already."""

    reason = "email_taken"
