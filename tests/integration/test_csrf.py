"""CSRF from the attacker's side, on the full app with PostgreSQL and Redis."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.auth import login_staff

INVITE = {"email": "csrf-{}@example.com", "org_name": "CSRF Org"}


def _invite() -> dict[str, str]:
    return {**INVITE, "email": INVITE["email"].format(uuid.uuid4().hex[:8])}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_session_request_without_token_is_403(client: AsyncTestClient[Litestar]) -> None:
    """A logged-in POST without `X-CSRF-Token` is refused with 403 problem+json."""
    await login_staff(client, "provider")
    response = await client.post("/api/provider/invites", json=_invite(), headers=_key())
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_session_request_with_wrong_token_is_403(client: AsyncTestClient[Litestar]) -> None:
    """A made-up token is refused."""
    await login_staff(client, "provider")
    response = await client.post(
        "/api/provider/invites", json=_invite(), headers={**_key(), "X-CSRF-Token": "f" * 64}
    )
    assert response.status_code == 403


async def test_token_of_another_session_is_403(client: AsyncTestClient[Litestar]) -> None:
    """The attacker's own valid token does not work with the victim's session cookie."""
    victim_token = await login_staff(client, "provider")
    victim_cookie = client.cookies.get("cw_session") or ""
    client.cookies.clear()
    attacker_token = await login_staff(client, "accountant")
    client.cookies.clear()
    client.cookies.set("cw_session", victim_cookie, domain="testserver.local")
    forged = await client.post("/api/auth/logout", headers={"X-CSRF-Token": attacker_token})
    assert forged.status_code == 403
    genuine = await client.post("/api/auth/logout", headers={"X-CSRF-Token": victim_token})
    assert genuine.status_code == 204


async def test_cross_site_origin_is_403_even_with_token(client: AsyncTestClient[Litestar]) -> None:
    """A foreign `Origin` is refused although the request carries the right token."""
    token = await login_staff(client, "provider")
    response = await client.post(
        "/api/provider/invites",
        json=_invite(),
        headers={**_key(), "X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_sec_fetch_site_cross_site_is_403(client: AsyncTestClient[Litestar]) -> None:
    """`Sec-Fetch-Site: cross-site` is refused although the token is right."""
    token = await login_staff(client, "provider")
    response = await client.post(
        "/api/provider/invites",
        json=_invite(),
        headers={**_key(), "X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403


async def test_anonymous_cross_site_post_is_403(client: AsyncTestClient[Litestar]) -> None:
    """Public unsafe routes (onboarding accept) refuse a cross-site Origin too."""
    response = await client.post(
        "/api/onboarding/accept",
        json={"token": "x", "name": "n", "password": "p" * 12},
        headers={**_key(), "Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_right_token_succeeds(client: AsyncTestClient[Litestar]) -> None:
    """The login's token, same-origin, lets the mutation through (201)."""
    token = await login_staff(client, "provider")
    response = await client.post(
        "/api/provider/invites",
        json=_invite(),
        headers={**_key(), "X-CSRF-Token": token, "Origin": "http://testserver.local"},
    )
    assert response.status_code == 201


async def test_csrf_cookie_carries_the_token(client: AsyncTestClient[Litestar]) -> None:
    """The readable `cw_csrf` cookie holds the same token as the login response."""
    token = await login_staff(client, "provider")
    assert client.cookies.get("cw_csrf") == token


async def test_webhooks_are_exempt(client: AsyncTestClient[Litestar]) -> None:
    """A webhook with a session cookie and a cross-site Origin reaches its signature check."""
    await login_staff(client, "provider")
    response = await client.post(
        "/api/webhooks/stripe",
        content=b"{}",
        headers={"Origin": "https://stripe.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 400  # missing Stripe-Signature, not CSRF
