"""Least-privilege roles made by `cortiware migrate`, and `cortiware db shell`, on the real
PostgreSQL (each test's own database and login role, dropped afterwards)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from cortiware.app import create_app
from cortiware.db.engine import create_engine
from cortiware.db.roles import APPLICATION_GROUP, scram_sha256_verifier
from tests.conftest import TEST_ENV, SettingsFactory
from tests.integration.backends import Backends, scratch_database
from tests.integration.test_end_to_end import (
    test_provider_invites_and_owner_reads_its_organization as onboarding_journey,
)
from tests.support.auth import login_staff

PASSWORD = "app-role-password-with-:@/-characters"


def as_user(url: str, user: str, password: str = PASSWORD) -> str:
    """`url` with another user and password (percent-encoded as the program writes them)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{host}"))


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`cortiware ARGS` with the test environment plus `env`."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "cortiware.cli", *args],
        env={**keep, **TEST_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sync_url(url: str) -> str:
    """The libpq form psycopg takes."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
def roles_database(backends: Backends) -> Iterator[tuple[str, str]]:
    """An empty database of its own and a login role name; `(owner URL, app URL)`; the
    login role is dropped afterwards."""
    user = f"cw_app_{uuid.uuid4().hex[:10]}"
    with scratch_database(backends.admin_database_url) as owner_url:
        yield owner_url, as_user(owner_url, user)
    with psycopg.connect(sync_url(backends.admin_database_url), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{user}"')


def migrate(owner_url: str, app_url: str) -> subprocess.CompletedProcess[str]:
    """The migrate task's command with the service's and the owner's URLs."""
    return cli(
        "migrate", env={"DATABASE_URL": sync_url(app_url), "DATABASE_URL_UNPOOLED": owner_url}
    )


def test_migrate_creates_the_application_login_role(roles_database: tuple[str, str]) -> None:
    """The service's user is a non-superuser login role in `cortiware_app`, its password
    stored as a SCRAM verifier of the URL's password; a second run changes nothing."""
    owner_url, app_url = roles_database
    for _ in range(2):
        result = migrate(owner_url, app_url)
        assert result.returncode == 0, result.stderr
    user = urlsplit(app_url).username
    with psycopg.connect(sync_url(owner_url)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword,"
            " pg_has_role(rolname, %s, 'member') FROM pg_authid WHERE rolname = %s",
            (APPLICATION_GROUP, user),
        ).fetchone()
    assert row is not None
    superuser, createdb, createrole, login, verifier, member = row
    assert (superuser, createdb, createrole, login, member) == (False, False, False, True, True)
    _, iterations_salt, _ = verifier.split("$")
    salt = base64.b64decode(iterations_salt.split(":")[1])
    assert verifier == scram_sha256_verifier(PASSWORD, salt)
    assert PASSWORD not in verifier


def test_the_application_role_reads_and_writes_rows_but_no_schema(
    roles_database: tuple[str, str],
) -> None:
    """As the service's role: rows can be read and written; tables cannot be created,
    dropped or truncated."""
    owner_url, app_url = roles_database
    assert migrate(owner_url, app_url).returncode == 0
    with psycopg.connect(sync_url(app_url), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM plans").fetchone()
        conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("INSERT INTO plans SELECT * FROM plans WHERE false")
        conn.execute("UPDATE plans SET name = name WHERE false")
        conn.execute("DELETE FROM plans WHERE false")
        for statement in (
            "CREATE TABLE intruder (id int)",
            "DROP TABLE plans",
            "TRUNCATE plans",
            "ALTER TABLE plans ADD COLUMN x int",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


async def test_the_service_runs_as_the_application_role(
    roles_database: tuple[str, str], make_settings: SettingsFactory, redis_url: str
) -> None:
    """The app connected as the application role answers health `ok` for the database,
    and serves a route that reads the catalogue."""
    owner_url, app_url = roles_database
    assert migrate(owner_url, app_url).returncode == 0
    seeded = cli("seed", env={"DATABASE_URL": owner_url})
    assert seeded.returncode == 0, seeded.stderr
    settings = make_settings(DATABASE_URL=sync_url(app_url), REDIS_URL=redis_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        health = await client.get("/api/health")
        plans = await client.get("/api/plans")
    assert health.json()["checks"]["database"] == "ok"
    assert plans.status_code == 200
    assert len(plans.json()) >= 1


def test_db_shell_is_read_only_unless_asked(roles_database: tuple[str, str]) -> None:
    """`cortiware db shell -c` runs as DATABASE_URL's role, refuses writes by default and
    allows them with `--write`; the password never appears in its output."""
    owner_url, app_url = roles_database
    assert migrate(owner_url, app_url).returncode == 0
    env = {"DATABASE_URL": sync_url(app_url)}
    who = cli("db", "shell", "-c", "SELECT current_user", env=env)
    assert who.returncode == 0, who.stderr
    assert urlsplit(app_url).username in who.stdout
    delete = "DELETE FROM plans WHERE false"
    refused = cli("db", "shell", "-c", delete, env=env)
    assert refused.returncode != 0
    assert "read-only transaction" in refused.stderr
    allowed = cli("db", "shell", "--write", "-c", delete, env=env)
    assert allowed.returncode == 0, allowed.stderr
    for result in (who, refused, allowed):
        assert PASSWORD not in result.stdout + result.stderr


def test_db_shell_refuses_the_embedded_database() -> None:
    """Without a PostgreSQL DATABASE_URL the command says so in one line."""
    result = cli("db", "shell", "-c", "SELECT 1", env={})
    assert result.returncode == 1
    assert result.stderr.strip() == "cortiware: db shell needs DATABASE_URL to be a PostgreSQL URL"


def test_scram_verifier_matches_the_rfc_7677_example() -> None:
    """The verifier's keys are those of RFC 7677's example (user `user`, password `pencil`)."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_sha256_verifier("pencil", salt)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    # RFC 7677 §3: ClientProof = ClientKey XOR ClientSignature; the stored key is H(ClientKey).
    assert (
        verifier.split("$")[2].split(":")[0]
        == base64.b64encode(hashlib.sha256(client_key).digest()).decode()
    )
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")


def test_the_onboarding_journey_runs_as_the_application_role(
    roles_database: tuple[str, str], make_settings: SettingsFactory, redis_url: str
) -> None:
    """After `cortiware migrate`, invite, verify, accept, owner login, accountant reports, the
    audit listing and `cortiware audit prune` all work as the service's least-privilege role
    (the whole journey of `test_end_to_end`)."""
    owner_url, app_url = roles_database
    assert migrate(owner_url, app_url).returncode == 0
    settings = make_settings(
        DATABASE_URL=sync_url(app_url),
        REDIS_URL=redis_url,
        CORTIWARE_REDIS_PREFIX=f"cwtest:{uuid.uuid4().hex[:12]}:",
    )

    async def journey() -> None:
        engine = create_engine(sync_url(app_url), pool_size=1)
        try:
            async with AsyncTestClient(
                app=create_app(settings), base_url="http://testserver.local"
            ) as client:
                await onboarding_journey(client, async_sessionmaker(engine))
                client.headers["X-CSRF-Token"] = await login_staff(client, "accountant")
                for path in ("/api/accountant/revenue", "/api/accountant/subscriptions.csv"):
                    assert (await client.get(path)).status_code == 200, path
                client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
                audit = await client.get("/api/provider/audit")
                assert audit.status_code == 200
                assert audit.json()["items"]
        finally:
            await engine.dispose()

    asyncio.run(journey())
    pruned = cli("audit", "prune", env={"DATABASE_URL": sync_url(app_url)})
    assert pruned.returncode == 0, pruned.stderr
