"""`/onboarding?token=`: the invitee checks the invite and accepts it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.onboarding.routes import provide_onboarding
from cortiware.onboarding.schemas import AcceptIn, AcceptOut, VerifyOut
from cortiware.pages._commands import run_command
from cortiware.pages._forms import read_form
from cortiware.pages._render import render
from cortiware.ratelimit import GroupName

__all__ = ["OnboardingPages"]

AnyRequest = Request[Any, Any, Any]


class OnboardingPages(Controller):
    """Public: the token in the link is the credential (limited as `/api/onboarding/*`)."""

    path = "/onboarding"

    @get("/")
    async def accept_form(self, request: AnyRequest) -> Template:
        """The accept form for a valid invite, or why the link cannot be used."""
        token = request.query_params.get("token", "")
        if not token:
            return render(request, "onboarding.html", status=400, error="The link has no token.")

        async def verify(session: AsyncSession) -> VerifyOut:
            return await provide_onboarding(session, request.app.state).verify(token)

        result = await run_command(request, verify, group=GroupName.ONBOARDING)
        if not result.ok:
            return render(request, "onboarding.html", status=result.status,
                          headers=result.headers, error=result.detail)  # fmt: skip
        return render(request, "onboarding.html", token=token, invite=result.body)

    @post("/", status_code=201)
    async def accept(self, request: AnyRequest) -> Template:
        """Create the organization and its owner, then point to the login page."""
        form = await read_form(request)
        token = str(form.get("token", ""))
        body = {"token": token, "name": str(form.get("name", "")),
                "password": str(form.get("password", ""))}  # fmt: skip

        async def accept(session: AsyncSession) -> AcceptOut:
            data = msgspec.convert(body, AcceptIn)
            return await provide_onboarding(session, request.app.state).accept(
                data, request=request
            )

        result = await run_command(
            request, accept, form=form, group=GroupName.ONBOARDING, status=201
        )
        if not result.ok:
            return render(request, "onboarding.html", status=result.status,
                          headers=result.headers, error=result.detail, token=token)  # fmt: skip
        return render(request, "onboarding.html", status=201, accepted=True)
