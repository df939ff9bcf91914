"""The API reference's examples: every onboarding, monetization and billing operation shows
an example of its JSON request body and of its success response, and each example is a
valid instance of the type the route reads or answers."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, get_args, get_origin

import msgspec
import pytest
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import BodyKwarg

from cortiware.billing import examples as billing_examples
from cortiware.monetization import examples as monetization_examples
from cortiware.onboarding import examples as onboarding_examples

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
TAGS = {"onboarding", "monetization", "billing"}
MODULES = [onboarding_examples, monetization_examples, billing_examples]


def _operations() -> list[tuple[str, dict[str, Any]]]:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and TAGS & set(operation.get("tags", []))
    ]


@pytest.mark.parametrize(("name", "operation"), _operations(), ids=lambda v: str(v)[:60])
def test_operation_shows_request_and_response_examples(name: str, operation: Any) -> None:
    """A JSON request body has an example; every 2xx response with a body has one."""
    if body := operation.get("requestBody"):
        assert body["content"]["application/json"]["schema"].get("examples"), name
    answered = False
    for status, response in operation["responses"].items():
        if status.startswith("2") and "content" in response:
            answered = True
            assert response["content"]["application/json"].get("examples"), f"{name} {status}"
    assert answered or name.startswith("DELETE "), f"{name}: no success body"


def _examples(module: ModuleType) -> list[tuple[str, Any, Any]]:
    """(name, type, example value) of each request and response example in `module`."""
    found: list[tuple[str, Any, Any]] = []
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, ResponseSpec):
            found.extend((name, value.data_container, e.value) for e in value.examples or [])
        elif get_origin(value) is Annotated:
            kind, *extras = get_args(value)
            body = next(x for x in extras if isinstance(x, BodyKwarg))
            found.extend((name, kind, e.value) for e in body.examples or [])
    return found


@pytest.mark.parametrize(
    ("name", "kind", "value"),
    [example for module in MODULES for example in _examples(module)],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_example_is_valid_for_its_type(name: str, kind: Any, value: Any) -> None:
    """The example decodes into its route's type (unknown fields and bad values refused)."""
    msgspec.convert(value, kind, strict=False)
