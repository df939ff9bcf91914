"""Least-privilege database roles, ensured by `cortiware migrate` after the schema upgrade.

- the owner (`DATABASE_URL_UNPOOLED`'s user, the RDS master user): DDL, owns every table;
  used by `cortiware migrate` only;
- `cortiware_app`, a NOLOGIN group: SELECT, INSERT, UPDATE, DELETE on the tables, USAGE and
  UPDATE on the sequences, nothing else (no CREATE, DROP, ALTER, TRUNCATE);
- `DATABASE_URL`'s user, when it differs from the owner: LOGIN, a member of `cortiware_app`;
  the service and `cortiware db shell` connect as it.

Grants cover the tables that exist and, through default privileges, those the owner creates
later. The login role's password is sent as a SCRAM-SHA-256 verifier, never in clear text,
so a server logging DDL (`log_statement`) cannot log it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Final
from urllib.parse import unquote, urlsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cortiware.db.engine import create_engine

__all__ = ["APPLICATION_GROUP", "ensure_application_role", "scram_sha256_verifier"]

APPLICATION_GROUP: Final = "cortiware_app"
_SCRAM_ITERATIONS: Final = 4096  # PostgreSQL's default (scram_iterations)

_GROUP_GRANTS: Final = (
    f"""DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APPLICATION_GROUP}') THEN
        CREATE ROLE {APPLICATION_GROUP} NOLOGIN;
      END IF;
    END $$""",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    f"GRANT USAGE ON SCHEMA public TO {APPLICATION_GROUP}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APPLICATION_GROUP}",
    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APPLICATION_GROUP}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APPLICATION_GROUP}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
    f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {APPLICATION_GROUP}",
)


def scram_sha256_verifier(password: str, salt: bytes | None = None) -> str:
    """The `SCRAM-SHA-256$…` form PostgreSQL stores (RFC 5802/7677), as `\\password` sends it.

    Hand-written: neither asyncpg nor SQLAlchemy exposes libpq's PQencryptPasswordConn.
    """
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt64, stored64, server64 = (
        base64.b64encode(raw).decode() for raw in (salt, stored_key, server_key)
    )
    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{salt64}${stored64}:{server64}"


async def ensure_application_role(owner_url: str, app_url: str) -> str | None:
    """Grant `cortiware_app` its privileges as the owner and, when `app_url` names another
    user, create or update that login role (password, membership). Returns that role's name,
    or None when the service connects as the owner. PostgreSQL only."""
    owner, app = urlsplit(owner_url), urlsplit(app_url)
    app_user = unquote(app.username or "")
    separate = bool(app_user) and app_user != unquote(owner.username or "")
    engine = create_engine(owner_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in _GROUP_GRANTS:
                await conn.execute(text(statement))
            if separate:
                await _ensure_login(conn, app_user, unquote(app.password or ""))
    finally:
        await engine.dispose()
    return app_user if separate else None


async def _ensure_login(conn: AsyncConnection, user: str, password: str) -> None:
    exists = await conn.scalar(
        text("SELECT 1 FROM pg_roles WHERE rolname = CAST(:u AS text)"), {"u": user}
    )
    verb = "ALTER" if exists else "CREATE"
    options = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    if password:
        options += " PASSWORD %L"
    statement = await conn.scalar(
        text(f"SELECT format('{verb} ROLE %I WITH {options}', CAST(:u AS text), CAST(:p AS text))"),
        {"u": user, "p": scram_sha256_verifier(password) if password else None},
    )
    await conn.exec_driver_sql(str(statement))
    grant = await conn.scalar(
        text(f"SELECT format('GRANT {APPLICATION_GROUP} TO %I', CAST(:u AS text))"), {"u": user}
    )
    await conn.exec_driver_sql(str(grant))
