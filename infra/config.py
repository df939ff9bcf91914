"""Typed stack configuration, read once from ``Pulumi.<stack>.yaml`` at program start.

Every per-stack choice (sizes, retention, Multi-AZ, AZ count, alert e-mails, domain,
desired counts) lives in the stack file; components receive these frozen dataclasses and
never read ``pulumi.Config`` themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import pulumi

__all__ = [
    "AlertsConfig",
    "ArchiveConfig",
    "CacheConfig",
    "CanaryConfig",
    "ConfigError",
    "DatabaseConfig",
    "DomainConfig",
    "NetworkConfig",
    "SecretsConfig",
    "ServiceConfig",
    "StackConfig",
    "StripeConfig",
    "load",
]

PROJECT = "cortiware"
"""The Pulumi project name and config namespace (``cortiware:<key>``)."""

AppEnv = Literal["staging", "production"]


class ConfigError(ValueError):
    """A stack configuration value is missing or out of range; the message names the key."""


@dataclass(frozen=True)
class NetworkConfig:
    """The VPC layout."""

    cidr: str
    """The VPC's IPv4 block, at least a /20 so each tier gets one /24-or-larger subnet per AZ."""
    az_count: int
    """Availability zones used (2 in staging, 3 in prod)."""
    nat_per_az: bool
    """One NAT gateway per AZ (prod) or a single shared one (staging)."""
    flow_log_retention_days: int
    """Retention of the VPC flow-log group."""


@dataclass(frozen=True)
class DomainConfig:
    """The public name of the service and how its certificate is obtained."""

    name: str | None
    """The public host name (``app.example.com``); ``None`` serves on the ALB's own name."""
    hosted_zone_id: str | None
    """Route 53 zone for DNS validation and the alias record; ``None`` means validate by hand."""
    certificate_arn: str | None
    """An existing ACM certificate to use instead of requesting one."""


@dataclass(frozen=True)
class DatabaseRestore:
    """A point-in-time restore the stack runs on instead of the instance it had.

    The program declares the primary as a new instance ``<prefix>-db-<generation>`` restored
    from ``source_identifier``; the proxy target, replica, backup selection, alarms, log
    groups and outputs follow it. The instance it replaces is kept (``retain_on_delete``).
    """

    generation: str
    """Suffix of the new identifier, e.g. ``r1``; a new value for every restore."""
    source_identifier: str
    """The instance restored from, e.g. ``cortiware-prod-db``."""
    time: str | None
    """UTC restore time (``2026-01-31T09:55:00Z``); ``None`` for the latest restorable time."""


@dataclass(frozen=True)
class DatabaseConfig:
    """RDS PostgreSQL and its proxy, backups and replica."""

    instance_class: str
    """The RDS instance class, e.g. ``db.t4g.medium``."""
    engine_version: str
    """PostgreSQL major version, ``16``; RDS picks and upgrades the minor."""
    allocated_storage_gb: int
    """Initial gp3 storage."""
    max_allocated_storage_gb: int
    """Ceiling for storage autoscaling."""
    backup_retention_days: int
    """Automated backup (point-in-time recovery) window: 7 in staging, 35 in prod."""
    multi_az: bool
    """Synchronous standby in another AZ."""
    deletion_protection: bool
    """RDS deletion protection and Pulumi ``protect`` on the instance."""
    read_replica: bool
    """Create one read replica of the primary."""
    performance_insights_retention_days: int
    """7 (free tier), 731, or a multiple of 31."""
    monitoring_interval_seconds: int
    """Enhanced monitoring granularity: 1, 5, 10, 15, 30 or 60 (0, off, is refused)."""
    slow_query_ms: int
    """``log_min_duration_statement``: statements slower than this are logged."""
    backup_vault_retention_days: int
    """How long AWS Backup keeps the daily snapshots."""
    backup_copy_region: str | None
    """A second region that receives a copy of every daily backup (prod); ``None`` for none."""
    proxy_max_connections_percent: int
    """Share of ``max_connections`` RDS Proxy may open."""
    restore: DatabaseRestore | None = None
    """Run on a point-in-time restore (``database.restore``); ``None``: the original instance."""
    application_role: bool = True
    """The service connects as the least-privilege login role the migrate task provisions
    (``database.applicationRole``, default true); false keeps it on the owner while an existing
    stack is switched over (docs/infra.md, "Switching an existing stack to the application
    role"). The migrate task provisions the role either way."""


@dataclass(frozen=True)
class CacheConfig:
    """ElastiCache Redis."""

    node_type: str
    """Node type, e.g. ``cache.t4g.small``."""
    engine_version: str
    """Redis engine version."""
    num_cache_clusters: int
    """Primary plus replicas; automatic failover needs at least 2."""
    automatic_failover: bool
    """Promote a replica when the primary fails (prod)."""
    multi_az: bool
    """Spread nodes across AZs (prod)."""
    snapshot_retention_days: int
    """Daily snapshots kept."""
    slow_log_retention_days: int
    """Retention of the slow-log group."""


@dataclass(frozen=True)
class ServiceConfig:
    """The Fargate service, its image and scaling."""

    image_tag: str
    """Tag in the stack's ECR repository that the service runs (pushed before ``pulumi up``)."""
    cpu: int
    """Task CPU units, a Fargate size (256 … 16384)."""
    memory_mib: int
    """Task memory, one Fargate accepts with ``cpu`` (see ``FARGATE_MEMORY_MIB``)."""
    workers: int
    """``cortiware serve --workers``."""
    desired_count: int
    """Tasks at creation; autoscaling owns the number afterwards."""
    min_count: int
    """Autoscaling floor."""
    max_count: int
    """Autoscaling ceiling."""
    cpu_target_percent: int
    """Target average CPU for target tracking."""
    requests_per_target: int
    """Target ALB requests per task per minute."""
    log_retention_days: int
    """Retention of the application log group."""
    traces_sample_rate: float
    """``sentryTracesSampleRate`` (default 0.1): ``SENTRY_TRACES_SAMPLE_RATE`` of the containers."""
    stripe_payment_methods: tuple[str, ...] = ("card",)
    """``stripePaymentMethods`` (default ``[card]``): ``STRIPE_PAYMENT_METHODS`` of the
    containers, what Stripe Checkout offers (card, and bank debits for their currencies)."""


@dataclass(frozen=True)
class ArchiveConfig:
    """The audit archive bucket's lifecycle."""

    glacier_after_days: int
    """Objects move to Glacier Flexible Retrieval after this many days."""
    expire_after_days: int
    """Objects are deleted after this many days."""


@dataclass(frozen=True)
class AlertsConfig:
    """Who is told when an alarm fires, and the thresholds that are per-stack.

    The four thresholds of the requirements (5xx rate, p95 latency, onboarding conversion,
    database connection failures) default to the requirements' numbers; a stack file may
    override each under ``cortiware:alerts``.
    """

    emails: tuple[str, ...]
    """E-mail subscribers of the alarm topic (each must confirm the subscription)."""
    pager_url: str | None
    """``pagerUrl``: an HTTPS endpoint (PagerDuty/Opsgenie-style) subscribed to the topic."""
    error_rate_percent: float
    """``errorRatePercent`` (default 1): share of 5xx (the targets' and the load balancer's own)
    above which the 5xx alarm fires."""
    p95_latency_seconds: float
    """``p95LatencySeconds`` (default 2): p95 target response time above which it fires."""
    conversion_min_percent: float
    """``conversionMinPercent`` (default 50): accepted/created invites below which it fires."""
    conversion_min_invites: int
    """``conversionMinInvites`` (default 20): invites created in the window before the
    conversion alarm may fire, so a quiet window does not page."""
    conversion_window_hours: int
    """``conversionWindowHours`` (default 24, at most 24): the conversion window."""
    db_connection_failures: int
    """``dbConnectionFailures`` (default 0): failed connection attempts per 5 minutes (the
    service's and RDS Proxy's to the database) above which the alarm fires."""
    db_max_connections: int
    """Database connections above which the connections alarm fires."""
    db_min_free_storage_gb: int
    """Free storage below which the storage alarm fires; under 10% of the allocated storage,
    where storage autoscaling grows the volume (5% in both stacks)."""
    db_min_freeable_memory_mb: int
    """``dbMinFreeableMemoryMb`` (default 256): RDS FreeableMemory below which it fires."""
    db_max_disk_queue_depth: float
    """``dbMaxDiskQueueDepth`` (default 20): outstanding I/Os above which it fires."""
    db_max_replica_lag_seconds: int
    """``dbMaxReplicaLagSeconds`` (default 60): replica lag above which it fires (prod's
    replica)."""
    db_min_cpu_credits: int
    """``dbMinCpuCredits`` (default 50): CPU credit balance below which it fires (burstable
    ``db.t*`` classes only)."""
    db_max_pool_wait_ms: int
    """``dbMaxPoolWaitMs``: p95 of the service's wait for a pooled database connection
    (``db.pool.wait_ms``) above which ``db-pool-waits`` fires."""
    secret_max_age_days: int
    """``secretMaxAgeDays`` (default 90): a secret unchanged for longer fires the secret-age
    alarm (see ``runbooks/secret-age.md``)."""


@dataclass(frozen=True)
class CanaryConfig:
    """The CloudWatch Synthetics canary that calls ``/api/health``."""

    runtime_version: str
    """Synthetics runtime, e.g. ``syn-python-selenium-5.1``."""
    artifact_retention_days: int
    """How long canary screenshots and logs are kept."""


@dataclass(frozen=True)
class StripeConfig:
    """Stripe keys, set with ``pulumi config set --secret``; they stay secret outputs."""

    secret_key: pulumi.Output[str]
    """``sk_…``."""
    publishable_key: pulumi.Output[str]
    """``pk_…``."""
    webhook_secret: pulumi.Output[str]
    """``whsec_…``, comma-separated while rotating."""


@dataclass(frozen=True)
class StaffConfig:
    """Usernames of the three staff roles; their passwords are generated."""

    provider: str
    """``PROVIDER_USERNAME``."""
    developer: str
    """``DEVELOPER_USERNAME``."""
    accountant: str
    """``ACCOUNTANT_USERNAME``."""


@dataclass(frozen=True)
class OptionalSecretsConfig:
    """Secret variables of the contract that are optional (set with ``--secret`` to enable)."""

    oidc_issuer: str | None
    """``OIDC_ISSUER``; OIDC needs all three values or none."""
    oidc_client_id: str | None
    """``OIDC_CLIENT_ID``."""
    oidc_client_secret: pulumi.Output[str] | None
    """``OIDC_CLIENT_SECRET``."""
    sentry_dsn: pulumi.Output[str] | None
    """``SENTRY_DSN``."""
    session_secret_previous: pulumi.Output[str] | None = None
    """``SESSION_SECRET_PREVIOUS``: the value a rotation replaced, set only while rotating
    (``runbooks/secret-age.md``)."""
    onboarding_token_secret_previous: pulumi.Output[str] | None = None
    """``ONBOARDING_TOKEN_SECRET_PREVIOUS``: likewise, while invites signed with it are open."""


@dataclass(frozen=True)
class SecretsConfig:
    """What the Secrets Manager secrets hold and when generated ones are renewed."""

    rotation: str
    """Keeper of every generated secret: change it to rotate them all on the next ``up``."""
    stripe: StripeConfig
    """See :class:`StripeConfig`."""
    staff: StaffConfig
    """See :class:`StaffConfig`."""
    optional: OptionalSecretsConfig
    """See :class:`OptionalSecretsConfig`."""


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs, read once by :func:`load`."""

    stack: str
    """The Pulumi stack name (``staging`` or ``prod``)."""
    region: str
    """``aws:region``."""
    app_env: AppEnv
    """``APP_ENV`` of the containers."""
    network: NetworkConfig
    """See :class:`NetworkConfig`."""
    domain: DomainConfig
    """See :class:`DomainConfig`."""
    database: DatabaseConfig
    """See :class:`DatabaseConfig`."""
    cache: CacheConfig
    """See :class:`CacheConfig`."""
    service: ServiceConfig
    """See :class:`ServiceConfig`."""
    archive: ArchiveConfig
    """See :class:`ArchiveConfig`."""
    alerts: AlertsConfig
    """See :class:`AlertsConfig`."""
    canary: CanaryConfig
    """See :class:`CanaryConfig`."""
    secrets: SecretsConfig
    """See :class:`SecretsConfig`."""

    @property
    def is_production(self) -> bool:
        """True for the production stack, which gets protection, Multi-AZ and longer retention."""
        return self.app_env == "production"

    @property
    def prefix(self) -> str:
        """Name prefix of physical resources, e.g. ``cortiware-prod``."""
        return f"{PROJECT}-{self.stack}"


class _Section:
    """Typed reads from one structured config object, naming the key on error."""

    def __init__(self, key: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{PROJECT}:{key} must be an object")
        self._key = key
        self._raw: Mapping[str, Any] = raw

    def _get(self, name: str) -> Any:
        if name not in self._raw or self._raw[name] is None:
            raise ConfigError(f"{PROJECT}:{self._key}.{name} is required")
        return self._raw[name]

    def integer(self, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._get(name)
        # YAML numbers reach the program as JSON; a float like 7.0 is accepted, 7.5 is not.
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be an integer")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            raise ConfigError(
                f"{PROJECT}:{self._key}.{name}={number} is outside {minimum}..{maximum or '∞'}"
            )
        return number

    def number(self, name: str) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be a number")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be true or false")
        return value

    def flag_or(self, name: str, default: bool) -> bool:
        """The flag under ``name``, or ``default`` when the key is absent."""
        return default if self._raw.get(name) is None else self.flag(name)

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be a non-empty string")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be a string")
        return value

    def optional_object(self, name: str) -> Mapping[str, Any] | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be an object")
        return value

    def number_or(self, name: str, default: float) -> float:
        """The number under ``name``, or ``default`` when the key is absent."""
        return default if self._raw.get(name) is None else self.number(name)

    def integer_or(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """The integer under ``name``, or ``default`` when the key is absent."""
        if self._raw.get(name) is None:
            return default
        return self.integer(name, minimum=minimum, maximum=maximum)

    def texts_or(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """The strings under ``name``, or ``default`` when the key is absent."""
        return default if self._raw.get(name) is None else self.texts(name)

    def texts(self, name: str) -> tuple[str, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{PROJECT}:{self._key}.{name} must be a list of strings")
        return tuple(value)


MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
"""Enhanced monitoring intervals RDS accepts, without 0 (off), which this stack never wants."""

FARGATE_MEMORY_MIB: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
"""Task memory Fargate accepts for each task CPU size.
https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html
"""


def _performance_insights_days_valid(days: int) -> bool:
    """RDS accepts 7 (free tier), 731, or a whole number of months (multiples of 31)."""
    return days in (7, 731) or (days % 31 == 0 and 0 < days < 731)


def _fargate_memory_description(cpu: int) -> str:
    """``"512, 1024 or 2048"`` or ``"2048-8192 in steps of 1024"``."""
    sizes = FARGATE_MEMORY_MIB[cpu]
    if len(sizes) <= 3:
        return f"{', '.join(map(str, sizes[:-1]))} or {sizes[-1]}"
    return f"{sizes[0]}-{sizes[-1]} in steps of {sizes[1] - sizes[0]}"


def _network(s: _Section) -> NetworkConfig:
    return NetworkConfig(
        cidr=s.text("cidr"),
        az_count=s.integer("azCount", minimum=2, maximum=4),
        nat_per_az=s.flag("natPerAz"),
        flow_log_retention_days=s.integer("flowLogRetentionDays", minimum=1),
    )


def _domain(s: _Section) -> DomainConfig:
    domain = DomainConfig(
        name=s.optional_text("name"),
        hosted_zone_id=s.optional_text("hostedZoneId"),
        certificate_arn=s.optional_text("certificateArn"),
    )
    if domain.name is None and domain.certificate_arn is None:
        raise ConfigError(
            f"{PROJECT}:domain needs a name (an ACM certificate is requested for it) "
            "or a certificateArn: the load balancer only serves HTTPS"
        )
    return domain


_RESTORE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _database_restore(s: _Section) -> DatabaseRestore | None:
    raw = s.optional_object("restore")
    if raw is None:
        return None
    restore = _Section("database.restore", raw)
    generation = restore.text("generation")
    if not re.fullmatch(r"[a-z0-9]{1,8}", generation):
        raise ConfigError(
            f"{PROJECT}:database.restore.generation must be 1-8 lowercase letters or digits"
        )
    time = restore.text("time")
    if time != "latest" and not _RESTORE_TIME.fullmatch(time):
        raise ConfigError(
            f"{PROJECT}:database.restore.time must be latest or a UTC time like "
            "2026-01-31T09:55:00Z"
        )
    return DatabaseRestore(
        generation=generation,
        source_identifier=restore.text("sourceIdentifier"),
        time=None if time == "latest" else time,
    )


def _database(s: _Section) -> DatabaseConfig:
    database = DatabaseConfig(
        instance_class=s.text("instanceClass"),
        engine_version=s.text("engineVersion"),
        allocated_storage_gb=s.integer("allocatedStorageGb", minimum=20),
        max_allocated_storage_gb=s.integer("maxAllocatedStorageGb", minimum=20),
        backup_retention_days=s.integer("backupRetentionDays", minimum=7, maximum=35),
        multi_az=s.flag("multiAz"),
        deletion_protection=s.flag("deletionProtection"),
        read_replica=s.flag("readReplica"),
        performance_insights_retention_days=s.integer(
            "performanceInsightsRetentionDays", minimum=7, maximum=731
        ),
        monitoring_interval_seconds=s.integer("monitoringIntervalSeconds", minimum=1, maximum=60),
        slow_query_ms=s.integer("slowQueryMs", minimum=1),
        backup_vault_retention_days=s.integer("backupVaultRetentionDays", minimum=7),
        backup_copy_region=s.optional_text("backupCopyRegion"),
        proxy_max_connections_percent=s.integer(
            "proxyMaxConnectionsPercent", minimum=1, maximum=100
        ),
        restore=_database_restore(s),
        application_role=s.flag_or("applicationRole", True),
    )
    # The instance has auto_minor_version_upgrade on: a pinned minor ("16.6") turns into a
    # downgrade request on every `pulumi up` after AWS upgrades it, which RDS refuses.
    if not _performance_insights_days_valid(database.performance_insights_retention_days):
        raise ConfigError(
            f"{PROJECT}:database.performanceInsightsRetentionDays="
            f"{database.performance_insights_retention_days} must be 7, 731 or a multiple of 31"
        )
    if database.monitoring_interval_seconds not in MONITORING_INTERVALS:
        raise ConfigError(
            f"{PROJECT}:database.monitoringIntervalSeconds={database.monitoring_interval_seconds}"
            f" must be one of {', '.join(map(str, MONITORING_INTERVALS))}"
        )
    if database.engine_version != "16":
        raise ConfigError(
            f'{PROJECT}:database.engineVersion must be the major version "16" '
            "(PostgreSQL 16; RDS applies minor versions itself)"
        )
    if database.max_allocated_storage_gb <= database.allocated_storage_gb:
        raise ConfigError(
            f"{PROJECT}:database.maxAllocatedStorageGb must exceed allocatedStorageGb "
            "(storage autoscaling)"
        )
    return database


def _cache(s: _Section) -> CacheConfig:
    cache = CacheConfig(
        node_type=s.text("nodeType"),
        engine_version=s.text("engineVersion"),
        num_cache_clusters=s.integer("numCacheClusters", minimum=1, maximum=6),
        automatic_failover=s.flag("automaticFailover"),
        multi_az=s.flag("multiAz"),
        snapshot_retention_days=s.integer("snapshotRetentionDays", minimum=1, maximum=35),
        slow_log_retention_days=s.integer("slowLogRetentionDays", minimum=1),
    )
    if (cache.automatic_failover or cache.multi_az) and cache.num_cache_clusters < 2:
        raise ConfigError(
            f"{PROJECT}:cache automaticFailover/multiAz need numCacheClusters of at least 2"
        )
    return cache


def _service(s: _Section) -> ServiceConfig:
    service = ServiceConfig(
        image_tag=s.text("imageTag"),
        cpu=s.integer("cpu", minimum=256),
        memory_mib=s.integer("memoryMib", minimum=512),
        workers=s.integer("workers", minimum=1),
        desired_count=s.integer("desiredCount", minimum=1),
        min_count=s.integer("minCount", minimum=1),
        max_count=s.integer("maxCount", minimum=1),
        cpu_target_percent=s.integer("cpuTargetPercent", minimum=10, maximum=95),
        requests_per_target=s.integer("requestsPerTarget", minimum=1),
        log_retention_days=s.integer("logRetentionDays", minimum=1),
        traces_sample_rate=s.number_or("sentryTracesSampleRate", 0.1),
        stripe_payment_methods=s.texts_or("stripePaymentMethods", ("card",)),
    )
    if not 0 <= service.traces_sample_rate <= 1:
        raise ConfigError(f"{PROJECT}:service.sentryTracesSampleRate must be between 0 and 1")
    if service.cpu not in FARGATE_MEMORY_MIB:
        raise ConfigError(
            f"{PROJECT}:service.cpu={service.cpu} must be one of "
            f"{', '.join(map(str, FARGATE_MEMORY_MIB))} (Fargate task CPU units)"
        )
    if service.memory_mib not in FARGATE_MEMORY_MIB[service.cpu]:
        raise ConfigError(
            f"{PROJECT}:service.memoryMib={service.memory_mib} is not a Fargate size for "
            f"cpu={service.cpu}: allowed {_fargate_memory_description(service.cpu)}"
        )
    if not service.min_count <= service.desired_count <= service.max_count:
        raise ConfigError(f"{PROJECT}:service needs minCount <= desiredCount <= maxCount")
    return service


REQUIRED_ERROR_RATE_PERCENT = 1.0
REQUIRED_P95_LATENCY_SECONDS = 2.0
REQUIRED_CONVERSION_PERCENT = 50.0
"""The requirements' alert thresholds: the defaults of every stack."""


def _alerts(s: _Section) -> AlertsConfig:
    alerts = AlertsConfig(
        emails=s.texts("emails"),
        pager_url=s.optional_text("pagerUrl"),
        error_rate_percent=s.number_or("errorRatePercent", REQUIRED_ERROR_RATE_PERCENT),
        p95_latency_seconds=s.number_or("p95LatencySeconds", REQUIRED_P95_LATENCY_SECONDS),
        conversion_min_percent=s.number_or("conversionMinPercent", REQUIRED_CONVERSION_PERCENT),
        conversion_min_invites=s.integer_or("conversionMinInvites", 20, minimum=1),
        conversion_window_hours=s.integer_or("conversionWindowHours", 24, minimum=1, maximum=24),
        db_connection_failures=s.integer_or("dbConnectionFailures", 0),
        db_max_connections=s.integer("dbMaxConnections", minimum=1),
        db_min_free_storage_gb=s.integer("dbMinFreeStorageGb", minimum=1),
        db_min_freeable_memory_mb=s.integer_or("dbMinFreeableMemoryMb", 256, minimum=1),
        db_max_disk_queue_depth=s.number_or("dbMaxDiskQueueDepth", 20.0),
        db_max_replica_lag_seconds=s.integer_or("dbMaxReplicaLagSeconds", 60, minimum=1),
        db_min_cpu_credits=s.integer_or("dbMinCpuCredits", 50, minimum=1),
        db_max_pool_wait_ms=s.integer_or("dbMaxPoolWaitMs", 500, minimum=1),
        secret_max_age_days=s.integer_or("secretMaxAgeDays", 90, minimum=1),
    )
    if alerts.pager_url is not None and not alerts.pager_url.startswith("https://"):
        raise ConfigError(f"{PROJECT}:alerts.pagerUrl must be an https:// URL")
    return alerts


STORAGE_AUTOSCALING_FREE_PERCENT = 10
"""RDS storage autoscaling grows the volume once free space is at most this share of it."""


def _check_free_storage_alarm(database: DatabaseConfig, alerts: AlertsConfig) -> None:
    """The free-storage alarm must sit below the point where storage autoscaling acts."""
    # Autoscaling grows only at <=10% free and leaves ~10-20% free afterwards, so a threshold
    # at or above 10% of the allocated storage would keep the alarm in ALARM for good.
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html
    threshold = alerts.db_min_free_storage_gb
    if threshold * 100 >= database.allocated_storage_gb * STORAGE_AUTOSCALING_FREE_PERCENT:
        raise ConfigError(
            f"{PROJECT}:alerts.dbMinFreeStorageGb={threshold} must be below "
            f"{STORAGE_AUTOSCALING_FREE_PERCENT}% of database.allocatedStorageGb "
            f"({database.allocated_storage_gb}): storage autoscaling only grows at "
            f"{STORAGE_AUTOSCALING_FREE_PERCENT}% free, so a higher threshold alarms permanently"
        )


def _archive(s: _Section) -> ArchiveConfig:
    archive = ArchiveConfig(
        glacier_after_days=s.integer("glacierAfterDays", minimum=1),
        expire_after_days=s.integer("expireAfterDays", minimum=2),
    )
    if archive.expire_after_days <= archive.glacier_after_days:
        raise ConfigError(f"{PROJECT}:archive.expireAfterDays must exceed glacierAfterDays")
    return archive


def _canary(s: _Section) -> CanaryConfig:
    return CanaryConfig(
        runtime_version=s.text("runtimeVersion"),
        artifact_retention_days=s.integer("artifactRetentionDays", minimum=1),
    )


def _optional_secrets(cfg: pulumi.Config) -> OptionalSecretsConfig:
    oidc = (cfg.get("oidcIssuer"), cfg.get("oidcClientId"), cfg.get_secret("oidcClientSecret"))
    if any(v is not None for v in oidc) and not all(v is not None for v in oidc):
        raise ConfigError(
            f"{PROJECT}:oidcIssuer, oidcClientId and oidcClientSecret go together: all or none"
        )
    return OptionalSecretsConfig(
        oidc_issuer=oidc[0],
        oidc_client_id=oidc[1],
        oidc_client_secret=oidc[2],
        sentry_dsn=cfg.get_secret("sentryDsn"),
        session_secret_previous=cfg.get_secret("sessionSecretPrevious"),
        onboarding_token_secret_previous=cfg.get_secret("onboardingTokenSecretPrevious"),
    )


def load() -> StackConfig:
    """Read and validate the current stack's configuration.

    Raises:
        ConfigError: a value is missing, mistyped or out of range.
        pulumi.ConfigMissingError: a required Stripe secret was never set.
    """
    cfg = pulumi.Config(PROJECT)
    app_env = cfg.require("appEnv")
    if app_env not in ("staging", "production"):
        raise ConfigError(f"{PROJECT}:appEnv must be staging or production, not {app_env!r}")
    staff = _Section("staff", cfg.get_object("staff") or {})
    database = _database(_Section("database", cfg.require_object("database")))
    alerts = _alerts(_Section("alerts", cfg.require_object("alerts")))
    _check_free_storage_alarm(database, alerts)
    return StackConfig(
        stack=pulumi.get_stack(),
        region=pulumi.Config("aws").require("region"),
        app_env=cast(AppEnv, app_env),
        network=_network(_Section("network", cfg.require_object("network"))),
        domain=_domain(_Section("domain", cfg.require_object("domain"))),
        database=database,
        cache=_cache(_Section("cache", cfg.require_object("cache"))),
        service=_service(_Section("service", cfg.require_object("service"))),
        archive=_archive(_Section("archive", cfg.require_object("archive"))),
        alerts=alerts,
        canary=_canary(_Section("canary", cfg.require_object("canary"))),
        secrets=SecretsConfig(
            rotation=cfg.require("secretRotation"),
            stripe=StripeConfig(
                secret_key=cfg.require_secret("stripeSecretKey"),
                publishable_key=cfg.require_secret("stripePublishableKey"),
                webhook_secret=cfg.require_secret("stripeWebhookSecret"),
            ),
            staff=StaffConfig(
                provider=staff.optional_text("provider") or "provider",
                developer=staff.optional_text("developer") or "developer",
                accountant=staff.optional_text("accountant") or "accountant",
            ),
            optional=_optional_secrets(cfg),
        ),
    )
