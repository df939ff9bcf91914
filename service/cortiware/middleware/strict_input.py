"""Request input as exact as the published schema: no number as text, no text as a number.

Litestar converts handler arguments with msgspec's `strict=False`
(`litestar/_signature/model.py`, `litestar/dto/_backend.py`, not configurable), which
accepts `"5"` for an integer, `1` for a boolean and a number (`until=0.5`) for a date-time.
The schema says `integer`, `boolean` and `date-time`, so a client relying on that leniency
would break on any other implementation of the same document.

`refuse_loose_input` is the app's `before_request` hook: it runs after the guards and
before the handler's arguments are converted, and refuses with a 400 (problem+json naming
the field, as Litestar's own validation errors do) any JSON body or query parameter that
only the lenient conversion accepts. Input that fails both ways is left to Litestar, whose
messages stay as they are.

A number with a zero fractional part (`5.0`, `1e3`) is an integer: JSON Schema 2020-12
(OpenAPI 3.1) says so, and schemathesis sends such values as valid data.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any, Final, get_args

import msgspec
from litestar import Request
from litestar.enums import ParamType, RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.typing import FieldDefinition

__all__ = ["refuse_loose_input"]

_SPEC_OPT_KEY: Final = "cortiware_strict_input"
"""Where a handler's `_Spec` is kept, in its own (resolved) `opt`."""
_JSON_SCALARS: Final = (bool, int, float)
"""Written in a query string as their JSON text (`5`, `true`)."""
_TEXT_TYPES: Final = (datetime.datetime, datetime.date, datetime.time, uuid.UUID)
"""Written as text in a query string and in JSON."""


@dataclass(frozen=True, slots=True)
class _Query:
    alias: str
    json_type: Any  # decoded from the value as JSON text (numbers, booleans)
    text_type: Any  # converted from the value as a string (dates, times, UUIDs)


@dataclass(frozen=True, slots=True)
class _Spec:
    body: Any  # the JSON body's type, or None when not judged here
    queries: tuple[_Query, ...]


async def refuse_loose_input(request: Request[Any, Any, Any]) -> None:
    """Raise a 400 for a JSON body or query value only a lenient conversion accepts.

    Raises:
        ValidationException: the input's type is not the schema's (400, the field named).
    """
    spec = _spec_of(request.route_handler)
    errors: list[dict[str, str]] = []
    for query in spec.queries:
        raw = request.query_params.get(query.alias)
        if raw is not None and not _exact_query_value(raw, query):
            errors.append(
                {"key": query.alias, "message": "Expected the schema's type", "source": "query"}
            )
    if spec.body is not None:
        body = await request.body()
        if body.strip():
            error = _loose_body(body, spec.body)
            if error is not None:
                errors.append(error)
    if errors:
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}", extra=errors
        )


def _exact_query_value(raw: str, query: _Query) -> bool:
    """False when only the lenient conversion accepts `raw` (failing both ways is Litestar's
    to report, with its own message)."""
    try:
        if query.json_type is not None:
            msgspec.convert(_integral(msgspec.json.decode(raw)), query.json_type, strict=True)
        else:
            msgspec.convert(raw, query.text_type, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return not _lax_converts(raw, query.json_type or query.text_type)
    return True


def _lax_converts(value: Any, annotation: Any) -> bool:
    try:
        msgspec.convert(value, annotation, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def _loose_body(body: bytes, annotation: Any) -> dict[str, str] | None:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None  # malformed JSON: Litestar's own 400
    try:
        msgspec.convert(_integral(value), annotation, strict=True)
    except msgspec.ValidationError as exc:
        if not _lax_converts(value, annotation):
            return None  # failing both ways: Litestar's own message
        message, _, where = str(exc).partition(" - at `$")
        key = where.rstrip("`").lstrip(".") or "body"
        return {"key": key, "message": message, "source": "body"}
    return None


def _integral(value: Any) -> Any:
    """`value` with every float that has no fractional part as an int (`5.0` is an integer)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _spec_of(handler: HTTPRouteHandler) -> _Spec:
    opt = handler.opt
    spec = opt.get(_SPEC_OPT_KEY)
    if not isinstance(spec, _Spec):
        spec = opt[_SPEC_OPT_KEY] = _read(handler)
    return spec


def _read(handler: HTTPRouteHandler) -> _Spec:
    body = None
    queries: list[_Query] = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if name == "data":
            if isinstance(kwarg, BodyKwarg) and kwarg.media_type != RequestEncodingType.JSON:
                continue  # forms and msgpack: not JSON text
            if _convertible(field.annotation):
                body = field.annotation
            continue
        # Query parameters are declared as such here (`FromQuery`, `QueryParameter`); a bare
        # argument may be a dependency or a reserved name, so it is not judged.
        if isinstance(kwarg, ParameterKwarg) and kwarg.param_type is ParamType.QUERY:
            alias = kwarg.query or kwarg.name or name
            if query := _query(alias, field):
                queries.append(query)
    return _Spec(body=body, queries=tuple(queries))


def _convertible(annotation: Any) -> bool:
    try:
        msgspec.json.Decoder(annotation)
    except TypeError:
        return False  # a type msgspec does not know: Litestar's conversion alone
    return True


def _query(alias: str, field: FieldDefinition) -> _Query | None:
    members = get_args(field.annotation) or (field.annotation,)  # `int | None` or `int`
    if any(isinstance(t, type) and issubclass(t, _JSON_SCALARS) for t in members):
        return _Query(alias, json_type=field.annotation, text_type=None)
    if any(isinstance(t, type) and issubclass(t, _TEXT_TYPES) for t in members):
        return _Query(alias, json_type=None, text_type=field.annotation)
    return None
