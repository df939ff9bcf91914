"""`InputGuardMiddleware`: refuse, with one 400, input no API handler can store or parse.

Three kinds of input used to reach the handlers and end as a 500 (found by fuzzing):

- a NUL character (U+0000) in the path, the query or a body (raw, or a JSON `\\u0000`
  escape): PostgreSQL `text` cannot hold it, so the insert or the query failed;
- a JSON body that is not UTF-8: the JSON decoders raise `UnicodeDecodeError`, which
  neither msgspec's nor Litestar's error handling turns into a 400;
- a JSON body nested deeper than any schema here (the decoders recurse: `RecursionError`).

Litestar has no hook between reading the body and decoding it, and the checks apply to every
route alike, so they run once here, before rate limiting and idempotency read the body.
A route declares what is checked (`InputCheck` in `cortiware.route_policy`): everything (the
API), the path and query only (pages), or nothing (webhooks: their bodies are verified by
signature first and stored as received; `cortiware.webhooks` replaces NULs itself).
"""

from __future__ import annotations

import re
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from cortiware.errors import send_problem
from cortiware.route_policy import InputCheck, policy_of

__all__ = ["MAX_JSON_DEPTH", "InputGuardMiddleware", "json_depth_exceeds"]

MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of arrays and objects a JSON body may have (the schemas need 3)."""
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A JSON `\u0000` escape: preceded by an even number of backslashes (an odd-length run ends in
# the escape's own backslash). Matches `\u0000` and `\\\u0000`, not the text `\\u0000`.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
_QUERY_NUL = re.compile(rb"%00|\x00")


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `body` nests arrays/objects deeper than `limit` (strings are skipped)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot be deeper than the number of openers: no scan needed
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class InputGuardMiddleware(ASGIMiddleware):
    """400 problem+json for NUL characters, non-UTF-8 JSON and over-deep JSON bodies."""

    scopes = (ScopeType.HTTP,)

    def applies_to(self, handler: Any) -> bool:
        """Whether `handler`'s route has anything checked (`RequestPipeline`)."""
        return policy_of(handler).input_check is not InputCheck.NONE

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the path, the query and (for unsafe methods) the body; then pass it on."""
        check = policy_of(scope.get("route_handler")).input_check
        if check is InputCheck.NONE:
            await next_app(scope, receive, send)
            return
        problem = None
        if "\x00" in scope["path"] or _QUERY_NUL.search(scope["query_string"]):
            # Pages and static files too (a NUL reached the file system: 500).
            problem = "The path and query may not contain NUL characters (U+0000)."
        elif check is InputCheck.FULL and scope.get("method") in _BODY_METHODS:
            # Litestar keeps the body in the connection state: the handler reads it again.
            body = await scope["litestar_app"].request_class(scope=scope, receive=receive).body()
            # Every body, whatever its Content-Type claims: the handlers decode JSON anyway.
            problem = _body_problem(body)
        if problem is not None:
            await send_problem(scope, receive, send, 400, problem)
            return
        await next_app(scope, receive, send)


def _body_problem(body: bytes) -> str | None:
    if not body:
        return None
    if b"\x00" in body or _JSON_NUL.search(body):
        return "Text may not contain NUL characters (U+0000)."
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "The body is not valid UTF-8."
    if json_depth_exceeds(body):
        return f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
    return None
