"""Onboarding API: provider invites; public verify and accept (contract §3 "Onboarding")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.activity import (
    INVITE_ACCEPTED,
    INVITE_CREATED,
    INVITE_FAILED,
    INVITE_VERIFIED,
    record_activity,
    record_activity_now,
)
from cortiware.audit import record, snapshot
from cortiware.auth import Principal, Role, require_roles
from cortiware.cache.read_through import commit_and_invalidate
from cortiware.db.models import OnboardingInvite
from cortiware.onboarding.errors import InviteError
from cortiware.onboarding.service import (
    DEFAULT_EXPIRES_IN_HOURS,
    accept_invite,
    create_invite,
    find_invite,
)
from cortiware.onboarding.tokens import MAX_TOKEN_LENGTH, token_hash

__all__ = [
    "AcceptIn",
    "AcceptOut",
    "InviteController",
    "InviteCreated",
    "InviteIn",
    "InviteOut",
    "OnboardingController",
    "VerifyOut",
    "route_handlers",
]

AnyRequest = Request[Any, Any, Any]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOKEN_LENGTH)]


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
    status: Literal["pending", "accepted", "expired"]
    expires_at: datetime
    created_at: datetime
    created_by: str
    used_at: datetime | None
    organization_id: uuid.UUID | None


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


def _status(invite: OnboardingInvite, now: datetime) -> Literal["pending", "accepted", "expired"]:
    if invite.used_at is not None:
        return "accepted"
    return "expired" if invite.expires_at <= now else "pending"


async def _failed(state: State, stage: str, exc: InviteError, token: str) -> None:
    # The request's own transaction rolls back, so the failure is recorded in its own.
    await record_activity_now(
        state.db_sessionmaker,
        INVITE_FAILED,
        details={"stage": stage, "reason": exc.reason, "token_sha256": token_hash(token)[:16]},
    )


class InviteController(Controller):
    """`/api/provider/invites`: invitations sent by the provider."""

    path = "/api/provider/invites"
    tags = ["onboarding"]
    guards = [require_roles(Role.PROVIDER)]

    @post("/", summary="Invite an organization")
    async def create(
        self,
        data: JSONBody[InviteIn],
        db_session: NamedDependency[AsyncSession],
        state: State,
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> InviteCreated:
        """201 with the token and accept link (the only time the token is shown)."""
        issued = await create_invite(
            db_session,
            secret=state.settings.onboarding_token_secret,
            email=data.email,
            org_name=data.org_name,
            plan_code=data.plan_code,
            expires_in_hours=data.expires_in_hours,
            created_by=principal.username,
        )
        invite = issued.invite
        await record(
            db_session,
            actor=principal,
            entity="onboarding_invite",
            entity_id=invite.id,
            action="create",
            after=snapshot(invite),
            request=request,
        )
        record_activity(
            db_session,
            INVITE_CREATED,
            subject=invite.email,
            details={"invite_id": str(invite.id), "plan_code": invite.plan_code},
        )
        base = state.settings.base_url.rstrip("/")
        return InviteCreated(
            id=invite.id,
            email=invite.email,
            org_name=invite.org_name,
            token=issued.token,
            accept_url=f"{base}/onboarding?token={quote(issued.token, safe='')}",
            expires_at=invite.expires_at,
        )

    @get("/", summary="Invites, newest first")
    async def list_invites(
        self,
        db_session: NamedDependency[AsyncSession],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[InviteOut]:
        """The newest `limit` invites with their status."""
        now = datetime.now(UTC)
        rows = await db_session.scalars(
            select(OnboardingInvite).order_by(OnboardingInvite.created_at.desc()).limit(limit)
        )
        return [
            InviteOut(
                id=i.id,
                email=i.email,
                org_name=i.org_name,
                plan_code=i.plan_code,
                status=_status(i, now),
                expires_at=i.expires_at,
                created_at=i.created_at,
                created_by=i.created_by,
                used_at=i.used_at,
                organization_id=i.organization_id,
            )
            for i in rows
        ]


class OnboardingController(Controller):
    """`/api/onboarding`: public; the token is the credential."""

    path = "/api/onboarding"
    tags = ["onboarding"]

    @get("/verify", summary="Check an invite token")
    async def verify(
        self,
        db_session: NamedDependency[AsyncSession],
        state: State,
        token: Annotated[str, QueryParameter(max_length=MAX_TOKEN_LENGTH)],
    ) -> VerifyOut:
        """200 with the invite; 400 malformed/tampered, 404 unknown, 409 used, 410 expired."""
        try:
            invite = await find_invite(
                db_session, secret=state.settings.onboarding_token_secrets, token=token
            )
        except InviteError as exc:
            await _failed(state, "verify", exc, token)
            raise
        record_activity(
            db_session,
            INVITE_VERIFIED,
            subject=invite.email,
            details={"invite_id": str(invite.id)},
        )
        return VerifyOut(email=invite.email, org_name=invite.org_name, expires_at=invite.expires_at)

    @post("/accept", summary="Accept an invite (requires Idempotency-Key)")
    async def accept(
        self,
        data: JSONBody[AcceptIn],
        db_session: NamedDependency[AsyncSession],
        state: State,
        request: AnyRequest,
    ) -> AcceptOut:
        """201: organization, owner and trial subscription in one transaction; errors as verify."""
        try:
            accepted = await accept_invite(
                db_session,
                secret=state.settings.onboarding_token_secrets,
                token=data.token,
                name=data.name,
                password=data.password,
                request=request,
            )
        except InviteError as exc:
            await db_session.rollback()  # release the row lock before recording the failure
            await _failed(state, "accept", exc, data.token)
            raise
        record_activity(
            db_session,
            INVITE_ACCEPTED,
            organization_id=accepted.organization.id,
            subject=accepted.invite.email,
            details={
                "invite_id": str(accepted.invite.id),
                "trial": accepted.subscription is not None,
            },
        )
        out = AcceptOut(organization_id=accepted.organization.id, owner_id=accepted.owner.id)
        await commit_and_invalidate(db_session, state, "organizations")
        return out


route_handlers: Final[list[Any]] = [InviteController, OnboardingController]
