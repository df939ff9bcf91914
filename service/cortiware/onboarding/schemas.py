"""Request and response bodies of onboarding (contract §3 "Onboarding")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from cortiware.onboarding.tokens import MAX_TOKEN_LENGTH

__all__ = [
    "DEFAULT_EXPIRES_IN_HOURS",
    "AcceptIn",
    "AcceptOut",
    "InviteCreated",
    "InviteIn",
    "InviteOut",
    "InviteStatus",
    "Token",
    "VerifyOut",
]

DEFAULT_EXPIRES_IN_HOURS: Final = 72
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOKEN_LENGTH)]
InviteStatus = Literal["pending", "accepted", "expired", "revoked"]


class InviteIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/provider/invites`."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    org_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    plan_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    expires_in_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = DEFAULT_EXPIRES_IN_HOURS


class InviteCreated(msgspec.Struct):
    """A new invite; `token` and `accept_url` are shown this once and never stored."""

    id: uuid.UUID
    email: str
    org_name: str
    token: str
    accept_url: str
    expires_at: datetime


class InviteOut(msgspec.Struct):
    """An invite as listed to the provider (no token)."""

    id: uuid.UUID
    email: str
    org_name: str
    plan_code: str | None
    status: InviteStatus
    expires_at: datetime
    created_at: datetime
    created_by: str
    used_at: datetime | None
    organization_id: uuid.UUID | None
    revoked_at: datetime | None


class VerifyOut(msgspec.Struct):
    """What the accept page shows about a valid invite."""

    email: str
    org_name: str
    expires_at: datetime


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /api/onboarding/accept`: the owner's name and password (12-1024 characters)."""

    token: Token
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Annotated[str, msgspec.Meta(min_length=12, max_length=1024)]


class AcceptOut(msgspec.Struct):
    """The organization and owner created."""

    organization_id: uuid.UUID
    owner_id: uuid.UUID
