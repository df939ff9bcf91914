"""Rotating SESSION_SECRET and ONBOARDING_TOKEN_SECRET: the previous value still verifies.

Each test plays the rotation as operators do it: a service on the old secret, then the
service restarted on the new secret with the old one as `_PREVIOUS` (and, for contrast,
without it), sharing the database and Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from litestar import Litestar
from litestar.testing import AsyncTestClient

from cortiware.app import create_app
from cortiware.auth import oidc
from cortiware.settings import Settings
from tests.conftest import SettingsFactory
from tests.support.auth import login_staff

OLD_SESSION, NEW_SESSION = "old-session-secret-" + "a" * 32, "new-session-secret-" + "b" * 32
OLD_INVITE, NEW_INVITE = "old-invite-secret-" + "c" * 64, "new-invite-secret-" + "d" * 64


def _rotated(make: Callable[..., Settings], base: Settings, **overrides: str | None) -> Settings:
    return make(
        DATABASE_URL=base.database_url,
        REDIS_URL=base.redis_url,
        CORTIWARE_REDIS_PREFIX=base.redis_key_prefix,
        **overrides,
    )


async def _client(settings: Settings) -> AsyncTestClient[Litestar]:
    return AsyncTestClient(app=create_app(settings), base_url="http://testserver.local")


async def test_invite_issued_before_rotation_verifies_with_previous_secret(
    make_settings: SettingsFactory, pg_settings: Settings
) -> None:
    """An invite signed with the replaced secret is accepted while it is `_PREVIOUS`, 400 after."""
    before = _rotated(make_settings, pg_settings, ONBOARDING_TOKEN_SECRET=OLD_INVITE)
    async with await _client(before) as old:
        old.headers["X-CSRF-Token"] = await login_staff(old, "provider")
        email = f"rot-{uuid.uuid4().hex[:8]}@example.com"
        created = await old.post("/api/provider/invites", json={"email": email, "org_name": "R"})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
    during = _rotated(
        make_settings,
        pg_settings,
        ONBOARDING_TOKEN_SECRET=NEW_INVITE,
        ONBOARDING_TOKEN_SECRET_PREVIOUS=OLD_INVITE,
    )
    async with await _client(during) as new:
        assert (await new.get("/api/onboarding/verify", params={"token": token})).status_code == 200
    after = _rotated(make_settings, pg_settings, ONBOARDING_TOKEN_SECRET=NEW_INVITE)
    async with await _client(after) as new:
        assert (await new.get("/api/onboarding/verify", params={"token": token})).status_code == 400


async def test_csrf_token_issued_before_rotation_passes_with_previous_secret(
    make_settings: SettingsFactory, pg_settings: Settings
) -> None:
    """A session's CSRF token from the replaced secret passes while it is `_PREVIOUS`, 403 after."""
    before = _rotated(make_settings, pg_settings, SESSION_SECRET=OLD_SESSION)
    async with await _client(before) as old:
        csrf = await login_staff(old, "provider")
        cookies = dict(old.cookies)
    after = _rotated(make_settings, pg_settings, SESSION_SECRET=NEW_SESSION)
    async with await _client(after) as new:
        new.cookies.update(cookies)
        refused = await new.post("/api/provider/plans", json={}, headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403
    during = _rotated(
        make_settings, pg_settings, SESSION_SECRET=NEW_SESSION, SESSION_SECRET_PREVIOUS=OLD_SESSION
    )
    async with await _client(during) as new:
        new.cookies.update(cookies)
        logout = await new.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204


def test_oidc_flow_cookie_signed_before_rotation_loads_with_previous_secret(
    make_settings: SettingsFactory,
) -> None:
    """An OIDC flow cookie signed with the replaced secret loads while it is `_PREVIOUS`."""
    before = make_settings(SESSION_SECRET=OLD_SESSION)
    cookie = oidc._serializer(before).dumps({"state": "s"})
    during = make_settings(SESSION_SECRET=NEW_SESSION, SESSION_SECRET_PREVIOUS=OLD_SESSION)
    assert oidc._serializer(during).loads(cookie) == {"state": "s"}
    assert oidc._serializer(during).dumps({"state": "s"}) != cookie  # the new secret signs
