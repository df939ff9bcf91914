"""Secrets Manager secrets for every secret variable of contract §2, one secret per variable.

Generated values come from pulumi-random with the stack's ``secretRotation`` keeper (change it
and ``pulumi up`` to rotate them all); Stripe keys and the ``_PREVIOUS`` values of a rotation
come from Pulumi config secrets; ``DATABASE_URL``/``DATABASE_URL_UNPOOLED``/
``DATABASE_REPLICA_URL``/``REDIS_URL`` are composed from the resources.

Which task gets which: the web and audit-prune tasks get every variable but
``DATABASE_URL_UNPOOLED`` (the owner's credentials stay out of the serving containers); the
migrate task gets the owner's ``DATABASE_URL_UNPOOLED`` and, as ``DATABASE_URL``, the application
role's URL (``cortiware/<stack>/migrate/DATABASE_URL``): the role `cortiware migrate` creates
with that password, even while the service itself still connects as the owner.
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
    "OWNER_ONLY_VARIABLES",
    "REQUIRED_SECRET_VARIABLES",
    "SERVING_ONLY_VARIABLES",
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
"""Always created; ``OIDC_CLIENT_SECRET``, ``SENTRY_DSN``, ``DATABASE_REPLICA_URL`` and the
``_PREVIOUS`` rotation values are added when configured."""

OWNER_ONLY_VARIABLES = ("DATABASE_URL_UNPOOLED",)
"""Injected into the migrate task only."""
SERVING_ONLY_VARIABLES = ("DATABASE_REPLICA_URL",)
"""Injected into the web and audit-prune tasks only (migrations never read the replica)."""

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
    """The service's: through RDS Proxy, as the application role (or the owner while switching)."""
    application_database_url: pulumi.Output[str]
    """The application role through RDS Proxy: the migrate task's ``DATABASE_URL``."""
    database_url_unpooled: pulumi.Output[str]
    """The owner, direct to the instance."""
    database_replica_url: pulumi.Output[str] | None
    """The application role on the read replica; ``None`` without one."""
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
        if optional.session_secret_previous is not None:
            values["SESSION_SECRET_PREVIOUS"] = optional.session_secret_previous
        if optional.onboarding_token_secret_previous is not None:
            values["ONBOARDING_TOKEN_SECRET_PREVIOUS"] = optional.onboarding_token_secret_previous
        if args.database_replica_url is not None:
            values["DATABASE_REPLICA_URL"] = args.database_replica_url

        self.secrets: dict[str, aws.secretsmanager.Secret] = {
            variable: self._secret(name, args, variable, value)
            for variable, value in values.items()
        }
        self.migration_database_url: aws.secretsmanager.Secret = self._secret(
            name,
            args,
            "DATABASE_URL",
            args.application_database_url,
            scope="migrate",
            description="the application role's URL, the migrate task's DATABASE_URL",
        )
        self.register_outputs({"arns": self.arns})

    @property
    def arns(self) -> Mapping[str, pulumi.Output[str]]:
        """Environment variable name → secret ARN of every variable's own secret."""
        return {variable: secret.arn for variable, secret in self.secrets.items()}

    @property
    def serving_arns(self) -> Mapping[str, pulumi.Output[str]]:
        """The web and audit-prune tasks' ``secrets`` (variable → ``valueFrom``)."""
        return {v: arn for v, arn in self.arns.items() if v not in OWNER_ONLY_VARIABLES}

    @property
    def migration_arns(self) -> Mapping[str, pulumi.Output[str]]:
        """The migrate task's: the owner's direct URL, the application role as DATABASE_URL."""
        arns = {v: arn for v, arn in self.arns.items() if v not in SERVING_ONLY_VARIABLES}
        return {**arns, "DATABASE_URL": self.migration_database_url.arn}

    def _secret(
        self,
        name: str,
        args: AppSecretsArgs,
        variable: str,
        value: pulumi.Input[str],
        *,
        scope: str | None = None,
        description: str | None = None,
    ) -> aws.secretsmanager.Secret:
        child = pulumi.ResourceOptions(parent=self)
        label = ("" if scope is None else f"{scope}-") + variable.lower().replace("_", "-")
        path = variable if scope is None else f"{scope}/{variable}"
        secret = aws.secretsmanager.Secret(
            f"{name}-{label}",
            name=f"cortiware/{args.stack}/{path}",
            description=f"Cortiware {description or variable} (injected into the ECS tasks)",
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
