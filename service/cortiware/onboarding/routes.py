"""Onboarding API: provider invites; public verify and accept (contract §3 "Onboarding")."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.app_state import SETTINGS
from cortiware.auth import Principal, Role, require_roles
from cortiware.cache.read_through import cache_of
from cortiware.db.session import DB_SESSIONMAKER
from cortiware.onboarding.examples import (
    ACCEPT_BODY,
    ACCEPTED,
    INVITE_BODY,
    INVITE_CREATED,
    INVITES,
    REVOKED,
    VERIFIED,
)
from cortiware.onboarding.schemas import (
    AcceptIn,
    AcceptOut,
    InviteCreated,
    InviteIn,
    InviteOut,
    VerifyOut,
)
from cortiware.onboarding.service import OnboardingService
from cortiware.onboarding.tokens import MAX_TOKEN_LENGTH
from cortiware.route_policy import GroupName, Idempotency, declare

__all__ = [
    "AcceptIn",
    "AcceptOut",
    "InviteController",
    "InviteCreated",
    "InviteIn",
    "InviteOut",
    "OnboardingController",
    "VerifyOut",
    "provide_onboarding",
    "route_handlers",
]

AnyRequest = Request[Any, Any, Any]


def provide_onboarding(
    db_session: NamedDependency[AsyncSession], state: State
) -> OnboardingService:
    """DI provider: the onboarding service on the request's transaction."""
    return OnboardingService(
        session=db_session,
        settings=SETTINGS.get(state),
        failures=DB_SESSIONMAKER.get(state),
        cache=cache_of(state),
    )


_DEPENDENCIES: Final = {"onboarding": Provide(provide_onboarding, sync_to_thread=False)}


class InviteController(Controller):
    """`/api/provider/invites`: invitations sent by the provider."""

    path = "/api/provider/invites"
    tags = ["onboarding"]
    guards = [require_roles(Role.PROVIDER)]
    dependencies = _DEPENDENCIES

    @post(
        "/",
        summary="Invite an organization",
        responses={201: INVITE_CREATED},
        opt=declare(
            errors={
                409: "An owner with this email exists already.",
                422: "`email` is not an address, or `plan_code` names no active plan.",
            }
        ),
    )
    async def create(
        self,
        data: INVITE_BODY,
        onboarding: NamedDependency[OnboardingService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> InviteCreated:
        """201 with the token and accept link (the only time the token is shown)."""
        return await onboarding.invite(data, actor=principal, request=request)

    @get("/", summary="Invites, newest first", responses={200: INVITES})
    async def list_invites(
        self,
        onboarding: NamedDependency[OnboardingService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[InviteOut]:
        """The newest `limit` invites with their status."""
        return await onboarding.invites(limit)

    @post(
        "/{invite_id:uuid}/revoke",
        status_code=200,
        summary="Revoke an open invite",
        responses={200: REVOKED},
        opt=declare(
            errors={
                404: "No such invite.",
                409: "The invite has been accepted already.",
            }
        ),
    )
    async def revoke(
        self,
        invite_id: FromPath[uuid.UUID],
        onboarding: NamedDependency[OnboardingService],
        principal: NamedDependency[Principal],
        request: AnyRequest,
    ) -> InviteOut:
        """200 with the invite, now `revoked`: its link answers 410 from then on. Revoking a
        revoked invite answers the same and changes nothing; an accepted one is a 409."""
        return await onboarding.revoke(invite_id, actor=principal, request=request)


class OnboardingController(Controller):
    """`/api/onboarding`: public; the token is the credential."""

    path = "/api/onboarding"
    tags = ["onboarding"]
    dependencies = _DEPENDENCIES

    @get(
        "/verify",
        summary="Check an invite token",
        responses={200: VERIFIED},
        opt=declare(
            rate_limit=GroupName.ONBOARDING,
            errors={
                400: "The token is malformed or was altered.",
                404: "No invite has this token.",
                409: "The invite has been accepted already.",
                410: "The invite has expired or was revoked.",
            },
        ),
    )
    async def verify(
        self,
        onboarding: NamedDependency[OnboardingService],
        token: Annotated[str, QueryParameter(max_length=MAX_TOKEN_LENGTH)],
    ) -> VerifyOut:
        """200 with the invite; 400 malformed/tampered, 404 unknown, 409 used, 410 expired or
        revoked."""
        return await onboarding.verify(token)

    @post(
        "/accept",
        summary="Accept an invite (requires Idempotency-Key)",
        responses={201: ACCEPTED},
        opt=declare(
            rate_limit=GroupName.ONBOARDING,
            idempotency=Idempotency.REQUIRED,
            errors={
                400: "The token is malformed or was altered.",
                404: "No invite has this token.",
                409: "The invite has been accepted already, or an owner with this email exists.",
                410: "The invite has expired or was revoked.",
            },
        ),
    )
    async def accept(
        self,
        data: ACCEPT_BODY,
        onboarding: NamedDependency[OnboardingService],
        request: AnyRequest,
    ) -> AcceptOut:
        """201: organization, owner and trial subscription in one transaction; errors as verify."""
        return await onboarding.accept(data, request=request)


route_handlers: Final[list[Any]] = [InviteController, OnboardingController]
