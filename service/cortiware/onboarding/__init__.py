"""Onboarding: signed single-use invites, verification and acceptance into an organization."""

from cortiware.onboarding.routes import route_handlers
from cortiware.onboarding.service import accept_invite, create_invite, find_invite, hash_password

__all__ = ["accept_invite", "create_invite", "find_invite", "hash_password", "route_handlers"]
