"""The tables of the platform. Alembic migrations are the only way they are created."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Double, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cortiware.db.base import UUIDPK, Base, BigInt, JSONDoc, utcnow

__all__ = [
    "Activity",
    "AuditEntry",
    "Coupon",
    "MonetizationConfig",
    "OnboardingInvite",
    "Organization",
    "Owner",
    "Plan",
    "Price",
    "Subscription",
    "UserSession",
    "WebhookEvent",
]


class Organization(UUIDPK, Base):
    """A customer organization, created by accepting an onboarding invite."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default="active")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owners: Mapped[list[Owner]] = relationship(back_populates="organization", lazy="raise")


class Owner(UUIDPK, Base):
    """An organization's owner; logs in with email and an argon2-hashed password."""

    __tablename__ = "owners"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="owners", lazy="raise")


class OnboardingInvite(UUIDPK, Base):
    """A signed, expiring, single-use invitation; only the token's hash is stored."""

    __tablename__ = "onboarding_invites"

    email: Mapped[str] = mapped_column(String(320))
    org_name: Mapped[str] = mapped_column(String(200))
    plan_code: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]
    """When the provider withdrew the invite; its link then stops working."""


class MonetizationConfig(Base):
    """The single row of global monetization settings (id is always 1)."""

    __tablename__ = "monetization_config"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    default_plan_code: Mapped[str | None] = mapped_column(String(64))
    trial_days: Mapped[int] = mapped_column(default=14)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    audit_retention_days: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Plan(UUIDPK, Base):
    """A sellable plan; `code` is the stable public identifier."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    features: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    stripe_product_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    prices: Mapped[list[Price]] = relationship(back_populates="plan", lazy="raise")


class Price(UUIDPK, Base):
    """A recurring price of a plan, mirrored to a Stripe price when configured."""

    __tablename__ = "prices"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    interval: Mapped[str] = mapped_column(String(16), default="month")
    active: Mapped[bool] = mapped_column(default=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    plan: Mapped[Plan] = relationship(back_populates="prices", lazy="raise")


class Coupon(UUIDPK, Base):
    """A discount code; exactly one of percent_off or amount_off_cents is set."""

    __tablename__ = "coupons"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    percent_off: Mapped[int | None]
    amount_off_cents: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(16), default="once")
    max_redemptions: Mapped[int | None]
    expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    stripe_coupon_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(UUIDPK, Base):
    """An organization's subscription, kept in sync with Stripe by webhooks."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_organization_status", "organization_id", "status"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    plan_code: Mapped[str | None] = mapped_column(String(64))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    trial_end: Mapped[datetime | None]
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    amount_cents: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    interval: Mapped[str | None] = mapped_column(String(16))
    last_payment_status: Mapped[str | None] = mapped_column(String(32))
    last_payment_at: Mapped[datetime | None]
    # Creation time (Stripe `created`, epoch seconds) of the newest event applied:
    # an older event never overwrites what a newer one wrote.
    last_event_created: Mapped[int | None] = mapped_column(BigInt)
    last_event_id: Mapped[str | None] = mapped_column(String(255))
    # The same guard for the payment fields, which invoice events write independently.
    last_payment_event_created: Mapped[int | None] = mapped_column(BigInt)
    last_payment_event_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """A received webhook (Stripe or federation), stored once per (source, event id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_webhook_events_source_event_id"),
        Index("ix_webhook_events_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(128))
    # received | processed | ignored | unmatched | failed
    status: Mapped[str] = mapped_column(String(16), default="received")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    event_created: Mapped[int | None] = mapped_column(BigInt)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One mutation: who did what to which entity, with before/after (secrets redacted)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity_created", "entity", "created_at"),
        Index("ix_audit_log_organization_created", "organization_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[uuid.UUID | None]
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(64))


class Activity(Base):
    """A product event (onboarding funnel and the like) for counting and diagnostics."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_action_created", "action", "created_at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID | None]
    subject: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class UserSession(Base):
    """A logged-in session (`cortiware.auth.sessions`): the durable copy Redis caches."""

    __tablename__ = "user_sessions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 (hex) of the session id; the id itself is only in the cookie."""
    role: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(320))
    organization_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None]
    created_at: Mapped[float] = mapped_column(Double)
    """Unix time of the login (absolute expiry counts from here)."""
    last_seen: Mapped[float] = mapped_column(Double)
    """Unix time of the last use, rewritten at most once a minute (idle expiry)."""
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    """The earlier of idle and absolute expiry; expired rows are deleted in batches."""
