"""OpenAPI examples of the onboarding routes' bodies (shown in the API reference)."""

from __future__ import annotations

from typing import Annotated, Final, TypeVar

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body

from cortiware.onboarding.schemas import (
    AcceptIn,
    AcceptOut,
    InviteCreated,
    InviteIn,
    InviteOut,
    VerifyOut,
)

__all__ = [
    "ACCEPTED",
    "ACCEPT_BODY",
    "INVITES",
    "INVITE_BODY",
    "INVITE_CREATED",
    "REVOKED",
    "VERIFIED",
]

T = TypeVar("T")
_INVITE_ID: Final = "5b1e6c9e-3f4a-4c8e-9a51-2d7f0e6b8c11"
_ORG_ID: Final = "0f8c2a7d-6b1e-4d3a-8f59-7c2e1a9b4d60"
_TOKEN: Final = "v1.1767139200.Vb3…(signed, about 120 characters)"  # noqa: S105 - an example, not a credential
_INVITE: Final = {
    "email": "owner@acme.example",
    "org_name": "Acme Ltd",
    "plan_code": "standard",
    "expires_in_hours": 72,
}
_LISTED: Final = {
    "id": _INVITE_ID,
    "email": "owner@acme.example",
    "org_name": "Acme Ltd",
    "plan_code": "standard",
    "status": "pending",
    "expires_at": "2026-12-10T09:00:00Z",
    "created_at": "2026-12-07T09:00:00Z",
    "created_by": "provider",
    "used_at": None,
    "organization_id": None,
    "revoked_at": None,
}

INVITE_BODY = Annotated[
    InviteIn,
    Body(examples=[Example(summary="Invite Acme's owner to the standard plan", value=_INVITE)]),
]
INVITE_CREATED: Final = ResponseSpec(
    data_container=InviteCreated,
    generate_examples=False,
    description="The invite; `token` and `accept_url` are shown this once, never again.",
    examples=[
        Example(
            summary="A new invite",
            value={
                "id": _INVITE_ID,
                "email": "owner@acme.example",
                "org_name": "Acme Ltd",
                "token": _TOKEN,
                "accept_url": "https://app.cortiware.example.com/onboarding?token=v1.1767139200.Vb3…",
                "expires_at": "2026-12-10T09:00:00Z",
            },
        )
    ],
)
INVITES: Final = ResponseSpec(
    data_container=list[InviteOut],
    generate_examples=False,
    description="The newest invites, newest first (no tokens).",
    examples=[Example(summary="One pending invite", value=[_LISTED])],
)
REVOKED: Final = ResponseSpec(
    data_container=InviteOut,
    generate_examples=False,
    description="The invite, now revoked: its link answers 410.",
    examples=[
        Example(
            summary="A revoked invite",
            value=_LISTED | {"status": "revoked", "revoked_at": "2026-12-07T10:30:00Z"},
        )
    ],
)
VERIFIED: Final = ResponseSpec(
    data_container=VerifyOut,
    generate_examples=False,
    description="What the accept page shows about a usable invite.",
    examples=[
        Example(
            summary="A usable invite",
            value={
                "email": "owner@acme.example",
                "org_name": "Acme Ltd",
                "expires_at": "2026-12-10T09:00:00Z",
            },
        )
    ],
)
ACCEPT_BODY = Annotated[
    AcceptIn,
    Body(
        examples=[
            Example(
                summary="The owner's name and chosen password",
                value={"token": _TOKEN, "name": "Ada Lovelace", "password": "correct horse 42"},
            )
        ]
    ),
]
ACCEPTED: Final = ResponseSpec(
    data_container=AcceptOut,
    generate_examples=False,
    description="The organization and its owner, created with the trial subscription.",
    examples=[
        Example(
            summary="Organization and owner created",
            value={"organization_id": _ORG_ID, "owner_id": "9d4b7e21-8c3f-4a6e-b5d0-1e2f3a4b5c6d"},
        )
    ],
)
