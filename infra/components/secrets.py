"""Secrets Manager secrets for every secret variable of contract §2, one secret per variable.

Generated values come from pulumi-random with the stack's ``secretRotation`` keeper (change it
and ``pulumi up`` to rotate them all); Stripe keys come from Pulumi config secrets;
``DATABASE_URL``/``DATABASE_URL_UNPOOLED``/``REDIS_URL`` are composed from the resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components._aws import customer_managed_key, tags
from infra.config import SecretsConfig

__all__ = [
    "REQUIRED_SECRET_VARIABLES",
    "STAFF_PASSWORD_SPECIALS",
    "AppSecrets",
    "AppSecretsArgs",
]

REQUIRED_SECRET_VARIABLES = (
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
)
"""Always created; ``OIDC_CLIENT_SECRET`` and ``SENTRY_DSN`` are added when configured."""

STAFF_PASSWORD_SPECIALS = "-_.~!#%*+="  # noqa: S105 - a character set
"""Specials of staff passwords: none needs quoting in a shell, URL or JSON."""

ONBOARDING_SECRET_LENGTH = 96
STAFF_PASSWORD_LENGTH = 40
SESSION_SECRET_LENGTH = 64
FEDERATION_KEY_BYTES = 32


@dataclass(frozen=True)
class AppSecretsArgs:
    """Inputs of :class:`AppSecrets`."""

    config: SecretsConfig
    """Stripe keys, staff usernames, optional secrets and the rotation keeper."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for secret names and tags."""
    production: bool
    """A 30-day recovery window for deleted secrets (7 days otherwise)."""
    database_url: pulumi.Output[str]
    """Through RDS Proxy."""
    database_url_unpooled: pulumi.Output[str]
    """Direct to the instance."""
    redis_url: pulumi.Output[str]
    """``rediss://`` with the AUTH token."""


class AppSecrets(pulumi.ComponentResource):
    """One Secrets Manager secret per secret variable, encrypted with the stack's secrets CMK."""

    def __init__(
        self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:AppSecrets", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        keepers = {"rotation": cfg.rotation}
        self.key: aws.kms.Key = customer_managed_key(
            f"{name}-key",
            description="Cortiware application secrets",
            stack=args.stack,
            alias=f"{args.prefix}-app-secrets",
            parent=self,
        )

        def generated(label: str, length: int, *, specials: str | None) -> pulumi.Output[str]:
            return random.RandomPassword(
                f"{name}-{label}",
                length=length,
                special=specials is not None,
                override_special=specials,
                min_lower=4,
                min_upper=4,
                min_numeric=4,
                min_special=0 if specials is None else 2,
                keepers=keepers,
                opts=child,
            ).result

        federation_key = random.RandomBytes(
            f"{name}-federation-key", length=FEDERATION_KEY_BYTES, keepers=keepers, opts=child
        )
        values: dict[str, pulumi.Input[str]] = {
            "DATABASE_URL": args.database_url,
            "DATABASE_URL_UNPOOLED": args.database_url_unpooled,
            "REDIS_URL": args.redis_url,
            "STRIPE_SECRET_KEY": cfg.stripe.secret_key,
            "STRIPE_PUBLISHABLE_KEY": cfg.stripe.publishable_key,
            "STRIPE_WEBHOOK_SECRET": cfg.stripe.webhook_secret,
            "ONBOARDING_TOKEN_SECRET": generated(
                "onboarding-token-secret", ONBOARDING_SECRET_LENGTH, specials=None
            ),
            "SESSION_SECRET": generated("session-secret", SESSION_SECRET_LENGTH, specials=None),
            # Standard Webhooks: "whsec_" + base64 of the raw key bytes.
            "FEDERATION_WEBHOOK_SECRETS": pulumi.Output.secret(
                pulumi.Output.concat("whsec_", federation_key.base64)
            ),
        }
        for role, username in (
            ("PROVIDER", cfg.staff.provider),
            ("DEVELOPER", cfg.staff.developer),
            ("ACCOUNTANT", cfg.staff.accountant),
        ):
            values[f"{role}_USERNAME"] = username
            values[f"{role}_PASSWORD"] = generated(
                f"{role.lower()}-password", STAFF_PASSWORD_LENGTH, specials=STAFF_PASSWORD_SPECIALS
            )
        optional = cfg.optional
        if optional.oidc_client_secret is not None:
            values["OIDC_CLIENT_SECRET"] = optional.oidc_client_secret
        if optional.sentry_dsn is not None:
            values["SENTRY_DSN"] = optional.sentry_dsn

        self.secrets: dict[str, aws.secretsmanager.Secret] = {
            variable: self._secret(name, args, variable, value)
            for variable, value in values.items()
        }
        self.register_outputs({"arns": self.arns})

    @property
    def arns(self) -> Mapping[str, pulumi.Output[str]]:
        """Environment variable name → secret ARN (the ECS ``valueFrom``)."""
        return {variable: secret.arn for variable, secret in self.secrets.items()}

    def _secret(
        self, name: str, args: AppSecretsArgs, variable: str, value: pulumi.Input[str]
    ) -> aws.secretsmanager.Secret:
        child = pulumi.ResourceOptions(parent=self)
        label = variable.lower().replace("_", "-")
        secret = aws.secretsmanager.Secret(
            f"{name}-{label}",
            name=f"cortiware/{args.stack}/{variable}",
            description=f"Cortiware {variable} (injected into the ECS tasks)",
            kms_key_id=self.key.arn,
            recovery_window_in_days=30 if args.production else 7,
            tags=tags(args.stack, f"{args.prefix}-{label}", Variable=variable),
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-{label}-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=child,
        )
        return secret
