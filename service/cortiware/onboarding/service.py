"""Onboarding: create an invite, verify its token, accept it into an organization.

Accepting is safe under concurrency: the invite is claimed by a conditional
`UPDATE … SET used_at = now WHERE id = :id AND used_at IS NULL AND revoked_at IS NULL AND
expires_at > now` in the same transaction that creates the organization. On PostgreSQL a
second, concurrent accept waits on the row lock, re-reads the row once the first commits,
matches nothing and fails with 409, so one invite yields exactly one organization. A revoke
takes the same row lock (`SELECT … FOR UPDATE`), so a revoke and an accept racing each other
end one way only: revoked (the accept answers 410) or accepted (the revoke answers 409).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from litestar.connection import ASGIConnection
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cortiware.activity import (
    INVITE_ACCEPTED,
    INVITE_CREATED,
    INVITE_FAILED,
    INVITE_VERIFIED,
    record_activity,
    record_activity_now,
)
from cortiware.audit import Actor, record, snapshot
from cortiware.auth import Principal, passwords
from cortiware.cache import GROUP_ORGANIZATIONS, Cache
from cortiware.cache.read_through import invalidate_after_commit
from cortiware.db.models import (
    MonetizationConfig,
    OnboardingInvite,
    Organization,
    Owner,
    Plan,
    Price,
    Subscription,
)
from cortiware.errors import Conflict, NotFound, Unprocessable
from cortiware.onboarding.errors import (
    InviteError,
    InviteExpired,
    InviteRevoked,
    InviteTokenInvalid,
    InviteUnknown,
    InviteUsed,
    OwnerExists,
)
from cortiware.onboarding.schemas import (
    DEFAULT_EXPIRES_IN_HOURS,
    AcceptIn,
    AcceptOut,
    InviteCreated,
    InviteIn,
    InviteOut,
    InviteStatus,
    VerifyOut,
)
from cortiware.onboarding.tokens import (
    SecretKeys,
    TokenInvalid,
    check_token,
    issue_token,
    token_hash,
)
from cortiware.settings import Settings

__all__ = [
    "DEFAULT_EXPIRES_IN_HOURS",
    "Accepted",
    "IssuedInvite",
    "OnboardingService",
    "accept_invite",
    "create_invite",
    "find_invite",
    "hash_password",
]

_REVOKED: Final = "This invite was revoked; ask for a new one."
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    """Trimmed, lower-cased email; raise Unprocessable when it is not an address."""
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise Unprocessable("email is not an email address.")
    return value


async def hash_password(password: str) -> str:
    """The argon2id hash of `password` (the login's own hasher), computed on the bounded
    hashing pool, off the event loop (503 `PasswordWorkBusy` when too much is queued)."""
    return await passwords.password_work.run(passwords.hash_password, password)


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite and its token (returned once, never stored)."""

    invite: OnboardingInvite
    token: str


async def create_invite(
    session: AsyncSession,
    *,
    secret: str,
    email: str,
    org_name: str,
    plan_code: str | None,
    expires_in_hours: int,
    created_by: str,
) -> IssuedInvite:
    """Add an invite; 422 for an unknown plan, 409 when an owner has the email already."""
    address = normalise_email(email)
    if plan_code is not None:
        plan = await session.scalar(select(Plan.id).where(Plan.code == plan_code, Plan.active))
        if plan is None:
            raise Unprocessable("plan_code names no active plan.")
    if await session.scalar(select(Owner.id).where(Owner.email == address)) is not None:
        raise Conflict("An owner with this email exists already.")
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=expires_in_hours)
    token = issue_token(secret, expires_at)
    invite = OnboardingInvite(
        email=address,
        org_name=org_name.strip(),
        plan_code=plan_code,
        token_hash=token_hash(token),
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(invite)
    await session.flush()
    return IssuedInvite(invite=invite, token=token)


async def find_invite(
    session: AsyncSession, *, secret: SecretKeys, token: str, now: datetime | None = None
) -> OnboardingInvite:
    """The usable invite for `token`; raise 400 invalid, 404 unknown, 409 used, 410 expired
    or revoked."""
    try:
        check_token(secret, token)
    except TokenInvalid as exc:
        raise InviteTokenInvalid("The invite link is malformed or was altered.") from exc
    invite = await session.scalar(
        select(OnboardingInvite).where(OnboardingInvite.token_hash == token_hash(token))
    )
    if invite is None:
        raise InviteUnknown("No invite has this token.")
    if invite.used_at is not None:
        raise InviteUsed("This invite has been accepted already.")
    if invite.revoked_at is not None:
        raise InviteRevoked(_REVOKED)
    if invite.expires_at <= (now or datetime.now(UTC)):
        raise InviteExpired("This invite has expired; ask for a new one.")
    return invite


@dataclass(frozen=True, slots=True)
class Accepted:
    """What accepting an invite created."""

    invite: OnboardingInvite
    organization: Organization
    owner: Owner
    subscription: Subscription | None


async def _trial(
    session: AsyncSession, organization_id: uuid.UUID, plan_code: str | None, now: datetime
) -> Subscription | None:
    config = await session.get(MonetizationConfig, 1)
    trial_days = config.trial_days if config is not None else 14
    code = plan_code or (config.default_plan_code if config is not None else None)
    if trial_days <= 0:
        return None  # no trial configured: the owner subscribes through Checkout
    price = None
    if code is not None:
        currency = config.currency if config is not None else "usd"
        price = await session.scalar(
            select(Price)
            .join(Plan, Plan.id == Price.plan_id)
            .where(Plan.code == code, Price.active)
            .order_by((Price.currency != currency), (Price.interval != "month"), Price.created_at)
            .limit(1)
        )
    return Subscription(
        organization_id=organization_id,
        plan_code=code,
        status="trialing",
        trial_end=now + timedelta(days=trial_days),
        current_period_start=now,
        current_period_end=now + timedelta(days=trial_days),
        amount_cents=price.amount_cents if price else None,
        currency=price.currency if price else None,
        interval=price.interval if price else None,
        stripe_price_id=price.stripe_price_id if price else None,
    )


async def accept_invite(
    session: AsyncSession,
    *,
    secret: SecretKeys,
    token: str,
    name: str,
    password: str,
    request: Any = None,
) -> Accepted:
    """Create the organization, its owner and the trial subscription; raise InviteError.

    Everything, audit rows included, is added to `session`; the caller's transaction
    commits it all or nothing.
    """
    invite = await find_invite(session, secret=secret, token=token)
    # End the read-only transaction so the pooled connection is not held during the hash:
    # with 100 onboarding users on 2 vCPUs, hashes holding connections exhausted the pool
    # and other requests waited 5 s for one (loadtests, onboarding scenario). Nothing is
    # written before this point; the claim below re-checks the invite atomically.
    await session.commit()
    password_hash = await hash_password(password)  # slow by design: before taking the lock
    now = datetime.now(UTC)
    claimed = await session.execute(
        update(OnboardingInvite)
        .where(
            OnboardingInvite.id == invite.id,
            OnboardingInvite.used_at.is_(None),
            OnboardingInvite.revoked_at.is_(None),
            OnboardingInvite.expires_at > now,
        )
        .values(used_at=now)
        .returning(OnboardingInvite.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.scalar_one_or_none() is None:
        # Another accept or a revoke won the race (or the invite expired meanwhile).
        await session.refresh(invite)
        if invite.revoked_at is not None:
            raise InviteRevoked(_REVOKED)
        if invite.used_at is None:
            raise InviteExpired("This invite has expired; ask for a new one.")
        raise InviteUsed("This invite has been accepted already.")
    await session.refresh(invite)
    actor = Actor(name=invite.email, role="invitee")
    organization = Organization(name=invite.org_name, status="active")
    session.add(organization)
    await session.flush()
    owner = Owner(
        organization_id=organization.id,
        email=invite.email,
        name=name.strip(),
        password_hash=password_hash,
    )
    session.add(owner)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise OwnerExists("An owner with this email exists already.") from exc
    subscription = await _trial(session, organization.id, invite.plan_code, now)
    if subscription is not None:
        session.add(subscription)
    invite.organization_id = organization.id
    await session.flush()
    org_id = organization.id
    await record(
        session,
        actor=actor,
        entity="onboarding_invite",
        entity_id=invite.id,
        action="accept",
        before={"used_at": None, "organization_id": None},
        after={"used_at": invite.used_at, "organization_id": org_id},
        organization_id=org_id,
        request=request,
    )
    for entity, row in (("organization", organization), ("owner", owner)):
        await record(
            session,
            actor=actor,
            entity=entity,
            entity_id=row.id,
            action="create",
            after=snapshot(row),
            organization_id=org_id,
            request=request,
        )
    if subscription is not None:
        await record(
            session,
            actor=actor,
            entity="subscription",
            entity_id=subscription.id,
            action="create",
            after=snapshot(subscription),
            organization_id=org_id,
            request=request,
        )
    return Accepted(invite, organization, owner, subscription)


def _status(invite: OnboardingInvite, now: datetime) -> InviteStatus:
    if invite.used_at is not None:
        return "accepted"
    if invite.revoked_at is not None:
        return "revoked"
    return "expired" if invite.expires_at <= now else "pending"


def _listed(invite: OnboardingInvite, now: datetime) -> InviteOut:
    return InviteOut(
        id=invite.id,
        email=invite.email,
        org_name=invite.org_name,
        plan_code=invite.plan_code,
        status=_status(invite, now),
        expires_at=invite.expires_at,
        created_at=invite.created_at,
        created_by=invite.created_by,
        used_at=invite.used_at,
        organization_id=invite.organization_id,
        revoked_at=invite.revoked_at,
    )


class OnboardingService:
    """Invites and their acceptance, for the JSON routes and the pages alike.

    Works in the caller's transaction (`session`); failures of verify and accept are also
    recorded as funnel events in their own transaction (`failures`), because the caller's
    rolls back.
    """

    __slots__ = ("cache", "failures", "session", "settings")

    def __init__(
        self,
        *,
        session: AsyncSession,
        settings: Settings,
        failures: async_sessionmaker[AsyncSession],
        cache: Cache | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.failures = failures
        self.cache = cache

    async def invite(
        self,
        data: InviteIn,
        *,
        actor: Principal,
        request: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> InviteCreated:
        """Create an invite; its token and accept link are returned this once.

        Raises:
            Unprocessable: unknown plan or not an email address (422).
            Conflict: an owner has the email already (409).
        """
        issued = await create_invite(
            self.session,
            secret=self.settings.onboarding_token_secret,
            email=data.email,
            org_name=data.org_name,
            plan_code=data.plan_code,
            expires_in_hours=data.expires_in_hours,
            created_by=actor.username,
        )
        invite = issued.invite
        await record(
            self.session,
            actor=actor,
            entity="onboarding_invite",
            entity_id=invite.id,
            action="create",
            after=snapshot(invite),
            request=request,
        )
        record_activity(
            self.session,
            INVITE_CREATED,
            subject=invite.email,
            details={"invite_id": str(invite.id), "plan_code": invite.plan_code},
        )
        base = self.settings.base_url.rstrip("/")
        return InviteCreated(
            id=invite.id,
            email=invite.email,
            org_name=invite.org_name,
            token=issued.token,
            accept_url=f"{base}/onboarding?token={quote(issued.token, safe='')}",
            expires_at=invite.expires_at,
        )

    async def invites(self, limit: int = 100) -> list[InviteOut]:
        """The newest `limit` invites with their status."""
        now = datetime.now(UTC)
        rows = await self.session.scalars(
            select(OnboardingInvite).order_by(OnboardingInvite.created_at.desc()).limit(limit)
        )
        return [_listed(i, now) for i in rows]

    async def revoke(
        self,
        invite_id: uuid.UUID,
        *,
        actor: Principal,
        request: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> InviteOut:
        """Revoke an open invite so its link stops working; revoking it again changes nothing.

        The first revoke writes an audit row; a repeat (a retry, a second click) answers the
        same revoked invite and writes nothing.

        Raises:
            NotFound: no such invite (404).
            Conflict: the invite has been accepted already (409).
        """
        invite = await self.session.get(OnboardingInvite, invite_id, with_for_update=True)
        if invite is None:
            raise NotFound("No such invite.")
        if invite.used_at is not None:
            raise Conflict("This invite has been accepted already; it cannot be revoked.")
        if invite.revoked_at is None:
            invite.revoked_at = datetime.now(UTC)
            await self.session.flush()
            await record(
                self.session,
                actor=actor,
                entity="onboarding_invite",
                entity_id=invite.id,
                action="revoke",
                before={"revoked_at": None},
                after={"revoked_at": invite.revoked_at},
                request=request,
            )
        return _listed(invite, datetime.now(UTC))

    async def verify(self, token: str) -> VerifyOut:
        """The invite a token opens, counted as a funnel event.

        Raises:
            InviteError: 400 malformed or tampered, 404 unknown, 409 used, 410 expired or
                revoked.
        """
        try:
            invite = await find_invite(
                self.session, secret=self.settings.onboarding_token_secrets, token=token
            )
        except InviteError as exc:
            await self._failed("verify", exc, token)
            raise
        record_activity(
            self.session,
            INVITE_VERIFIED,
            subject=invite.email,
            details={"invite_id": str(invite.id)},
        )
        return VerifyOut(email=invite.email, org_name=invite.org_name, expires_at=invite.expires_at)

    async def accept(
        self, data: AcceptIn, *, request: ASGIConnection[Any, Any, Any, Any] | None = None
    ) -> AcceptOut:
        """Organization, owner and trial subscription, committed together by the caller.

        Raises:
            InviteError: as `verify`, and 409 when an owner has the email already.
        """
        try:
            accepted = await accept_invite(
                self.session,
                secret=self.settings.onboarding_token_secrets,
                token=data.token,
                name=data.name,
                password=data.password,
                request=request,
            )
        except InviteError as exc:
            await self.session.rollback()  # release the row lock before recording the failure
            await self._failed("accept", exc, data.token)
            raise
        record_activity(
            self.session,
            INVITE_ACCEPTED,
            organization_id=accepted.organization.id,
            subject=accepted.invite.email,
            details={
                "invite_id": str(accepted.invite.id),
                "trial": accepted.subscription is not None,
            },
        )
        invalidate_after_commit(self.session, self.cache, GROUP_ORGANIZATIONS)
        return AcceptOut(organization_id=accepted.organization.id, owner_id=accepted.owner.id)

    async def _failed(self, stage: str, exc: InviteError, token: str) -> None:
        await record_activity_now(
            self.failures,
            INVITE_FAILED,
            details={"stage": stage, "reason": exc.reason, "token_sha256": token_hash(token)[:16]},
        )
