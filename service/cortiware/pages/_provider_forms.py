"""What the provider's page forms share: reading fields, running a command, Post/Redirect/Get."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from litestar import Request, Response
from litestar.datastructures import FormMultiDict
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.auth.principal import Principal, principal_of
from cortiware.monetization.routes import provide_monetization
from cortiware.monetization.service import MonetizationService
from cortiware.pages._commands import Outcome, run_command
from cortiware.pages._forms import field_errors, page_error
from cortiware.pages.flash import redirect_with_flash

__all__ = ["AnyRequest", "Rerender", "fields", "provider", "submit", "with_monetization"]

AnyRequest = Request[Any, Any, Any]
Rerender = Callable[..., Awaitable[Response[Any]]]
"""Renders the form's page again: `rerender(status=, error=, errors=, values=, failed=,
headers=)`."""
_INTEGER: Final = re.compile(r"-?[0-9]{1,9}")


def fields(form: FormMultiDict, *names: str, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The non-empty form fields among `names`; `numbers` are integers when they are."""
    body: dict[str, Any] = {}
    for name in names:
        value = str(form.get(name, "")).strip()
        if not value:
            continue
        # Only plain ASCII integers become numbers (`isdigit` also takes "²" and 5,000-digit
        # runs `int` refuses); anything else stays text, and validation answers its 400.
        body[name] = int(value) if name in numbers and _INTEGER.fullmatch(value) else value
    return body


def provider(request: AnyRequest) -> Principal:
    """The logged-in provider (the controller's guard admitted only providers)."""
    principal = principal_of(request)
    assert principal is not None
    return principal


def with_monetization(
    request: AnyRequest, call: Callable[[MonetizationService, Principal], Awaitable[Any]]
) -> Callable[[AsyncSession], Awaitable[Any]]:
    """A command running `call` on the monetization service as the provider."""
    who = provider(request)

    async def command(session: AsyncSession) -> Any:
        return await call(provide_monetization(session, request.app.state), who)

    return command


async def submit(
    request: AnyRequest,
    form: FormMultiDict,
    command: Callable[[AsyncSession], Awaitable[Any]],
    *,
    name: str,
    done: str | Callable[[Any], str],
    to: str,
    rerender: Rerender,
    flash: Callable[[Any], dict[str, Any]] | None = None,
) -> Response[Any]:
    """Run the form `name`'s command once; on success 303 to `to` with the notice `done`
    (and `flash(result)` for the next page); on failure the same page again, with the
    error, each field's message next to it and what was entered."""
    result: Outcome = await run_command(request, command, form=form)
    if result.ok:
        notice = done(result.body) if callable(done) else done
        extra = flash(result.body) if flash else {}
        return redirect_with_flash(request, to, notice, **extra)
    values = {k: str(v) for k, v in form.items() if not k.startswith("_")}
    return await rerender(
        status=result.status,
        error=page_error(result.detail),
        errors=field_errors(result.detail),
        values=values,
        failed=name,
        headers=result.headers,
    )
