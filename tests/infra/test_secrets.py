"""Secrets Manager: one secret per contract §2 secret variable, generated ones sized and rotated."""

from __future__ import annotations

import base64
import string

import pytest
from infra.components.secrets import REQUIRED_SECRET_VARIABLES, STAFF_PASSWORD_SPECIALS
from infra.offline import OfflineRun, PlannedResource

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
    """Every secret variable of contract §2 has its own secret named cortiware/<stack>/<VAR>."""
    assert set(REQUIRED_SECRET_VARIABLES) == CONTRACT_SECRETS
    names = {
        r.inputs["name"]
        for r in run.of_type("aws:secretsmanager/secret:Secret")
        if r.name.startswith("secrets-")
    }
    assert names == {f"cortiware/{run.stack}/{v}" for v in CONTRACT_SECRETS}


def test_secrets_are_encrypted_with_the_secrets_cmk(run: OfflineRun) -> None:
    """Every application secret is encrypted with the stack's own rotating CMK."""
    key = run.named("secrets-key")
    assert key.inputs["enableKeyRotation"] is True
    for secret in run.of_type("aws:secretsmanager/secret:Secret"):
        assert secret.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_every_task_injects_every_secret_from_secrets_manager(run: OfflineRun) -> None:
    """Web, migrate and audit-prune containers get every secret via valueFrom, none in plain env."""
    arns = run.outputs["secretArns"]
    for family in ("web", "migrate", "audit-prune"):
        definition = container(run, family)
        injected = {s["name"]: s["valueFrom"] for s in definition["secrets"]}
        assert injected == arns
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
    assert _value(run, "DATABASE_URL").startswith("postgresql://cortiware_admin:")
    assert ".proxy-" in _value(run, "DATABASE_URL")
    assert _value(run, "DATABASE_URL").endswith(":5432/cortiware?sslmode=require")
    assert ".proxy-" not in _value(run, "DATABASE_URL_UNPOOLED")
    assert _value(run, "REDIS_URL").startswith("rediss://:")
    assert _value(run, "REDIS_URL").endswith(":6379/0")
    assert _value(run, "STRIPE_SECRET_KEY").startswith("sk_")
    assert _value(run, "STRIPE_PUBLISHABLE_KEY").startswith("pk_")
    assert _value(run, "STRIPE_WEBHOOK_SECRET").startswith("whsec_")
    assert _value(run, "PROVIDER_USERNAME") == "provider"
