"""`/onboarding?token=`: the invitee checks the invite and accepts it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Template

from cortiware.pages._api import call_api, read_form
from cortiware.pages._render import render

__all__ = ["OnboardingPages"]


class OnboardingPages(Controller):
    """Public: the token in the link is the credential."""

    path = "/onboarding"

    @get("/")
    async def accept_form(self, request: Request[Any, Any, Any]) -> Template:
        """The accept form for a valid invite, or why the link cannot be used."""
        token = request.query_params.get("token", "")
        if not token:
            return render(request, "onboarding.html", status=400, error="The link has no token.")
        result = await call_api(request, "GET", "/api/onboarding/verify", params={"token": token})
        if not result.ok:
            return render(request, "onboarding.html", status=result.status, error=result.detail)
        return render(request, "onboarding.html", token=token, invite=result.body)

    @post("/", status_code=201)
    async def accept(self, request: Request[Any, Any, Any]) -> Template:
        """Create the organization and its owner, then point to the login page."""
        form = await read_form(request)
        token = str(form.get("token", ""))
        result = await call_api(
            request,
            "POST",
            "/api/onboarding/accept",
            json={
                "token": token,
                "name": str(form.get("name", "")),
                "password": str(form.get("password", "")),
            },
            idempotency_key=str(form.get("_form_key", "")) or None,
        )
        if not result.ok:
            return render(
                request, "onboarding.html", status=result.status, error=result.detail, token=token
            )
        return render(request, "onboarding.html", status=201, accepted=True)
