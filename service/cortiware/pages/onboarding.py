"""`/onboarding?token=`: the invitee checks the invite and accepts it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.onboarding.routes import provide_onboarding
from cortiware.onboarding.schemas import AcceptIn, AcceptOut, VerifyOut
from cortiware.pages._commands import run_command
from cortiware.pages._forms import field_errors, page_error, read_form
from cortiware.pages._render import render
from cortiware.pages.flash import redirect_with_flash
from cortiware.ratelimit import GroupName

__all__ = ["OnboardingPages"]

AnyRequest = Request[Any, Any, Any]
_READY = "Your organization is ready. Log in with your e-mail and the password you chose."


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

    @post("/", status_code=303)
    async def accept(self, request: AnyRequest) -> Response[Any]:
        """Create the organization and its owner, then go to the login page (303); on an
        error the form again, with the invite, the name entered and the field's message."""
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
        if result.ok:
            return redirect_with_flash(request, "/login", _READY)
        invite = None
        if result.status in (400, 422) and field_errors(result.detail):
            # The link is still good: keep the form so the invitee can correct the field.
            async def verify(session: AsyncSession) -> VerifyOut:
                return await provide_onboarding(session, request.app.state).verify(token)

            checked = await run_command(request, verify, group=GroupName.ONBOARDING)
            invite = checked.body if checked.ok else None
        return render(request, "onboarding.html", status=result.status, headers=result.headers,
                      error=page_error(result.detail), errors=field_errors(result.detail),
                      token=token, invite=invite, values={"name": body["name"]})  # fmt: skip
