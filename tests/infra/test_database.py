"""RDS PostgreSQL 16: retention, PITR, Multi-AZ, CMK encryption, protection, proxy, backups."""

from __future__ import annotations

import json
import re
import string
from urllib.parse import unquote, urlsplit

import pytest
from infra.components.database import APP_USER, DB_USER, RDS_PASSWORD_SPECIALS, postgres_url
from infra.offline import OfflineRun, PlannedResource, run_offline, stack_config

from tests.infra.conftest import one

pytestmark = pytest.mark.infra

RDS = "aws:rds/instance:Instance"


def _primary(run: OfflineRun) -> PlannedResource:
    return run.named("database-instance")


@pytest.mark.parametrize(("stack", "days"), [("staging", 7), ("prod", 35)])
def test_backup_retention_gives_point_in_time_recovery(stack: str, days: int) -> None:
    """Automated backups (PITR) are kept 7 days in staging and 35 in prod, and survive deletion."""
    from tests.infra.conftest import offline_run

    primary = _primary(offline_run(stack))
    assert primary.inputs["backupRetentionPeriod"] == days
    assert primary.inputs["backupWindow"]
    assert primary.inputs["deleteAutomatedBackups"] is False


def test_postgres_16_encrypted_with_the_stack_cmk(run: OfflineRun) -> None:
    """PostgreSQL 16 storage and Performance Insights are encrypted with the database CMK."""
    primary = _primary(run)
    key_arn = run.named("database-key")
    assert primary.inputs["engine"] == "postgres"
    assert primary.inputs["engineVersion"] == "16"
    assert primary.inputs["storageEncrypted"] is True
    assert primary.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert primary.inputs["kmsKeyId"] == primary.inputs["performanceInsightsKmsKeyId"]
    assert key_arn.inputs["enableKeyRotation"] is True


def test_engine_version_is_the_major_so_minor_upgrades_never_drift(run: OfflineRun) -> None:
    """With automatic minor upgrades on, the instance asks for major 16 only, never a minor
    that a later `pulumi up` would try to downgrade to."""
    primary = _primary(run)
    assert primary.inputs["autoMinorVersionUpgrade"] is True
    assert primary.inputs["engineVersion"] == "16"
    assert "." not in primary.inputs["engineVersion"]


def test_multi_az_only_in_prod(staging: OfflineRun, prod: OfflineRun) -> None:
    """Prod has a synchronous standby; staging runs a single instance."""
    assert _primary(prod).inputs["multiAz"] is True
    assert _primary(staging).inputs["multiAz"] is False


def test_deletion_protection_and_protect_in_prod(staging: OfflineRun, prod: OfflineRun) -> None:
    """Prod's instance has RDS deletion protection and Pulumi protect; staging has neither."""
    assert _primary(prod).inputs["deletionProtection"] is True
    assert _primary(prod).protect is True
    assert _primary(staging).inputs["deletionProtection"] is False
    assert _primary(staging).protect is False


def test_final_snapshot_has_a_unique_identifier(run: OfflineRun) -> None:
    """Deleting the instance takes a final snapshot named with a random per-stack suffix."""
    primary = _primary(run)
    suffix = run.named("database-final-snapshot-id")
    assert primary.inputs["skipFinalSnapshot"] is False
    identifier = primary.inputs["finalSnapshotIdentifier"]
    assert identifier.startswith(f"cortiware-{run.stack}-db-final-")
    assert len(identifier.rsplit("-", 1)[1]) == 8
    assert suffix.inputs["byteLength"] == 4


def test_private_autoscaled_monitored_and_logged(run: OfflineRun) -> None:
    """The instance is private, autoscales storage, and has PI, monitoring and log exports."""
    primary = _primary(run)
    assert primary.inputs["publiclyAccessible"] is False
    assert primary.inputs["maxAllocatedStorage"] > primary.inputs["allocatedStorage"]
    assert primary.inputs["performanceInsightsEnabled"] is True
    assert primary.inputs["monitoringInterval"] > 0
    assert primary.inputs["monitoringRoleArn"]
    assert primary.inputs["dbSubnetGroupName"] == f"cortiware-{run.stack}-db"
    assert set(primary.inputs["enabledCloudwatchLogsExports"]) >= {"postgresql"}


def test_parameter_group_forces_tls_and_logs_slow_queries(run: OfflineRun) -> None:
    """The parameter group sets rds.force_ssl and log_min_duration_statement."""
    params = one(run, "aws:rds/parameterGroup:ParameterGroup")
    values = {p["name"]: p["value"] for p in params.inputs["parameters"]}
    assert params.inputs["family"] == "postgres16"
    assert values["rds.force_ssl"] == "1"
    assert int(values["log_min_duration_statement"]) > 0
    assert _primary(run).inputs["parameterGroupName"] == params.inputs["name"]


def test_proxy_pools_connections_over_tls(run: OfflineRun) -> None:
    """RDS Proxy requires TLS, uses SCRAM and targets the primary."""
    proxy = one(run, "aws:rds/proxy:Proxy")
    assert proxy.inputs["requireTls"] is True
    assert proxy.inputs["engineFamily"] == "POSTGRESQL"
    assert proxy.inputs["auths"][0]["clientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256"
    target = one(run, "aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbInstanceIdentifier"] == f"cortiware-{run.stack}-db"


def test_read_replica_only_where_configured(staging: OfflineRun, prod: OfflineRun) -> None:
    """Prod has one encrypted read replica of the primary; staging has none."""
    assert len(staging.of_type(RDS)) == 1
    replica = prod.named("database-replica")
    assert replica.inputs["replicateSourceDb"] == "cortiware-prod-db"
    assert replica.inputs["storageEncrypted"] is True
    assert replica.inputs["publiclyAccessible"] is False


def test_backup_plan_is_daily_with_a_cross_region_copy_in_prod(
    staging: OfflineRun, prod: OfflineRun
) -> None:
    """AWS Backup copies prod's daily backup to a second region; staging keeps it local."""
    for run, copies in ((staging, 0), (prod, 1)):
        rule = one(run, "aws:backup/plan:Plan").inputs["rules"][0]
        assert rule["schedule"].startswith("cron(")
        assert len(rule.get("copyActions") or []) == copies
        selection = one(run, "aws:backup/selection:Selection")
        assert selection.inputs["resources"] == [
            f"arn:aws:rds:eu-west-1:123456789012:db:cortiware-{run.stack}-db"
        ]
    provider = one(prod, "pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"


def _minutes(clock: str) -> int:
    """``"HH:MM"`` → minutes after midnight."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _rds_window(window: str) -> tuple[int, int]:
    """``"02:00-03:00"`` or ``"sun:03:30-sun:04:30"`` → (start, end) minutes of the day."""
    start, end = re.sub(r"[a-z]{3}:", "", window).split("-")
    return _minutes(start), _minutes(end)


def test_aws_backup_starts_outside_the_rds_backup_and_maintenance_windows(run: OfflineRun) -> None:
    """The AWS Backup job's start window (05:00-06:00 UTC) overlaps neither the automated
    backup window nor the maintenance window of the instance."""
    rule = one(run, "aws:backup/plan:Plan").inputs["rules"][0]
    match = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", rule["schedule"])
    assert match, rule["schedule"]
    start = int(match.group(2)) * 60 + int(match.group(1))
    backup_job = (start, start + int(rule["startWindow"]))
    assert backup_job == (5 * 60, 6 * 60)
    primary = _primary(run)
    for window in (primary.inputs["backupWindow"], primary.inputs["maintenanceWindow"]):
        begin, end = _rds_window(window)
        assert end <= backup_job[0] or backup_job[1] <= begin, window


def test_master_password_uses_only_characters_rds_accepts(run: OfflineRun) -> None:
    """The master password is 40 random characters without / @ " ' or space."""
    password = run.named("database-master-password")
    assert password.inputs["length"] >= 32
    assert password.inputs["special"] is True
    specials = password.inputs["overrideSpecial"]
    assert specials == RDS_PASSWORD_SPECIALS
    assert not set(specials) & set("/@\"' ")
    assert set(specials) <= set(string.punctuation)


def test_database_urls_percent_encode_the_password() -> None:
    """A password with URL-special characters survives the URL round trip."""
    password = "a#b%c?d:e[f]"
    url = postgres_url("cortiware_admin", password, "db.example", "cortiware")
    parts = urlsplit(url)
    assert parts.scheme == "postgresql"
    assert unquote(parts.password or "") == password
    assert parts.hostname == "db.example"
    assert parts.port == 5432
    assert parts.query == "sslmode=require"


def _secret_string(run: OfflineRun, name: str) -> str:
    value: str = run.named(name).inputs["secretString"]
    return value


def test_proxy_serves_the_owner_and_the_application_role(run: OfflineRun) -> None:
    """RDS Proxy has one SCRAM auth per database user (owner, application role), each from its
    own secret that only the proxy's role reads."""
    proxy = one(run, "aws:rds/proxy:Proxy")
    auths = proxy.inputs["auths"]
    assert [a["clientPasswordAuthType"] for a in auths] == ["POSTGRES_SCRAM_SHA_256"] * 2
    users = [
        json.loads(_secret_string(run, f"database-{n}-value"))["username"]
        for n in ("proxy-credentials", "proxy-app-credentials")
    ]
    assert users == [DB_USER, APP_USER]
    arns = {a["secretArn"] for a in auths}
    assert len(arns) == 2
    policy = json.loads(run.named("database-proxy-policy").inputs["policy"])
    read = next(s for s in policy["Statement"] if s["Sid"] == "ReadOwnCredentials")
    assert set(read["Resource"]) == arns


def test_application_role_password_is_generated_rds_safe(run: OfflineRun) -> None:
    """The application role's password is random, 40 characters, RDS-acceptable specials, and
    the same in the proxy's secret and the service's URL."""
    password = run.named("database-app-password")
    assert password.inputs["length"] == 40
    assert password.inputs["overrideSpecial"] == RDS_PASSWORD_SPECIALS
    proxy_password = json.loads(_secret_string(run, "database-proxy-app-credentials-value"))[
        "password"
    ]
    url = urlsplit(_secret_string(run, "secrets-database-url-value"))
    assert unquote(url.username or "") == APP_USER
    assert unquote(url.password or "") == proxy_password


def test_switching_an_existing_stack_keeps_the_service_on_the_owner() -> None:
    """With `database.applicationRole: false` the service still connects as the owner while
    the migrate task already provisions the application role (the rollout's first step)."""
    config = stack_config("staging")
    database = json.loads(config["cortiware:database"])
    run = run_offline(
        "staging",
        {**config, "cortiware:database": json.dumps({**database, "applicationRole": False})},
    )
    service_url = _secret_string(run, "secrets-database-url-value")
    migrate_url = _secret_string(run, "secrets-migrate-database-url-value")
    assert unquote(urlsplit(service_url).username or "") == DB_USER
    assert unquote(urlsplit(migrate_url).username or "") == APP_USER
    assert ".proxy-" in service_url
