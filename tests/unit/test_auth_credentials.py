"""Staff credential checks and owner password hashing."""

from __future__ import annotations

import pytest

from cortiware.auth.credentials import authenticate_staff, hash_password, password_hasher
from cortiware.auth.principal import Role
from tests.conftest import TEST_ENV, SettingsFactory


@pytest.mark.parametrize("role", ["provider", "developer", "accountant"])
def test_each_staff_role_authenticates(make_settings: SettingsFactory, role: str) -> None:
    """The right username and password of a staff role give that role."""
    settings = make_settings()
    principal = authenticate_staff(settings, role, TEST_ENV[f"{role.upper()}_PASSWORD"])
    assert principal is not None
    assert principal.role is Role(role)
    assert principal.username == role


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("provider", "wrong"),
        ("provider", TEST_ENV["DEVELOPER_PASSWORD"]),  # another role's password
        ("nobody", TEST_ENV["PROVIDER_PASSWORD"]),
        ("", ""),
        ("Provider", TEST_ENV["PROVIDER_PASSWORD"]),  # usernames are exact
    ],
)
def test_staff_mismatches_fail(
    make_settings: SettingsFactory, username: str, password: str
) -> None:
    """Any mismatch of username or password, or a mix of two roles, authenticates nobody."""
    assert authenticate_staff(make_settings(), username, password) is None


def test_owner_hashes_are_argon2id() -> None:
    """Owner passwords are hashed with argon2id and verify."""
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert password_hasher().verify(hashed, "correct horse battery staple")
