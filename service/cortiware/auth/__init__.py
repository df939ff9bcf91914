"""Authentication (staff from the environment, owners with argon2), sessions and CSRF."""

from cortiware.auth.principal import (
    PRINCIPAL_ID_SCOPE_KEY,
    PRINCIPAL_SCOPE_KEY,
    Principal,
    Role,
    provide_optional_principal,
    provide_principal,
    require_roles,
)

__all__ = [
    "PRINCIPAL_ID_SCOPE_KEY",
    "PRINCIPAL_SCOPE_KEY",
    "Principal",
    "Role",
    "provide_optional_principal",
    "provide_principal",
    "require_roles",
]
