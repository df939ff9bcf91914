"""The OpenAPI document: what Litestar generates, plus what the layers around handlers answer.

    cortiware openapi docs/openapi.json     # or: make openapi

The service serves it live at `/api/docs/openapi.json` (and a reader at `/api/docs`); the
committed copy lets reviewers see API changes in diffs, and a test keeps it current.

Litestar documents each handler's own success response and its request-validation 400. It
cannot see what middleware and guards answer, nor that every error body is
`application/problem+json`; its `ResponseSpec` declares no response headers and Litestar 2
has no app- or controller-level `responses=`. So `describe_http_contract(app)`, called once
by `create_app`, completes the app's cached document in place, from the same facts those
layers act on:

- every error (`cortiware.errors`): problem+json `Problem`; 500 on every operation;
- `RequestContextMiddleware`: `X-Request-ID` on every response;
- role guards (`require_roles`) and the `principal` dependency: 401, 403;
- the request body limit (`MAX_BODY_BYTES`): 413 on unsafe methods;
- what each route declares (`cortiware.route_policy`), which the middleware acts on:
  `InputGuardMiddleware` 400 (NUL, bad JSON); `CSRFMiddleware` `X-CSRF-Token` and 403;
  `IdempotencyMiddleware` `Idempotency-Key` (optional or required), 400, 409, 422, 503
  (`Retry-After`) and `Idempotent-Replayed`; `RateLimitMiddleware` 429 with `Retry-After`
  and the `RateLimit*` headers; the handler's own errors and required headers (webhook
  signatures).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute

from cortiware.auth.csrf import CSRF_HEADER, UNSAFE_METHODS
from cortiware.errors import PROBLEM_JSON, Problem
from cortiware.middleware.request_context import REQUEST_ID_HEADER
from cortiware.route_policy import Idempotency, InputCheck, RoutePolicy, policy_of

__all__ = ["SECURITY_SCHEMES", "describe_http_contract", "render_openapi"]

SECURITY_SCHEMES: Final[Mapping[str, SecurityScheme]] = {
    "session": SecurityScheme(
        type="apiKey",
        security_scheme_in="cookie",
        name="cw_session",
        description="The session cookie `POST /api/auth/login` sets (HttpOnly; named "
        "`__Host-cw_session` in staging and production). Owners log in with their e-mail.",
    ),
    "csrf": SecurityScheme(
        type="apiKey",
        security_scheme_in="header",
        name=CSRF_HEADER,
        description="With the session cookie, every POST/PUT/PATCH/DELETE sends the "
        "`csrf_token` from the login answer (also in the `cw_csrf` cookie) in this header.",
    ),
}
"""How a caller authenticates: the session cookie, plus the CSRF header on unsafe methods."""

_PROBLEM = Reference(ref="#/components/schemas/Problem")
_HEALTH_503: Final = {
    "/api/health": "`unhealthy`: the database is unreachable or config is missing.",
    "/api/health/ready": "`unready`: this process's required config is missing.",
}
"""Health paths whose 503 is their own JSON body (the 200's schema), not problem+json."""
_RATE_LIMIT_HEADERS: Final = {
    "RateLimit-Policy": '`"<group>";q=<quota>;w=<window seconds>` (IETF draft).',
    "RateLimit": '`"<group>";r=<remaining>;t=<seconds until full>` (IETF draft).',
    "RateLimit-Limit": "Requests allowed per window (legacy form).",
    "RateLimit-Remaining": "Requests left in this window (legacy form).",
    "RateLimit-Reset": "Seconds until the quota is full again (legacy form).",
}
_INTEGER_HEADERS: Final = frozenset(
    {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
)
_RESPONSE_HEADERS: Final = {
    REQUEST_ID_HEADER: "This request's id (the caller's, when short and safe; else generated).",
    "Retry-After": "Seconds to wait before retrying.",
    "Idempotent-Replayed": "`true` when this is the stored response of an earlier request "
    "with the same `Idempotency-Key`.",
    **_RATE_LIMIT_HEADERS,
}


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the layers around one handler do for one (method, path template)."""

    method: str
    path: str
    handler: HTTPRouteHandler

    @property
    def guarded(self) -> bool:
        # `resolve_guards()` wraps the guards, hiding `allowed_roles`: read the layers instead.
        guards = [g for layer in self.handler.ownership_layers for g in layer.guards or []]
        return any(hasattr(g, "allowed_roles") for g in guards) or (
            "principal" in self.handler.parsed_fn_signature.parameters
        )

    @property
    def policy(self) -> RoutePolicy:
        return policy_of(self.handler)

    @property
    def input_guarded(self) -> bool:
        return self.policy.input_check is not InputCheck.NONE

    @property
    def csrf_checked(self) -> bool:
        return self.method in UNSAFE_METHODS and self.policy.csrf

    @property
    def idempotent(self) -> bool:
        return self.method in UNSAFE_METHODS and self.policy.idempotency is not Idempotency.EXEMPT

    @property
    def key_required(self) -> bool:
        return self.policy.idempotency is Idempotency.REQUIRED

    @property
    def rate_limit_group(self) -> str | None:
        group = self.policy.rate_limit
        return None if group is None else group.value

    def errors(self, validated: bool) -> dict[int, list[str]]:
        """Each error status this operation can answer, with why."""
        why: dict[int, list[str]] = {}

        def add(status: int, reason: str) -> None:
            why.setdefault(status, []).append(reason)

        if validated:
            add(400, "Invalid parameters or body: malformed JSON, unknown or wrong fields "
                "(`errors` lists each).")  # fmt: skip
        if self.input_guarded:
            body = (
                " or body (or non-UTF-8 or over-nested JSON)"
                if self.method in UNSAFE_METHODS and self.policy.input_check is InputCheck.FULL
                else ""
            )
            add(400, f"A NUL character in the path, query{body}.")
        if self.guarded:
            add(401, "No session: log in first.")
            add(403, "The session's role may not use this endpoint.")
        if self.csrf_checked:
            add(403, f"Cross-site `Origin`/`Sec-Fetch-Site`, or a session without `{CSRF_HEADER}`.")
        if self.idempotent:
            missing = "missing or " if self.key_required else ""
            add(400, f"`Idempotency-Key` {missing}not 1-255 printable ASCII characters.")
            add(409, "A request with this `Idempotency-Key` is still running (`Retry-After`).")
            add(422, "This `Idempotency-Key` was used with a different request.")
            add(503, "The idempotency store did not answer; retry with the same key.")
        if self.method in UNSAFE_METHODS:
            add(413, "The request body is over 1 MiB.")
        if self.rate_limit_group is not None:
            add(429, f"The `{self.rate_limit_group}` rate limit is exhausted (`Retry-After`).")
        for status, reason in self.policy.errors.items():
            add(status, reason)
        add(500, "An unexpected error; quote `request_id` when reporting it.")
        return why

    def response_headers(self, status: int) -> dict[str, OpenAPIHeader | Reference]:
        """The headers a response with `status` may carry (`Retry-After` required on 429)."""
        names = [REQUEST_ID_HEADER]
        if self.rate_limit_group is not None:
            names += list(_RATE_LIMIT_HEADERS)
            if status == 429:
                names.append("Retry-After")
        if self.idempotent:
            if status in (409, 503):
                names.append("Retry-After")
            if status < 500:
                names.append("Idempotent-Replayed")
        headers: dict[str, OpenAPIHeader | Reference] = {
            name: Reference(ref=f"#/components/headers/{name}") for name in names
        }
        if status == 429:
            headers["Retry-After"] = OpenAPIHeader(
                schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
                description="Seconds until a request will be admitted.",
                required=True,
            )
        return headers

    def request_headers(self) -> list[Parameter]:
        """Header parameters the layers read for this operation."""
        params: list[Parameter] = []
        if self.idempotent:
            params.append(
                Parameter(
                    name="Idempotency-Key",
                    param_in=ParamType.HEADER,
                    required=self.key_required,
                    description="Runs the request at most once per key for 24 h; a repeat gets "
                    "the stored response. Scope: caller, method, route and key.",
                    schema=Schema(
                        type=OpenAPIType.STRING,
                        min_length=1,
                        max_length=255,
                        pattern="^[\\x20-\\x7E]+$",
                    ),
                )
            )
        if self.csrf_checked:
            params.append(
                Parameter(
                    name=CSRF_HEADER,
                    param_in=ParamType.HEADER,
                    required=False,
                    description="Required when the request carries the session cookie: the "
                    "`csrf_token` from login (also in the `cw_csrf` cookie).",
                    schema=Schema(type=OpenAPIType.STRING),
                )
            )
        for name, description in self.policy.request_headers.items():
            params.append(
                Parameter(
                    name=name,
                    param_in=ParamType.HEADER,
                    required=True,
                    description=description,
                    schema=Schema(type=OpenAPIType.STRING),
                )
            )
        return params


def _operations(app: Litestar) -> Iterator[tuple[_Facts, Operation]]:
    openapi = app.openapi_schema
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path_item = (openapi.paths or {}).get(route.path_format or "/")
        if path_item is None:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                operation = getattr(path_item, method.lower(), None)
                if isinstance(operation, Operation):
                    yield _Facts(method, route.path_format, handler), operation


def describe_http_contract(app: Litestar) -> None:
    """Complete `app.openapi_schema` in place: problem+json errors, layer headers, statuses."""
    openapi = app.openapi_schema
    components = openapi.components = openapi.components or Components()
    components.schemas.update(_problem_schemas())
    components.security_schemes = dict(SECURITY_SCHEMES)
    components.headers = {
        name: OpenAPIHeader(
            schema=Schema(
                type=OpenAPIType.INTEGER if name in _INTEGER_HEADERS else OpenAPIType.STRING
            ),
            description=text,
        )
        for name, text in sorted(_RESPONSE_HEADERS.items())
    }
    for facts, operation in _operations(app):
        responses = operation.responses = dict(operation.responses or {})
        validated = "400" in responses  # Litestar's request-validation 400
        for code, reasons in sorted(facts.errors(validated).items()):
            if facts.path in _HEALTH_503 and code == 503:
                continue  # health answers 503 with its own body; added below
            responses[str(code)] = OpenAPIResponse(
                description=" ".join(dict.fromkeys(reasons)),
                content={PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM)},
            )
        if facts.path in _HEALTH_503 and isinstance(ok := responses.get("200"), OpenAPIResponse):
            responses["503"] = OpenAPIResponse(
                description=_HEALTH_503[facts.path], content=ok.content
            )
        for status, response in responses.items():
            if isinstance(response, OpenAPIResponse):
                response.headers = {
                    **(response.headers or {}),
                    **facts.response_headers(int(status)),
                }
        operation.parameters = [*(operation.parameters or []), *facts.request_headers()] or None
        if facts.guarded:
            operation.security = [
                {"session": [], "csrf": []} if facts.csrf_checked else {"session": []}
            ]
    for struct in _strict_bodies(app):
        schema = components.schemas.get(struct.__name__)
        if isinstance(schema, Schema):
            schema.additional_properties = False  # an unknown field is a 400


def _strict_bodies(app: Litestar) -> set[type[msgspec.Struct]]:
    """Request body types that refuse unknown fields (`forbid_unknown_fields=True`)."""
    found: set[type[msgspec.Struct]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            body = data.annotation if data is not None else None
            if (
                isinstance(body, type)
                and issubclass(body, msgspec.Struct)
                and body.__struct_config__.forbid_unknown_fields
            ):
                found.add(body)
    return found


def _problem_schemas() -> dict[str, Schema]:
    """`Problem` and what it references, from the `msgspec` definitions in `cortiware.errors`."""
    _, definitions = msgspec.json.schema_components(
        [Problem], ref_template="#/components/schemas/{name}"
    )
    return {name: _to_schema(definition) for name, definition in definitions.items()}


_SCHEMA_FIELDS: Final = {f.metadata.get("alias", f.name): f.name for f in fields(Schema)}


def _to_schema(node: Mapping[str, Any]) -> Schema:
    """A JSON Schema mapping (as `msgspec` emits it) as Litestar's `Schema`."""
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kwargs["type"] = OpenAPIType(value)
        elif key in ("properties",):
            kwargs["properties"] = {k: _to_node(v) for k, v in value.items()}
        elif key in ("items",):
            kwargs["items"] = _to_node(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            kwargs[_SCHEMA_FIELDS[key]] = [_to_node(v) for v in value]
        elif key == "description":
            kwargs["description"] = inspect.cleandoc(value)
        elif key == "default" and value is None:
            continue
        else:
            kwargs[_SCHEMA_FIELDS[key]] = value
    return Schema(**kwargs)


def _to_node(node: Mapping[str, Any]) -> Schema | Reference:
    return Reference(ref=node["$ref"]) if "$ref" in node else _to_schema(node)


def render_openapi(app: Litestar) -> str:
    """`app`'s OpenAPI document as stable, pretty-printed JSON."""
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
