"""Secrets Manager: one secret per contract §2 secret variable, generated ones sized and rotated."""

from __future__ import annotations

import base64
import string

import pytest
from infra.components.secrets import REQUIRED_SECRET_VARIABLES, STAFF_PASSWORD_SPECIALS
from infra.offline import OfflineRun, PlannedResource, run_offline, stack_config

from tests.infra.conftest import container

pytestmark = pytest.mark.infra

CONTRACT_SECRETS = {
    "DATABASE_URL",
    "DATABASE_URL_UNPOOLED",
    "REDIS_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ONBOARDING_TOKEN_SECRET",
    "PROVIDER_USERNAME",
    "PROVIDER_PASSWORD",
    "DEVELOPER_USERNAME",
    "DEVELOPER_PASSWORD",
    "ACCOUNTANT_USERNAME",
    "ACCOUNTANT_PASSWORD",
    "SESSION_SECRET",
    "FEDERATION_WEBHOOK_SECRETS",
}


def _value(run: OfflineRun, variable: str) -> str:
    label = variable.lower().replace("_", "-")
    version: PlannedResource = run.named(f"secrets-{label}-value")
    assert "secretString" in version.secret_inputs
    value: str = version.inputs["secretString"]
    return value


def test_a_secret_exists_for_every_contract_secret_variable(run: OfflineRun) -> None:
    """Every secret variable of contract §2 has its own secret named cortiware/<stack>/<VAR>;
    besides them only the migrate task's DATABASE_URL and, with a replica, its URL."""
    assert set(REQUIRED_SECRET_VARIABLES) == CONTRACT_SECRETS
    names = {
        r.inputs["name"]
        for r in run.of_type("aws:secretsmanager/secret:Secret")
        if r.name.startswith("secrets-")
    }
    replica = {"DATABASE_REPLICA_URL"} if run.stack == "prod" else set()
    assert names == {
        f"cortiware/{run.stack}/{v}" for v in CONTRACT_SECRETS | replica | {"migrate/DATABASE_URL"}
    }


def test_secrets_are_encrypted_with_the_secrets_cmk(run: OfflineRun) -> None:
    """Every application secret is encrypted with the stack's own rotating CMK."""
    key = run.named("secrets-key")
    assert key.inputs["enableKeyRotation"] is True
    for secret in run.of_type("aws:secretsmanager/secret:Secret"):
        assert secret.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_every_task_injects_its_secrets_from_secrets_manager(run: OfflineRun) -> None:
    """Web and audit-prune get every secret but the owner's URL, the migrate task every one but
    the replica's with the application role's URL as DATABASE_URL; all via valueFrom, none in
    plain env."""
    arns = run.outputs["secretArns"]
    serving = {k: v for k, v in arns.items() if k != "DATABASE_URL_UNPOOLED"}
    migration = {
        **{k: v for k, v in arns.items() if k != "DATABASE_REPLICA_URL"},
        "DATABASE_URL": arns["DATABASE_URL"].replace(
            f"cortiware/{run.stack}/", f"cortiware/{run.stack}/migrate/"
        ),
    }
    for family, expected in (("web", serving), ("audit-prune", serving), ("migrate", migration)):
        definition = container(run, family)
        injected = {s["name"]: s["valueFrom"] for s in definition["secrets"]}
        assert injected == expected, family
        plain = {e["name"] for e in definition["environment"]}
        assert not plain & CONTRACT_SECRETS


@pytest.mark.parametrize(
    ("resource", "minimum"),
    [
        ("secrets-onboarding-token-secret", 64),
        ("secrets-session-secret", 32),
        ("secrets-provider-password", 32),
        ("secrets-developer-password", 32),
        ("secrets-accountant-password", 32),
    ],
)
def test_generated_secret_lengths_and_rotation_keeper(
    run: OfflineRun, resource: str, minimum: int
) -> None:
    """Generated secrets meet the contract's minimum length and rotate with the stack keeper."""
    password = run.named(resource)
    assert password.inputs["length"] >= minimum
    assert password.inputs["keepers"] == {"rotation": "2025-01-01"}
    assert len(_value(run, resource.removeprefix("secrets-").replace("-", "_").upper())) >= minimum


def test_generated_secret_character_sets(run: OfflineRun) -> None:
    """Token secrets are alphanumeric; staff passwords add only shell- and URL-safe specials."""
    alnum = set(string.ascii_letters + string.digits)
    for variable in ("ONBOARDING_TOKEN_SECRET", "SESSION_SECRET"):
        assert set(_value(run, variable)) <= alnum
    for role in ("PROVIDER", "DEVELOPER", "ACCOUNTANT"):
        password = run.named(f"secrets-{role.lower()}-password")
        assert password.inputs["overrideSpecial"] == STAFF_PASSWORD_SPECIALS
        assert set(_value(run, f"{role}_PASSWORD")) <= alnum | set(STAFF_PASSWORD_SPECIALS)


def test_federation_secret_is_standard_webhooks_format(run: OfflineRun) -> None:
    """FEDERATION_WEBHOOK_SECRETS is whsec_ + base64 of 32 random bytes, rotated by the keeper."""
    key = run.named("secrets-federation-key")
    assert key.inputs["length"] == 32
    assert key.inputs["keepers"] == {"rotation": "2025-01-01"}
    value = _value(run, "FEDERATION_WEBHOOK_SECRETS")
    assert value.startswith("whsec_")
    assert len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) == 32


def test_composed_urls_and_stripe_keys(run: OfflineRun) -> None:
    """URLs point at the proxy, the instance and Redis over TLS; Stripe keys come from config."""
    assert _value(run, "DATABASE_URL").startswith("postgresql://cortiware_service:")
    assert ".proxy-" in _value(run, "DATABASE_URL")
    assert _value(run, "DATABASE_URL_UNPOOLED").startswith("postgresql://cortiware_admin:")
    assert _value(run, "DATABASE_URL").endswith(":5432/cortiware?sslmode=require")
    assert ".proxy-" not in _value(run, "DATABASE_URL_UNPOOLED")
    assert _value(run, "REDIS_URL").startswith("rediss://:")
    assert _value(run, "REDIS_URL").endswith(":6379/0")
    assert _value(run, "STRIPE_SECRET_KEY").startswith("sk_")
    assert _value(run, "STRIPE_PUBLISHABLE_KEY").startswith("pk_")
    assert _value(run, "STRIPE_WEBHOOK_SECRET").startswith("whsec_")
    assert _value(run, "PROVIDER_USERNAME") == "provider"


def test_the_migrate_task_provisions_the_service_role(run: OfflineRun) -> None:
    """The migrate task's DATABASE_URL is the service's (the application role through the
    proxy): `cortiware migrate` creates that role with that password."""
    version = run.named("secrets-migrate-database-url-value")
    assert "secretString" in version.secret_inputs
    assert version.inputs["secretString"] == _value(run, "DATABASE_URL")


def test_prod_reads_reports_from_the_replica_as_the_application_role(run: OfflineRun) -> None:
    """Prod's DATABASE_REPLICA_URL is the application role on the replica itself (RDS Proxy
    has no reader endpoint for RDS for PostgreSQL); staging has none."""
    if run.stack != "prod":
        assert "DATABASE_REPLICA_URL" not in run.outputs["secretArns"]
        return
    url = _value(run, "DATABASE_REPLICA_URL")
    assert url.startswith("postgresql://cortiware_service:")
    assert f"@{run.outputs['databaseReplicaEndpoint']}:5432/" in url


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("sessionSecretPrevious", "SESSION_SECRET_PREVIOUS"),
        ("onboardingTokenSecretPrevious", "ONBOARDING_TOKEN_SECRET_PREVIOUS"),
    ],
)
def test_previous_rotation_secrets_are_wired_when_set(key: str, variable: str) -> None:
    """A `_PREVIOUS` value set in stack config becomes its own secret, injected into the web
    task; unset, there is none."""
    value = "p" * 96
    run = run_offline("staging", {**stack_config("staging"), f"cortiware:{key}": value})
    assert variable in run.outputs["secretArns"]
    assert _value(run, variable) == value
    injected = {s["name"] for s in container(run, "web")["secrets"]}
    assert variable in injected
