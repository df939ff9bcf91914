"""Checking a username and password: staff from the environment, owners with argon2.

No answer tells an unknown username from a wrong password: the three staff credentials are
always all compared in constant time, and an unknown owner e-mail is verified against a
dummy argon2 hash, so a miss costs the same argon2 work as a wrong password. The argon2
parameters and the bounded pool it runs on are in `cortiware.auth.passwords`.
"""

from __future__ import annotations

import hmac

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.passwords import hash_password, password_hasher, verify_password
from cortiware.auth.principal import Principal, Role
from cortiware.db.base import utcnow
from cortiware.db.models import Owner
from cortiware.settings import Settings

__all__ = ["authenticate", "authenticate_staff", "hash_password", "password_hasher"]


def authenticate_staff(settings: Settings, username: str, password: str) -> Principal | None:
    """The staff principal whose username and password both match, compared in constant time."""
    matched: Principal | None = None
    given_user, given_password = username.encode(), password.encode()
    for credential in settings.staff:  # always all three: no early exit
        user_ok = hmac.compare_digest(given_user, credential.username.encode())
        password_ok = hmac.compare_digest(given_password, credential.password.encode())
        if user_ok & password_ok and bool(credential.username) and matched is None:
            matched = Principal(role=Role(credential.role), username=credential.username)
    return matched


async def authenticate(
    settings: Settings, db: AsyncSession, username: str, password: str
) -> Principal | None:
    """The principal for these credentials, or None; owners log in with their e-mail."""
    staff = authenticate_staff(settings, username, password)
    if staff is not None:
        return staff
    email = username.strip().lower()
    owner = (
        await db.execute(select(Owner).where(func.lower(Owner.email) == email).limit(1))
    ).scalar_one_or_none()
    # End the read-only transaction so the pooled connection is not held while argon2
    # runs (see `accept_invite`: held connections exhausted the pool under load).
    await db.commit()
    stored = owner.password_hash if owner is not None else None
    # argon2 is deliberately slow CPU work: on the bounded hashing pool, off the event loop
    # (503 `PasswordWorkBusy` when too much is queued).
    matched, rehashed = await verify_password(stored, password)
    if not matched or owner is None:
        return None
    if rehashed is not None:
        owner.password_hash = rehashed
    owner.last_login_at = utcnow()
    return Principal(
        role=Role.OWNER,
        username=owner.email,
        organization_id=owner.organization_id,
        owner_id=owner.id,
    )
